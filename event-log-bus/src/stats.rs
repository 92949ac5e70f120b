//! [`PersisterStats`]: the persister's counters, as plain numbers a user can graph.
//!
//! The persister task updates them with relaxed atomics after each batch; reading
//! them costs a few loads and never touches the log (the seed re-read the whole log
//! to count gaps). A snapshot taken while the task runs may straddle one batch; the
//! value returned when the task ends is exact.

use std::sync::atomic::{AtomicU64, Ordering};

use event_log_core::RunId;

/// Counters of one persister run.
///
/// Accounting identity, at every batch boundary and exactly at the end of a run:
/// `received == persisted + dropped + pending_gap + in_doubt`. After a clean end
/// (store working) `pending_gap == in_doubt == 0`, so
/// `persisted + dropped == received ==` the transitions published while subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersisterStats {
    /// The run whose logical ids these are (gap sentinels carry it).
    pub run: RunId,
    /// Logical ids taken from the channel: transitions read plus ids lost to lag.
    pub received: u64,
    /// Transitions appended to the log.
    pub persisted: u64,
    /// Gap sentinels appended to the log.
    pub gaps: u64,
    /// Logical ids covered by the gap sentinels appended (Σ gap sizes).
    pub dropped: u64,
    /// Logical ids the channel overwrote before this receiver saw them (Σ `Lagged(n)`).
    pub lagged: u64,
    /// Transitions given up after the store kept failing beyond the retry budget
    /// (their ids become part of a gap).
    pub abandoned: u64,
    /// Transitions the log would refuse (encoded over its op limits), recorded as a
    /// gap of their own logical ids instead of failing the batch around them.
    pub refused: u64,
    /// Logical ids given up and not yet recorded as a gap (the store is still down).
    pub pending_gap: u64,
    /// Logical ids whose append failed with an unknown outcome: the log completes them
    /// with its next successful append (they are neither lost nor duplicated).
    pub in_doubt: u64,
    /// Append calls that failed.
    pub store_errors: u64,
    /// Append calls that succeeded (`persisted / batches` is the group-commit factor).
    pub batches: u64,
    /// Unclean-shutdown sentinels this run appended (0 or 1): the previous run of
    /// this sled ended without a clean shutdown, and this one recorded it before
    /// anything of its own.
    pub unclean_recorded: u64,
    /// The `known_lost` of that sentinel: transitions the previous run is known to
    /// have published and never persisted (a lower bound, see the crate docs).
    pub unclean_known_lost: u64,
    /// Writes of this run's record (the store meta value telling the next run
    /// whether this one ended cleanly and how many it published) that succeeded.
    pub record_saves: u64,
    /// Writes of this run's record that failed (logged; the next write retries).
    pub record_errors: u64,
}

impl PersisterStats {
    /// True if every logical id received is accounted as persisted or recorded in a
    /// gap, with nothing pending.
    pub fn is_settled(&self) -> bool {
        self.pending_gap == 0
            && self.in_doubt == 0
            && self.received == self.persisted + self.dropped
    }
}

/// The live atomics behind [`PersisterStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) persisted: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) pending_gap: AtomicU64,
    pub(crate) in_doubt: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) unclean_recorded: AtomicU64,
    pub(crate) unclean_known_lost: AtomicU64,
    pub(crate) record_saves: AtomicU64,
    pub(crate) record_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(c: &AtomicU64, n: u64) {
        c.store(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, run: RunId) -> PersisterStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PersisterStats {
            run,
            received: l(&self.received),
            persisted: l(&self.persisted),
            gaps: l(&self.gaps),
            dropped: l(&self.dropped),
            lagged: l(&self.lagged),
            abandoned: l(&self.abandoned),
            refused: l(&self.refused),
            pending_gap: l(&self.pending_gap),
            in_doubt: l(&self.in_doubt),
            store_errors: l(&self.store_errors),
            batches: l(&self.batches),
            unclean_recorded: l(&self.unclean_recorded),
            unclean_known_lost: l(&self.unclean_known_lost),
            record_saves: l(&self.record_saves),
            record_errors: l(&self.record_errors),
        }
    }
}
