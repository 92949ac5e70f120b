//! The persister task itself: wait, drain (group commit), append with retries, and
//! settle every chunk as stored, in doubt, or given up into a pending gap. See the
//! parent module for what it promises.

use std::sync::Arc;

use event_log_core::{Error, EventLog, OpStore, RunId, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::PersisterConfig;
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
}

impl<S: OpStore> Persister<S> {
    pub(super) fn new(
        log: Arc<EventLog<S>>,
        rx: BusReceiver,
        run: RunId,
        config: PersisterConfig,
        counters: Arc<Counters>,
    ) -> Self {
        Persister {
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
        if self.pending.is_some() {
            // One last budget of retries for ids given up while the store was down.
            let chunk = self.open_chunk();
            self.persist(chunk).await?;
        }
        if let Some(d) = self.doubt.take() {
            // Settle appends in doubt now instead of leaving them to the next append.
            match self.log.flush().await {
                Ok(_) => self.stored(&d),
                Err(e) => {
                    tracing::warn!(run = %self.run, error = %e, "could not complete appends in doubt");
                    self.doubt = Some(d);
                }
            }
            self.update_gauges();
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
    /// given up (pending gap). Fails only on a conflict (another writer has our seqs).
    async fn persist(&mut self, chunk: Chunk) -> Result<(), PersisterError> {
        let retry = self.config.retry;
        let mut backoff = retry.initial_backoff;
        let mut retries = 0;
        loop {
            let before = self.log.stats().append_calls;
            let result = self.log.append_all(chunk.entries()).await;
            // The log signed (and so first completed any earlier doubt) if it made a
            // store call or reports this call's outcome as unknown.
            let signed = self.log.stats().append_calls > before
                || matches!(result, Err(Error::InDoubt { .. }));
            let err = match result {
                Ok(_) => {
                    if let Some(d) = self.doubt.take() {
                        self.stored(&d);
                    }
                    self.stored(&chunk);
                    Counters::add(&self.counters.batches, 1);
                    break;
                }
                Err(e) => e,
            };
            Counters::add(&self.counters.store_errors, 1);
            // The log completes appends in doubt before it signs anything new.
            if signed && let Some(d) = self.doubt.take() {
                tracing::info!(run = %self.run, ids = d.ids(), "appends in doubt were completed");
                self.stored(&d);
            }
            if matches!(err, Error::Store(StoreError::Conflict { .. })) {
                // Nothing of this call was written, and the log dropped what it held
                // in doubt: another writer owns our seqs.
                if let Some(d) = self.doubt.take() {
                    self.give_up(&d);
                }
                self.give_up(&chunk);
                self.update_gauges();
                tracing::error!(run = %self.run, error = %err, "persister stopping: seq conflict");
                return Err(PersisterError::Conflict {
                    stats: self.counters.snapshot(self.run),
                    source: err,
                });
            }
            if signed {
                tracing::warn!(run = %self.run, ids = chunk.ids(), error = %err,
                    "append failed with an unknown outcome; the log completes it with its next append");
                self.doubt = Some(chunk);
                break;
            }
            if retries >= retry.max_retries {
                tracing::error!(run = %self.run, from = chunk.start(), to = chunk.end() - 1,
                    transitions = chunk.transitions(), error = %err,
                    "store still failing after {retries} retries; these ids become a gap \
                     recorded once the store works again");
                self.give_up(&chunk);
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
