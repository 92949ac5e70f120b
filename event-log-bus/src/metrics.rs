//! What the bus reports through the [`metrics`] facade, so that any exporter
//! (Prometheus, StatsD, OpenTelemetry…) installed by the application sees it, next to
//! the log's own metrics (`event_log_core::metrics`). With no recorder installed,
//! recording costs a branch.
//!
//! The same figures, per persister run, are in [`crate::PersisterStats`]; these add
//! them up over every persister of the process, for graphs and alerts.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `event_log_bus_gaps_total` | counter | | gap sentinels the persisters appended |
//! | `event_log_bus_dropped_transitions_total` | counter | | logical ids inside those gap sentinels (transitions lost to lag, refused, or given up) |
//! | `event_log_bus_lagged_transitions_total` | counter | | transitions the channel overwrote before a persister read them (Σ `Lagged(n)`) |
//! | `event_log_bus_lag_transitions` | histogram | | how far behind a persister was each time it lagged (the `n` of one `Lagged(n)`) |
//! | `event_log_bus_persister_retries_total` | counter | `op` (`append`, `read_record`) | store calls a persister retried after a failure |
//! | `event_log_bus_abandoned_transitions_total` | counter | | transitions given up after the retry budget (their ids become a gap) |
//! | `event_log_bus_refused_transitions_total` | counter | | transitions the log would refuse (over its op limits), recorded as gaps |
//! | `event_log_bus_pending_gap` | gauge | | logical ids given up and not yet recorded as a gap (the store is still down), summed over the persisters |
//! | `event_log_bus_feed_lagged_total` | counter | | times a [`crate::LiveFeed`] subscriber fell behind and re-read the log |
//!
//! Labels never carry ids, keys or URLs.

/// `event_log_bus_gaps_total`.
pub const GAPS: &str = "event_log_bus_gaps_total";
/// `event_log_bus_dropped_transitions_total`.
pub const DROPPED_TRANSITIONS: &str = "event_log_bus_dropped_transitions_total";
/// `event_log_bus_lagged_transitions_total`.
pub const LAGGED_TRANSITIONS: &str = "event_log_bus_lagged_transitions_total";
/// `event_log_bus_lag_transitions`.
pub const LAG_TRANSITIONS: &str = "event_log_bus_lag_transitions";
/// `event_log_bus_persister_retries_total`.
pub const PERSISTER_RETRIES: &str = "event_log_bus_persister_retries_total";
/// `event_log_bus_abandoned_transitions_total`.
pub const ABANDONED_TRANSITIONS: &str = "event_log_bus_abandoned_transitions_total";
/// `event_log_bus_refused_transitions_total`.
pub const REFUSED_TRANSITIONS: &str = "event_log_bus_refused_transitions_total";
/// `event_log_bus_pending_gap`.
pub const PENDING_GAP: &str = "event_log_bus_pending_gap";
/// `event_log_bus_feed_lagged_total`.
pub const FEED_LAGGED: &str = "event_log_bus_feed_lagged_total";

/// Records gap sentinels made durable: `gaps` sentinels covering `dropped` ids.
pub(crate) fn gaps_stored(gaps: u64, dropped: u64) {
    if gaps > 0 {
        metrics::counter!(GAPS).increment(gaps);
        metrics::counter!(DROPPED_TRANSITIONS).increment(dropped);
    }
}

/// Records one `Lagged(n)` of a persister's receiver.
pub(crate) fn lagged(n: u64) {
    metrics::counter!(LAGGED_TRANSITIONS).increment(n);
    metrics::histogram!(LAG_TRANSITIONS).record(n as f64);
}

/// What a persister retried.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retried {
    /// An `append_all` of a batch.
    Append,
    /// The read of the previous run's record.
    ReadRecord,
}

/// Records one retry of a failed store call.
pub(crate) fn retried(op: Retried) {
    let op = match op {
        Retried::Append => "append",
        Retried::ReadRecord => "read_record",
    };
    metrics::counter!(PERSISTER_RETRIES, "op" => op).increment(1);
}

/// Records transitions given up after the retry budget.
pub(crate) fn abandoned(transitions: u64) {
    if transitions > 0 {
        metrics::counter!(ABANDONED_TRANSITIONS).increment(transitions);
    }
}

/// Records one transition the log would refuse.
pub(crate) fn refused() {
    metrics::counter!(REFUSED_TRANSITIONS).increment(1);
}

/// Moves the pending gap gauge by one persister's change, from `before` to `now` ids
/// (so the gauge is the sum over the persisters).
pub(crate) fn pending_gap(before: u64, now: u64) {
    if now > before {
        metrics::gauge!(PENDING_GAP).increment((now - before) as f64);
    } else if before > now {
        metrics::gauge!(PENDING_GAP).decrement((before - now) as f64);
    }
}

/// Records a live-feed subscriber that fell behind.
pub(crate) fn feed_lagged() {
    metrics::counter!(FEED_LAGGED).increment(1);
}
