//! The persister's tunables: [`PersisterConfig`] and its [`RetryPolicy`].

use std::time::Duration;

/// How a failing store is retried: after a failed attempt, sleep `initial_backoff`,
/// then twice as long each time, at most `max_backoff` (each sleep stretched by a
/// random jitter of up to as long again, so that many persisters hitting one store
/// do not retry in step), until the batch is stored or the budget is spent: at most
/// `max_retries` retries, and no sleep ending later than `max_elapsed` after the
/// batch's first attempt. A batch still refused then is given up and its ids become
/// a gap, recorded as soon as the store works again.
///
/// The schedule comes from the [`backon`] crate (`ExponentialBuilder`). The default
/// retries for **5 s** (10 ms, 20 ms, … 1 s, 1 s, …, with jitter, about 7 retries):
/// long enough to ride out a database restart, a connection pool reconnect or a
/// lock held by a checkpoint, short enough that a shutdown during an outage ends
/// within seconds. While it retries, the persister reads nothing from the bus, so a
/// lossy bus may overflow meanwhile (recorded as a gap of the ids overwritten); a
/// longer budget never loses more than a shorter one, it only waits longer before
/// giving up. Say "retry for 30 s" with [`RetryPolicy::for_duration`].
///
/// A backpressured bus ([`TransitionBus::with_backpressure`]) ignores the budget for
/// a failing store: its persister retries until the store works again (or it is shut
/// down), at most `max_backoff` apart, and the publishers wait meanwhile.
///
/// [`TransitionBus::with_backpressure`]: crate::TransitionBus::with_backpressure
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most retries of one batch after its first attempt. Default `u32::MAX`: the
    /// time budget decides.
    pub max_retries: u32,
    /// Sleep before the first retry. Default 10 ms.
    pub initial_backoff: Duration,
    /// Longest sleep between retries (before jitter); also how often a pending gap is
    /// retried while no new transition arrives. Default 1 s.
    pub max_backoff: Duration,
    /// Time budget of one batch: no retry sleep ends later than this after its first
    /// attempt. Default 5 s.
    pub max_elapsed: Duration,
    /// Stretch each sleep by a random fraction (up to as long again). Default true.
    pub jitter: bool,
}

impl RetryPolicy {
    /// The default policy with a time budget of `budget`: retry a failing store for
    /// about that long before recording a gap.
    pub fn for_duration(budget: Duration) -> Self {
        RetryPolicy {
            max_elapsed: budget,
            ..RetryPolicy::default()
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: u32::MAX,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
            jitter: true,
        }
    }
}

/// Tunables of a persister.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersisterConfig {
    /// Most entries appended with one `append_all` (one group commit). Default 1024.
    pub max_batch: usize,
    /// How store errors are retried.
    pub retry: RetryPolicy,
    /// Least time between two refreshes of the run record while transitions flow
    /// (each after an append, written beside it, never delaying one). Default
    /// 100 ms. The record's published count is what a crash's sentinel can name.
    pub record_every: Duration,
}

impl Default for PersisterConfig {
    fn default() -> Self {
        PersisterConfig {
            max_batch: 1024,
            retry: RetryPolicy::default(),
            record_every: Duration::from_millis(100),
        }
    }
}
