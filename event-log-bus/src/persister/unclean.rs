//! Across crashes: the run record's life cycle, and the unclean-shutdown sentinel a
//! run appends for the previous run of its sled when that one did not end cleanly.
//!
//! - At start, the previous record is read. If it says the run did not end cleanly,
//!   the log is asked how far that run got ([`run_trace`]) and one
//!   [`Unclean`] sentinel is appended before anything of this run:
//!   `from` = one past its last logical id the log holds (0 if none), `known_lost` =
//!   its saved published count − `from` (0 if not more). A run already recorded (a
//!   sentinel naming it is in the log) is not recorded twice.
//! - This run's record (`clean: false`) is written once that sentinel is signed, or
//!   at once if there is none, so a crash before then leaves the previous record for
//!   the next start; it is refreshed in the background after appends.
//! - At the end it is written with the exact count received and `clean: true` if
//!   everything received is accounted for in the log (`false` otherwise, so the
//!   next run records what is missing).
//!
//! A read-only log writes nothing and reads no record.

use chrono::SubsecRound;
use event_log_core::{EventLog, OpStore, Unclean};

use super::config::RetryPolicy;
use super::record::{self, RunRecord};
use super::retry::Schedule;
use super::task::Persister;
use super::trace::{RunTrace, run_trace};
use crate::error::PersisterError;

impl<S: OpStore> Persister<S> {
    /// Records the previous run's unclean end, if any, then starts this run's record.
    pub(super) async fn start(&mut self) -> Result<(), PersisterError> {
        if self.saver.is_none() {
            return Ok(());
        }
        let previous = record::load(&self.log, self.config.retry).await;
        if let Some(prev) = previous.filter(|p| !p.clean && p.run != self.run)
            && let Some(u) = sentinel(&self.log, &prev, self.config.retry).await
        {
            self.unclean = Some(u);
            let chunk = self.open_chunk();
            // Records the run once signed (`after_append`).
            return self.persist(chunk).await;
        }
        self.after_append().await;
        Ok(())
    }

    /// After each append: write this run's record the first time the previous run's
    /// sentinel is no longer waiting, refresh it (in the background) afterwards.
    pub(super) async fn after_append(&mut self) {
        let waiting = self.unclean.is_some();
        let record = self.record(false);
        let Some(saver) = self.saver.as_mut() else {
            return;
        };
        if self.recording {
            saver.refresh(record);
        } else if !waiting {
            self.recording = true;
            saver.save(record).await;
        }
    }

    /// Writes this run's last record: clean if the run ended normally with
    /// everything it received accounted for in the log.
    pub(super) async fn finish(&mut self, ended_normally: bool) {
        if !self.recording {
            return;
        }
        let settled = self.pending.is_none() && self.doubt.is_none();
        let clean = ended_normally && settled;
        let record = RunRecord::new(self.run, self.next, clean, self.first_event);
        if let Some(saver) = self.saver.as_mut() {
            saver.save(record).await;
        }
    }

    /// This run's record now: published at least what the bus counted since the
    /// receiver subscribed, and never less than the ids already received.
    fn record(&self, clean: bool) -> RunRecord {
        let published = self.rx.published().max(self.next);
        RunRecord::new(self.run, published, clean, self.first_event)
    }
}

/// The sentinel for `prev`, a run that did not end cleanly; `None` if the log
/// already holds one.
///
/// Reading the log back is retried as reading the run record is; when the retries
/// run out, no sentinel is recorded (and an error logged) rather than one that
/// could claim persisted transitions lost.
async fn sentinel<S: OpStore>(
    log: &EventLog<S>,
    prev: &RunRecord,
    retry: RetryPolicy,
) -> Option<Unclean> {
    let mut schedule = Schedule::new(retry);
    let trace = loop {
        match run_trace(log, prev.run, prev.first_event).await {
            Ok(trace) => break trace,
            Err(e) => {
                let Some(sleep) = schedule.next_sleep(false) else {
                    tracing::error!(previous = %prev.run, error = %e,
                        "cannot read the log back: the previous run's unclean end is not recorded");
                    return None;
                };
                tracing::warn!(previous = %prev.run, attempt = schedule.retries(), error = %e,
                    "cannot read the log back; retrying");
                crate::metrics::retried(crate::metrics::Retried::ReadRecord);
                tokio::time::sleep(sleep).await;
            }
        }
    };
    match trace {
        RunTrace::Recorded => {
            tracing::info!(previous = %prev.run,
                "the previous run's unclean shutdown is already recorded");
            None
        }
        RunTrace::Last(last) => {
            let from = last.map_or(0, |l| l + 1);
            let known_lost = prev.published_at_least.saturating_sub(from);
            tracing::warn!(previous = %prev.run, from, known_lost,
                published_at_least = prev.published_at_least,
                "the previous persister run ended without a clean shutdown: {known_lost} \
                 published transition(s) known never persisted from logical id {from} on \
                 (and any published after its record was last saved); recording it");
            Some(Unclean {
                run: prev.run,
                from,
                known_lost,
                // The log keeps microseconds.
                at: chrono::Utc::now().trunc_subsecs(6),
            })
        }
    }
}
