//! What the log reports through the [`metrics`] facade, so that any exporter
//! (Prometheus, StatsD, OpenTelemetry…) installed by the application sees it. With
//! no recorder installed, recording costs a branch.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `event_log_append_seconds` | histogram | `outcome` (`ok`, `in_doubt`, `refused`, `error`) | one `append_all` call, from the call to its answer |
//! | `event_log_appended_ops_total` | counter | | this sled's ops made durable |
//! | `event_log_append_group_ops` | histogram | | ops per store write (group commit) |
//! | `event_log_merged_ops_total` | counter | | other sleds' ops applied by merges |
//! | `event_log_rejected_ops_total` | counter | `reason` ([`crate::MergeRejected::reason`]) | ops refused by merges |
//! | `event_log_damaged_rows_total` | counter | | damaged or forged rows found in the store (at open, by catch-ups) |
//!
//! Labels never carry ids, keys or URLs.

use std::time::Duration;

use crate::error::Error;

/// `event_log_append_seconds`.
pub const APPEND_SECONDS: &str = "event_log_append_seconds";
/// `event_log_appended_ops_total`.
pub const APPENDED_OPS: &str = "event_log_appended_ops_total";
/// `event_log_append_group_ops`.
pub const APPEND_GROUP_OPS: &str = "event_log_append_group_ops";
/// `event_log_merged_ops_total`.
pub const MERGED_OPS: &str = "event_log_merged_ops_total";
/// `event_log_rejected_ops_total`.
pub const REJECTED_OPS: &str = "event_log_rejected_ops_total";
/// `event_log_damaged_rows_total`.
pub const DAMAGED_ROWS: &str = "event_log_damaged_rows_total";

/// Records one finished `append_all` call.
pub(crate) fn append_finished<T>(elapsed: Duration, result: &Result<T, Error>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(Error::InDoubt { .. }) => "in_doubt",
        Err(e) if e.refuses_appends() => "refused",
        Err(Error::OverLimits { .. } | Error::BadPayload { .. }) => "refused",
        Err(_) => "error",
    };
    metrics::histogram!(APPEND_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// Records a group of `ops` of this sled made durable by one store write.
pub(crate) fn group_written(ops: usize) {
    metrics::counter!(APPENDED_OPS).increment(ops as u64);
    metrics::histogram!(APPEND_GROUP_OPS).record(ops as f64);
}

/// Records what a merge applied and refused.
pub(crate) fn merged(applied: usize) {
    metrics::counter!(MERGED_OPS).increment(applied as u64);
}

/// Records one op refused by a merge, by reason.
pub(crate) fn rejected(reason: &'static str) {
    metrics::counter!(REJECTED_OPS, "reason" => reason).increment(1);
}

/// Records damaged rows found in the store.
pub(crate) fn damaged(rows: usize) {
    if rows > 0 {
        metrics::counter!(DAMAGED_ROWS).increment(rows as u64);
    }
}
