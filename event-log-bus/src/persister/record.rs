//! The run record: a small durable note in the store's meta values that lets the
//! next persister of a sled tell whether the previous run ended cleanly, and how many
//! transitions it had published.
//!
//! Key `bus-run/<sled id>` (64 hex chars); value a versioned JSON object, readable in
//! a SQL shell:
//!
//! ```json
//! {"version":1,"run":"00000000000000a7","published_at_least":12,"clean":false,"first_event":40}
//! ```
//!
//! - `run` — the persister run ([`RunId`]);
//! - `published_at_least` — transitions published on the bus since that run's
//!   receiver subscribed, as last saved: a lower bound, refreshed at most every
//!   [`PersisterConfig::record_every`] while transitions flow;
//! - `clean` — false from the run's start until it ends with everything it received
//!   accounted for in the log (then the count is final and exact);
//! - `first_event` — the sled's next event id when the run started: none of the
//!   run's entries lies before it, so the next run's look-up stops there.
//!
//! A value that does not parse, or of another version, is logged and treated as
//! absent: it never stops a persister.
//!
//! [`PersisterConfig::record_every`]: super::PersisterConfig::record_every

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log_core::{EventLog, OpStore, RunId, SledId, StoreError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::config::RetryPolicy;
use super::retry::Schedule;
use crate::stats::Counters;

/// The record format written by this version.
const VERSION: u32 = 1;

/// One run's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) version: u32,
    pub(crate) run: RunId,
    pub(crate) published_at_least: u64,
    pub(crate) clean: bool,
    pub(crate) first_event: u64,
}

impl RunRecord {
    pub(crate) fn new(run: RunId, published_at_least: u64, clean: bool, first_event: u64) -> Self {
        RunRecord {
            version: VERSION,
            run,
            published_at_least,
            clean,
            first_event,
        }
    }

    fn encode(&self) -> Vec<u8> {
        // A struct of integers, a bool and a string cannot fail to serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a stored value; `None` (logged) if it is not a record of this version.
    fn decode(key: &str, bytes: &[u8]) -> Option<RunRecord> {
        match serde_json::from_slice::<RunRecord>(bytes) {
            Ok(r) if r.version == VERSION => Some(r),
            Ok(r) => {
                tracing::warn!(
                    key,
                    version = r.version,
                    "run record of an unknown version; treated as absent"
                );
                None
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "garbled run record; treated as absent");
                None
            }
        }
    }
}

/// The meta key of a sled's run record.
pub(crate) fn key(sled: &SledId) -> String {
    format!("bus-run/{sled}")
}

/// Reads the sled's previous run record, retrying store errors by `retry`. `None`
/// if there is none, it is garbled, or the store kept failing (logged: an unclean
/// end of that run then goes unrecorded).
pub(crate) async fn load<S: OpStore>(log: &EventLog<S>, retry: RetryPolicy) -> Option<RunRecord> {
    let key = key(&log.sled_id());
    let mut schedule = Schedule::new(retry);
    loop {
        match log.store().get_meta(&key).await {
            Ok(v) => return v.and_then(|b| RunRecord::decode(&key, &b)),
            Err(e) => {
                let Some(sleep) = schedule.next_sleep(false) else {
                    tracing::error!(key, error = %e,
                        "cannot read the previous run record: an unclean end of that run, \
                         if any, is not recorded");
                    return None;
                };
                tracing::warn!(key, attempt = schedule.retries(), error = %e,
                    "cannot read the run record; retrying");
                crate::metrics::retried(crate::metrics::Retried::ReadRecord);
                tokio::time::sleep(sleep).await;
            }
        }
    }
}

/// Writes this run's record: refreshes in the background (at most one at a time,
/// at most every `every`), the first and last in line, after any refresh.
pub(crate) struct RecordSaver<S: OpStore> {
    log: Arc<EventLog<S>>,
    key: String,
    every: Duration,
    counters: Arc<Counters>,
    last: Instant,
    in_flight: Option<JoinHandle<()>>,
}

impl<S: OpStore> RecordSaver<S> {
    pub(crate) fn new(log: Arc<EventLog<S>>, every: Duration, counters: Arc<Counters>) -> Self {
        RecordSaver {
            key: key(&log.sled_id()),
            log,
            every,
            counters,
            last: Instant::now(),
            in_flight: None,
        }
    }

    /// Saves `record` in the background if the last save is older than `every` and
    /// none is in flight. Never waits.
    pub(crate) fn refresh(&mut self, record: RunRecord) {
        if self.last.elapsed() < self.every
            || self.in_flight.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        self.last = Instant::now();
        let (log, key, counters) = (self.log.clone(), self.key.clone(), self.counters.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let r = log.store().put_meta(&key, &record.encode()).await;
            count(&counters, &key, r);
        }));
    }

    /// Saves `record` now, after any refresh in flight (so it is the last word).
    pub(crate) async fn save(&mut self, record: RunRecord) -> bool {
        if let Some(h) = self.in_flight.take() {
            let _ = h.await;
        }
        self.last = Instant::now();
        let r = self.log.store().put_meta(&self.key, &record.encode()).await;
        count(&self.counters, &self.key, r)
    }
}

fn count(counters: &Counters, key: &str, r: Result<(), StoreError>) -> bool {
    match r {
        Ok(()) => {
            Counters::add(&counters.record_saves, 1);
            true
        }
        Err(e) => {
            Counters::add(&counters.record_errors, 1);
            tracing::warn!(key, error = %e, "cannot save the run record");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_values_are_absent() {
        let r = RunRecord::new(RunId(0xa7), 12, false, 40);
        let bytes = r.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":1,"run":"00000000000000a7","published_at_least":12,"clean":false,"first_event":40}"#
        );
        assert_eq!(RunRecord::decode("k", &bytes), Some(r));
        assert_eq!(RunRecord::decode("k", b"garbage"), None);
        assert_eq!(RunRecord::decode("k", b"{}"), None);
        let v2 = br#"{"version":2,"run":"a7","published_at_least":1,"clean":true,"first_event":0}"#;
        assert_eq!(RunRecord::decode("k", v2), None);
    }
}
