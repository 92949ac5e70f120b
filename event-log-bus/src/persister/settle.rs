//! How the persister settles each chunk it appends: stored, in doubt, or given up
//! into a pending gap — decided by the reply to its own append, and where a reply
//! cannot tell, by what the log holds of the run. See the parent module.

use std::sync::atomic::Ordering;

use futures::FutureExt;

use event_log_core::{Error, OpStore, StoreError};

use super::retry::Schedule;
use super::task::Persister;
use super::trace::{RunTrace, run_trace};
use crate::chunk::Chunk;
use crate::error::PersisterError;
use crate::metrics::{self, Retried};
use crate::stats::Counters;

impl<S: OpStore> Persister<S> {
    /// Appends a chunk, retrying store errors; settles it as stored, in doubt or
    /// given up (pending gap). Fails on a conflict that outlasts the retries
    /// (another writer holds our seqs), and at once on a refusal no retry cures
    /// ([`Error::refuses_appends`]).
    ///
    /// What became of the chunk is decided by the reply to this call alone, never by
    /// log-wide counters (another task may append to the same log meanwhile):
    /// - `Ok`: stored. The log completes what it holds in doubt before it signs
    ///   anything new, so an earlier chunk in doubt is stored too.
    /// - `InDoubt`: signed, outcome unknown; the log completes it before its next
    ///   op. Signing came after completing what was in doubt before, as for `Ok`.
    /// - a conflict: nothing of this call was written; retried. While a chunk is in
    ///   doubt the reply is ambiguous, see [`Persister::settle_doubt_by_log`].
    /// - any other error: the log refused the request before signing it (it could
    ///   not complete an earlier doubt, or wrote nothing): retried, then given up.
    pub(super) async fn persist(&mut self, mut chunk: Chunk) -> Result<(), PersisterError> {
        let mut schedule = Schedule::new(self.config.retry);
        // Set by a conflict while a chunk is in doubt: its fate must be read from
        // the log before anything after it is sent.
        let mut doubt_unknown = false;
        loop {
            let settled = if doubt_unknown {
                self.settle_doubt_by_log().await.map(|resend| {
                    doubt_unknown = false;
                    if let Some(mut d) = resend {
                        d.join(std::mem::replace(&mut chunk, Chunk::new(self.run, 0)));
                        chunk = d;
                    }
                })
            } else {
                Ok(())
            };
            let err = match settled {
                Err(e) => e,
                Ok(()) => match self.log.append_all(chunk.entries()).await {
                    Ok(_) => {
                        self.doubt_completed();
                        self.stored(&chunk);
                        Counters::add(&self.counters.batches, 1);
                        break;
                    }
                    Err(e) => {
                        Counters::add(&self.counters.store_errors, 1);
                        e
                    }
                },
            };
            let conflict = matches!(err, Error::Store(StoreError::Conflict { .. }));
            match err {
                Error::InDoubt { .. } => {
                    self.doubt_completed();
                    tracing::warn!(run = %self.run, ids = chunk.ids(), error = %err,
                        "append failed with an unknown outcome; the log completes it with its next append");
                    self.doubt = Some(chunk);
                    break;
                }
                Error::Cancelled => {
                    // The log answers or requeues every request it holds, so this
                    // is not expected; whatever happened, the log says whether it
                    // holds the chunk. Never re-sent: a gap is honest, a duplicate
                    // is not.
                    tracing::error!(run = %self.run, ids = chunk.ids(), error = %err,
                        "append cancelled; settling the chunk by what the log holds");
                    match self.holds(&chunk).await {
                        Ok(true) => self.stored(&chunk),
                        Ok(false) => self.give_up(&chunk),
                        Err(e) => {
                            // The log cannot be read now: keep the chunk in doubt,
                            // settled by the next flush as any other doubt.
                            tracing::warn!(run = %self.run, error = %e,
                                "cannot read the log to settle the cancelled chunk; keeping it in doubt");
                            self.doubt = Some(chunk);
                        }
                    }
                    break;
                }
                _ if conflict && self.doubt.is_some() => doubt_unknown = true,
                ref refusal if refusal.refuses_appends() => {
                    // Nothing of this call was signed, and no retry can change that.
                    tracing::error!(run = %self.run, from = chunk.start(), ids = chunk.ids(),
                        error = %err, "persister stopping: the log refuses this sled's appends");
                    self.give_up(&chunk);
                    self.update_gauges();
                    return Err(PersisterError::Refused {
                        stats: Box::new(self.counters.snapshot(self.run)),
                        source: err,
                    });
                }
                _ => {}
            }
            let Some(sleep) = schedule.next_sleep(self.retries_beyond_budget(conflict)) else {
                tracing::error!(run = %self.run, from = chunk.start(), ids = chunk.ids(),
                    transitions = chunk.transitions(), error = %err,
                    retries = schedule.retries(), elapsed = ?schedule.elapsed(),
                    "store still failing after the retry budget; these ids become a gap \
                     recorded once the store works again");
                self.give_up(&chunk);
                if conflict {
                    self.update_gauges();
                    tracing::error!(run = %self.run, error = %err, "persister stopping: seq conflict");
                    return Err(PersisterError::Conflict {
                        stats: Box::new(self.counters.snapshot(self.run)),
                        source: err,
                    });
                }
                break;
            };
            tracing::warn!(run = %self.run, attempt = schedule.retries(), ?sleep, error = %err,
                "append failed; retrying");
            metrics::retried(Retried::Append);
            self.retry_sleep(sleep).await;
        }
        self.update_gauges();
        self.after_append().await;
        Ok(())
    }

