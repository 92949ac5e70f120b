//! Errors of the bus crate.

use event_log_core::Transition;

use crate::stats::PersisterStats;

/// A bus or feed could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A broadcast channel needs room for at least one message.
    #[error("channel capacity must be at least 1 (got 0)")]
    ZeroCapacity,
    /// tokio's broadcast channel refuses capacities above `usize::MAX / 2`.
    #[error("channel capacity {0} is too large (at most usize::MAX / 2)")]
    CapacityTooLarge(usize),
}

/// Why a persister run ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersisterError {
    /// Another writer holds this sled's seqs (two processes signing with one key),
    /// and the store still refused the batch after the log re-sequenced it and the
    /// persister's retries. The persister stops: every further append would be
    /// refused too. `stats` are its counters at that moment; the batch that
    /// conflicted is counted in [`PersisterStats::pending_gap`] (received, never
    /// stored, never recorded).
    #[error("persister stopped: the store refused our seqs ({source}); counters: {stats:?}")]
    Conflict {
        /// Counters when it stopped (boxed: the error stays small).
        stats: Box<PersisterStats>,
        /// The store's refusal.
        #[source]
        source: event_log_core::Error,
    },
    /// The log refuses every append of this sled for a reason no retry cures
    /// ([`event_log_core::Error::refuses_appends`]: opened read-only, its store lost
    /// acknowledged ops, the sled is excluded). The persister stops at its first
    /// refusal instead of retrying while transitions pile up; what it received and
    /// did not store is counted in [`PersisterStats::pending_gap`], and its run stays
    /// marked unclean, so the next run over a store that works records them.
    #[error(
        "persister stopped: the log refuses this sled's appends ({source}); counters: {stats:?}"
    )]
    Refused {
        /// Counters when it stopped (boxed: the error stays small).
        stats: Box<PersisterStats>,
        /// The log's refusal.
        #[source]
        source: event_log_core::Error,
    },
    /// The persister task panicked or was aborted.
    #[error("persister task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why [`crate::TransitionBus::publish_wait`] did not publish. The transition comes
/// back inside ([`PublishError::into_transition`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The bus is lossy ([`crate::TransitionBus::new`]): use `publish`, or build it
    /// with [`crate::TransitionBus::with_backpressure`].
    #[error("publish_wait needs a bus built with TransitionBus::with_backpressure")]
    NotBackpressured(Box<Transition>),
    /// No persister is attached to the backpressured bus yet: spawn one
    /// ([`crate::spawn_persister`]) with a receiver of it first.
    #[error("no persister is attached to this backpressured bus")]
    NoPersister(Box<Transition>),
    /// The attached persister stopped (ended, failed, or is shutting down), so no
    /// one would make room: the transition was not published. The persister's
    /// handle says why.
    #[error("the bus's persister stopped; the transition was not published")]
    PersisterStopped(Box<Transition>),
}

impl PublishError {
    /// The transition that was not published.
    pub fn into_transition(self) -> Transition {
        match self {
            PublishError::NotBackpressured(t)
            | PublishError::NoPersister(t)
            | PublishError::PersisterStopped(t) => *t,
        }
    }
}
