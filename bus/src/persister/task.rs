//! The persister task itself: wait, drain (group commit), append with retries, and
//! settle every chunk as stored, in doubt, or given up into a pending gap. See the
//! parent module for what it promises.

use std::sync::Arc;

use event_log_core::{Error, EventLog, OpStore, RunId, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::PersisterConfig;
use super::trace::{RunTrace, run_trace};
use crate::bus::{BusReceiver, Message};
use crate::chunk::Chunk;
use crate::error::PersisterError;
use crate::stats::{Counters, PersisterStats};

/// Why the wait for work ended.
enum Wake {
    Shutdown,
    Message(Result<Message, RecvError>),
    RetryPending,
}

/// What a non-blocking drain of the receiver found.
#[derive(PartialEq, Eq)]
enum Drained {
    /// The chunk reached `max_batch`; more may wait.
    Full,
    /// Nothing more is waiting.
    Empty,
    /// The bus is gone and the receiver is empty.
    Closed,
}

pub(super) struct Persister<S: OpStore> {
    log: Arc<EventLog<S>>,
    rx: BusReceiver,
    run: RunId,
    config: PersisterConfig,
    counters: Arc<Counters>,
    /// Next logical id of this run.
    next: u64,
    /// Logical ids given up, not yet recorded as a gap: always directly before `next`.
    pending: Option<(u64, u64)>,
    /// A chunk signed by the log whose store append failed: the log completes it with
    /// its next successful append.
    doubt: Option<Chunk>,
    /// This sled's next event id when the run started: none of its entries is before.
    first_event: u64,
}

impl<S: OpStore> Persister<S> {
    pub(super) fn new(
        log: Arc<EventLog<S>>,
        rx: BusReceiver,
        run: RunId,
        config: PersisterConfig,
        counters: Arc<Counters>,
    ) -> Self {
        let first_event = log.version_vector().get(&log.sled_id());
        Persister {
            first_event,
            log,
            rx,
            run,
            config,
            counters,
            next: 0,
            pending: None,
            doubt: None,
        }
    }

    pub(super) async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<PersisterStats, PersisterError> {
        let mut shutdown_open = true;
        let mut stopping = false;
        let mut closed = false;
        while !stopping && !closed {
            let wake = tokio::select! {
                biased;
                r = shutdown.changed(), if shutdown_open => match r {
                    Ok(()) if *shutdown.borrow() => Wake::Shutdown,
                    Ok(()) => continue,
                    Err(_) => { shutdown_open = false; continue; }
                },
                r = self.rx.rx.recv() => Wake::Message(r),
                _ = tokio::time::sleep(self.config.retry.max_backoff), if self.pending.is_some() => {
                    Wake::RetryPending
                }
            };
            let mut chunk = self.open_chunk();
            match wake {
                Wake::Shutdown => stopping = true,
                Wake::Message(r) => closed = !self.take(&mut chunk, r),
                Wake::RetryPending => {}
            }
            // Group commit: everything already waiting goes into this append (on
            // shutdown, into as many appends as it takes).
            loop {
                let drained = if closed {
                    Drained::Closed
                } else {
                    self.drain(&mut chunk)
                };
                if !chunk.is_empty() {
                    self.persist(chunk).await?;
                }
                closed = drained == Drained::Closed;
                if drained != Drained::Full || !stopping {
                    break;
                }
                chunk = self.open_chunk();
            }
        }
        if let Some(d) = self.doubt.take() {
            // Settle appends in doubt now instead of leaving them to the next append.
            // Once the flush succeeds the log holds nothing in doubt, and once it has
            // caught up it knows every op of this sled the store holds: it holds the
            // chunk, or the chunk is nowhere (the log dropped it after a seq
            // conflict found by another task's append) and is sent again.
            let flushed = match self.log.flush().await {
                Ok(_) => self.log.catch_up().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match flushed {
                Ok(()) if self.holds(&d) => self.stored(&d),
                Ok(()) => {
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
        }
        if self.pending.is_some() {
            // One last budget of retries for ids given up while the store was down.
            let chunk = self.open_chunk();
            self.persist(chunk).await?;
        }
        let stats = self.counters.snapshot(self.run);
        if stats.pending_gap > 0 || stats.in_doubt > 0 {
            tracing::error!(run = %self.run, pending_gap = stats.pending_gap, in_doubt = stats.in_doubt,
                "persister ended with ids not settled: a pending gap could not be recorded, or \
                 appends in doubt await the log's next append");
        }
        tracing::info!(run = %self.run, closed, ?stats, "persister stopped");
        Ok(stats)
    }

    /// A chunk starting with the pending gap, if any.
    fn open_chunk(&mut self) -> Chunk {
        match self.pending.take() {
            Some((from, to)) => {
                debug_assert_eq!(to + 1, self.next);
                let mut c = Chunk::new(self.run, from);
                c.push_gap(to - from + 1);
                c
            }
            None => Chunk::new(self.run, self.next),
        }
    }

    /// Adds one received message to the chunk; false if the channel is closed.
    fn take(&mut self, chunk: &mut Chunk, r: Result<Message, RecvError>) -> bool {
        match r {
            Ok(t) => {
                chunk.push_transition(t);
                self.next += 1;
                Counters::add(&self.counters.received, 1);
                true
            }
            Err(RecvError::Lagged(n)) => {
                self.lagged(chunk, n);
                true
            }
            Err(RecvError::Closed) => false,
        }
    }

    fn lagged(&mut self, chunk: &mut Chunk, n: u64) {
        let (from, to) = (self.next, self.next + n - 1);
        tracing::warn!(run = %self.run, from, to, dropped = n,
            "persister lagged behind the bus: {n} transition(s) dropped (logical ids \
             {from}..={to}); recording a gap sentinel");
        chunk.push_gap(n);
        self.next += n;
        Counters::add(&self.counters.received, n);
        Counters::add(&self.counters.lagged, n);
    }

    /// Moves what is waiting in the receiver into the chunk, up to `max_batch`.
    fn drain(&mut self, chunk: &mut Chunk) -> Drained {
        while chunk.len() < self.config.max_batch.max(1) {
            match self.rx.rx.try_recv() {
                Ok(t) => {
                    chunk.push_transition(t);
                    self.next += 1;
                    Counters::add(&self.counters.received, 1);
                }
                Err(TryRecvError::Lagged(n)) => self.lagged(chunk, n),
                Err(TryRecvError::Empty) => return Drained::Empty,
                Err(TryRecvError::Closed) => return Drained::Closed,
            }
        }
        Drained::Full
    }

    /// Appends a chunk, retrying store errors; settles it as stored, in doubt or
    /// given up (pending gap). Fails only on a conflict that outlasts the retries
    /// (another writer holds our seqs).
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
    async fn persist(&mut self, mut chunk: Chunk) -> Result<(), PersisterError> {
        let retry = self.config.retry;
        let mut backoff = retry.initial_backoff;
        let mut retries = 0;
        // Set by a conflict while a chunk is in doubt: its fate must be read from
        // the log before anything after it is sent.
        let mut doubt_unknown = false;
        loop {
            let attempt = if doubt_unknown {
                match self.settle_doubt_by_log().await {
                    Ok(resend) => {
                        doubt_unknown = false;
                        if let Some(mut d) = resend {
                            d.join(chunk);
                            chunk = d;
                        }
                        self.log.append_all(chunk.entries()).await
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.log.append_all(chunk.entries()).await
            };
            let err = match attempt {
                Ok(_) => {
                    self.doubt_completed();
                    self.stored(&chunk);
                    Counters::add(&self.counters.batches, 1);
                    break;
                }
                Err(e) => e,
            };
            Counters::add(&self.counters.store_errors, 1);
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
                    if self.holds(&chunk) {
                        self.stored(&chunk);
                    } else {
                        self.give_up(&chunk);
                    }
                    break;
                }
                _ if conflict && self.doubt.is_some() => doubt_unknown = true,
                _ => {}
            }
            if retries >= retry.max_retries {
                tracing::error!(run = %self.run, from = chunk.start(), to = chunk.end() - 1,
                    transitions = chunk.transitions(), error = %err,
                    "store still failing after {retries} retries; these ids become a gap \
                     recorded once the store works again");
                self.give_up(&chunk);
                if conflict {
                    self.update_gauges();
                    tracing::error!(run = %self.run, error = %err, "persister stopping: seq conflict");
                    return Err(PersisterError::Conflict {
                        stats: self.counters.snapshot(self.run),
                        source: err,
                    });
                }
                break;
            }
            retries += 1;
            tracing::warn!(run = %self.run, attempt = retries, ?backoff, error = %err,
                "append failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(retry.max_backoff);
        }
        self.update_gauges();
        Ok(())
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
        if self.holds(&d) {
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
    fn holds(&self, chunk: &Chunk) -> bool {
        if chunk.ids() == 0 {
            return true;
        }
        match run_trace(&self.log, self.run, self.first_event) {
            RunTrace::Last(Some(last)) => last >= chunk.end() - 1,
            RunTrace::Last(None) | RunTrace::Recorded => false,
        }
    }

    fn stored(&self, chunk: &Chunk) {
        let (gaps, dropped) = chunk.gaps();
        Counters::add(&self.counters.persisted, chunk.transitions());
        Counters::add(&self.counters.gaps, gaps);
        Counters::add(&self.counters.dropped, dropped);
    }

    /// Turns a chunk's ids into (part of) the pending gap.
    fn give_up(&mut self, chunk: &Chunk) {
        if chunk.ids() == 0 {
            return;
        }
        Counters::add(&self.counters.abandoned, chunk.transitions());
        let (from, to) = (chunk.start(), chunk.end() - 1);
        self.pending = Some(match self.pending {
            Some((f, t)) => (f.min(from), t.max(to)),
            None => (from, to),
        });
    }

    fn update_gauges(&self) {
        let pending = self.pending.map_or(0, |(f, t)| t - f + 1);
        Counters::set(&self.counters.pending_gap, pending);
        let doubt = self.doubt.as_ref().map_or(0, Chunk::ids);
        Counters::set(&self.counters.in_doubt, doubt);
    }
}