    /// True if a failing append is retried past the budget: on a backpressured bus
    /// (its publishers wait instead of losing transitions), unless it is a conflict
    /// (no retry cures another writer) or a shutdown was asked for.
    fn retries_beyond_budget(&self, conflict: bool) -> bool {
        self.gate.is_some() && !conflict && !self.stopping()
    }

    /// Sleeps between two attempts; a backpressured persister wakes early on a
    /// shutdown, closing its window so that waiting publishers fail at once.
    async fn retry_sleep(&mut self, sleep: std::time::Duration) {
        let start = tokio::time::Instant::now();
        let waited = match (&self.gate, self.stop.as_mut()) {
            (Some(_), Some(stop)) => {
                tokio::time::timeout(sleep, stop.wait_for(|s| *s).map(|r| r.is_ok())).await
            }
            _ => {
                tokio::time::sleep(sleep).await;
                return;
            }
        };
        match waited {
            Ok(true) => self.close_gate(),
            Ok(false) => {
                // The handle is gone: no shutdown can come. Sleep the rest.
                self.stop = None;
                tokio::time::sleep_until(start + sleep).await;
            }
            Err(_elapsed) => {}
        }
    }

    /// The log completed what it held in doubt (it does before signing anything).
    fn doubt_completed(&mut self) {
        if let Some(d) = self.doubt.take() {
            tracing::info!(run = %self.run, ids = d.ids(), "appends in doubt were completed");
            self.stored(&d);
        }
    }

    /// Settles the chunk in doubt after a conflict; returns it if it must be sent
    /// again (known unwritten).
    ///
    /// A conflict is returned both when the log completed its doubt and then the
    /// new request was refused (the doubt is stored), and when the log's retry of
    /// its doubt was refused: then it drops the doubt from its list, though an
    /// earlier attempt may have stored it after all (a reply lost, a seq taken
    /// after it). Catching up with the store makes such an op visible, so after it
    /// the log holds the chunk exactly if the store does; a chunk it does not hold
    /// is nowhere and is sent again, ahead of the chunk that follows it.
    async fn settle_doubt_by_log(&mut self) -> Result<Option<Chunk>, Error> {
        let Some(d) = self.doubt.take() else {
            return Ok(None);
        };
        if let Err(e) = self.log.catch_up().await {
            self.doubt = Some(d);
            return Err(e);
        }
        let held = match self.holds(&d).await {
            Ok(held) => held,
            Err(e) => {
                self.doubt = Some(d);
                return Err(e);
            }
        };
        if held {
            tracing::info!(run = %self.run, ids = d.ids(), "appends in doubt were completed");
            self.stored(&d);
            Ok(None)
        } else {
            tracing::warn!(run = %self.run, ids = d.ids(),
                "appends in doubt were refused (a seq conflict); sending them again");
            Ok(Some(d))
        }
    }

    /// True if the log holds the chunk (appends are atomic: all of it or none).
    /// Exact only while the log holds none of this run's entries in doubt and knows
    /// every op of this sled the store holds.
    pub(super) async fn holds(&self, chunk: &Chunk) -> Result<bool, Error> {
        if chunk.ids() == 0 {
            // At most the previous run's sentinel.
            return match chunk.unclean() {
                None => Ok(true),
                Some(u) => {
                    Ok(run_trace(&self.log, u.run, self.first_event).await? == RunTrace::Recorded)
                }
            };
        }
        Ok(
            match run_trace(&self.log, self.run, self.first_event).await? {
                RunTrace::Last(Some(last)) => last >= chunk.end() - 1,
                RunTrace::Last(None) | RunTrace::Recorded => false,
            },
        )
    }

    /// Counts a chunk the log holds.
    pub(super) fn stored(&self, chunk: &Chunk) {
        let (gaps, dropped) = chunk.gaps();
        Counters::add(&self.counters.persisted, chunk.transitions());
        Counters::add(&self.counters.gaps, gaps);
        Counters::add(&self.counters.dropped, dropped);
        metrics::gaps_stored(gaps, dropped);
        if let Some(u) = chunk.unclean() {
            tracing::info!(run = %self.run, previous = %u.run, from = u.from,
                known_lost = u.known_lost, "recorded the previous run's unclean shutdown");
            Counters::add(&self.counters.unclean_recorded, 1);
            Counters::add(&self.counters.unclean_known_lost, u.known_lost);
        }
    }

    /// Turns a chunk's ids into (part of) the pending gap; its sentinel, if any,
    /// waits to lead the next chunk.
    pub(super) fn give_up(&mut self, chunk: &Chunk) {
        if let Some(u) = chunk.unclean() {
            self.unclean = Some(u.clone());
        }
        if chunk.ids() == 0 {
            return;
        }
        Counters::add(&self.counters.abandoned, chunk.transitions());
        metrics::abandoned(chunk.transitions());
        let (from, to) = (chunk.start(), chunk.end() - 1);
        self.pending = Some(match self.pending {
            Some((f, t)) => (f.min(from), t.max(to)),
            None => (from, to),
        });
    }

    /// Refreshes the gauges, and gives a backpressured bus room for what is settled.
    pub(super) fn update_gauges(&self) {
        let pending = self.pending.map_or(0, |(f, t)| t - f + 1);
        let before = self.counters.pending_gap.swap(pending, Ordering::Relaxed);
        metrics::pending_gap(before, pending);
        let doubt = self.doubt.as_ref().map_or(0, Chunk::ids);
        Counters::set(&self.counters.in_doubt, doubt);
        if let Some(g) = &self.gate {
            let persisted = self.counters.persisted.load(Ordering::Relaxed);
            let dropped = self.counters.dropped.load(Ordering::Relaxed);
            g.release(persisted + dropped);
        }
    }

    /// Settles a chunk still in doubt now (at the end of the run; or while it holds
    /// a backpressured bus's room), instead of leaving it to the log's next append.
    pub(super) async fn settle_doubt_by_flush(&mut self) -> Result<(), PersisterError> {
        let Some(d) = self.doubt.take() else {
            return Ok(());
        };
        // Settle appends in doubt now instead of leaving them to the next append.
        // Once the flush succeeds the log holds nothing in doubt, and once it has
        // caught up it knows every op of this sled the store holds: it holds the
        // chunk, or the chunk is nowhere (the log dropped it after a seq
        // conflict found by another task's append) and is sent again.
        let flushed = match self.log.flush().await {
            Ok(_) => self.log.catch_up().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let flushed = match flushed {
            Ok(()) => self.holds(&d).await,
            Err(e) => Err(e),
        };
        match flushed {
            Ok(true) => self.stored(&d),
            Ok(false) => {
                tracing::warn!(run = %self.run, ids = d.ids(),
                        "appends in doubt were refused (a seq conflict); sending them again");
                let mut chunk = d;
                chunk.join(self.open_chunk());
                self.persist(chunk).await?;
            }
            Err(e) => {
                tracing::warn!(run = %self.run, error = %e, "could not complete appends in doubt");
                self.doubt = Some(d);
            }
        }
        self.update_gauges();
        Ok(())
    }
}
