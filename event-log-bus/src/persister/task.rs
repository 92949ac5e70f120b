//! The persister task itself: wait, drain (group commit), append with retries, and
//! settle every chunk as stored, in doubt, or given up into a pending gap. See the
//! parent module for what it promises.

use std::sync::Arc;

use event_log_core::{Entry, EventLog, OpStore, Origin, RunId, Transition, Unclean};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::config::PersisterConfig;
use super::record::RecordSaver;
use crate::bus::{BusReceiver, GateLease, Message};
use crate::chunk::Chunk;
use crate::error::PersisterError;
use crate::metrics;
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

/// The persister's state; its methods live in this module (the loop), `settle`
/// (each append's outcome) and `unclean` (the run record and the sentinel).
pub(super) struct Persister<S: OpStore> {
    pub(super) log: Arc<EventLog<S>>,
    /// The backpressured bus's window this persister holds. Declared before `rx`:
    /// dropped (closed) first, so no `publish_wait` sends to a receiver gone.
    pub(super) gate: Option<GateLease>,
    pub(super) rx: BusReceiver,
    pub(super) run: RunId,
    pub(super) config: PersisterConfig,
    pub(super) counters: Arc<Counters>,
    /// Next logical id of this run.
    pub(super) next: u64,
    /// Logical ids given up, not yet recorded as a gap: always directly before `next`.
    pub(super) pending: Option<(u64, u64)>,
    /// A chunk signed by the log whose store append failed: the log completes it with
    /// its next successful append.
    pub(super) doubt: Option<Chunk>,
    /// This sled's next event id when the run started: none of its entries is before.
    pub(super) first_event: u64,
    /// The previous run's unclean-shutdown sentinel, not yet signed: it leads the
    /// next chunk.
    pub(super) unclean: Option<Unclean>,
    /// Writes this run's record; `None` on a read-only log.
    pub(super) saver: Option<RecordSaver<S>>,
    /// Set once this run's record was first written (after the previous run's
    /// sentinel, if any, was signed).
    pub(super) recording: bool,
    /// The shutdown signal, for the retry loop of a backpressured persister.
    pub(super) stop: Option<watch::Receiver<bool>>,
}

impl<S: OpStore> Persister<S> {
    pub(super) fn new(
        log: Arc<EventLog<S>>,
        rx: BusReceiver,
        gate: Option<GateLease>,
        run: RunId,
        config: PersisterConfig,
        counters: Arc<Counters>,
    ) -> Self {
        let first_event = log.version_vector().get(&log.sled_id());
        let saver = if log.config().read_only {
            tracing::info!(run = %run, "read-only log: no run record, no unclean-shutdown sentinel");
            None
        } else {
            Some(RecordSaver::new(
                log.clone(),
                config.record_every,
                counters.clone(),
            ))
        };
        Persister {
            first_event,
            log,
            gate,
            rx,
            run,
            config,
            counters,
            next: 0,
            pending: None,
            doubt: None,
            unclean: None,
            saver,
            recording: false,
            stop: None,
        }
    }

    /// The task: record the previous run's unclean end if there was one, persist
    /// until shutdown or close, record how this run ended.
    pub(super) async fn run(
        mut self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<PersisterStats, PersisterError> {
        self.stop = Some(shutdown.clone());
        let result = match self.start().await {
            Ok(()) => self.serve(shutdown).await,
            Err(e) => Err(e),
        };
        self.close_gate();
        let result = match result {
            Err(e) if self.gate.is_some() => Err(self.account_unread(e)),
            r => r,
        };
        self.finish(result.is_ok()).await;
        let closed = result?;
        let stats = self.counters.snapshot(self.run);
        if stats.pending_gap > 0 || stats.in_doubt > 0 {
            tracing::error!(run = %self.run, pending_gap = stats.pending_gap, in_doubt = stats.in_doubt,
                "persister ended with ids not settled: a pending gap could not be recorded, or \
                 appends in doubt await the log's next append");
        }
        tracing::info!(run = %self.run, closed, ?stats, "persister stopped");
        Ok(stats)
    }

    /// Persists until shutdown or until the bus closes (returns true then), and
    /// settles what is left.
    async fn serve(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<bool, PersisterError> {
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
                _ = tokio::time::sleep(self.config.retry.max_backoff),
                    if self.pending.is_some() || self.unclean.is_some() || self.doubt_blocks() => {
                    Wake::RetryPending
                }
            };
            if matches!(wake, Wake::RetryPending) && self.doubt_blocks() {
                // Publishers may all be waiting for the room this doubt holds: no
                // append would come to complete it, so complete it now.
                self.settle_doubt_by_flush().await?;
            }
            if matches!(wake, Wake::Shutdown) {
                // Every publish_wait that got in is in the receiver now and is
                // drained below; the ones waiting fail instead of waiting for ever.
                self.close_gate();
            }
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
        self.settle_doubt_by_flush().await?;
        if self.pending.is_some() || self.unclean.is_some() {
            // One last budget of retries for what waits for the store to work again.
            let chunk = self.open_chunk();
            self.persist(chunk).await?;
        }
        Ok(closed)
    }

    /// On a stop by an error while holding a backpressured bus's window (closed
    /// now): what `publish_wait` accepted and this persister never read is counted
    /// as received and given up (`pending_gap`), in the error's counters and in the
    /// run record the next run's unclean-shutdown sentinel is drawn from, instead of
    /// vanishing with the receiver.
    fn account_unread(&mut self, mut error: PersisterError) -> PersisterError {
        let mut chunk = Chunk::new(self.run, self.next);
        while self.drain(&mut chunk) == Drained::Full {
            self.give_up(&chunk);
            chunk = Chunk::new(self.run, self.next);
        }
        self.give_up(&chunk);
        self.update_gauges();
        if let PersisterError::Conflict { stats, .. } | PersisterError::Refused { stats, .. } =
            &mut error
        {
            **stats = self.counters.snapshot(self.run);
        }
        error
    }

    /// True if this persister holds a backpressured bus's window and appends in
    /// doubt keep part of it: they must be settled without waiting for a next
    /// append.
    fn doubt_blocks(&self) -> bool {
        self.gate.is_some() && self.doubt.is_some()
    }

    /// Closes the backpressured bus's window, if this persister holds it.
    pub(super) fn close_gate(&self) {
        if let Some(g) = &self.gate {
            g.close();
        }
    }

    /// True once a shutdown was asked for.
    pub(super) fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// A chunk starting with the previous run's sentinel and the pending gap, if any.
    pub(super) fn open_chunk(&mut self) -> Chunk {
        let mut c = match self.pending.take() {
            Some((from, to)) => {
                debug_assert_eq!(to + 1, self.next);
                let mut c = Chunk::new(self.run, from);
                c.push_gap(to - from + 1);
                c
            }
            None => Chunk::new(self.run, self.next),
        };
        if let Some(u) = self.unclean.take() {
            c.push_unclean(u);
        }
        c
    }

    /// Adds one received message to the chunk; false if the channel is closed.
    fn take(&mut self, chunk: &mut Chunk, r: Result<Message, RecvError>) -> bool {
        match r {
            Ok(t) => {
                self.admit(chunk, t);
                true
            }
            Err(RecvError::Lagged(n)) => {
                self.lagged(chunk, n);
                true
            }
            Err(RecvError::Closed) => false,
        }
    }

    /// Adds the transition with logical id `self.next` to the chunk, or, if the log
    /// would refuse it (encoded over its op limits: no retry can store it), a gap of
    /// that one id, so it does not fail the batch around it.
    fn admit(&mut self, chunk: &mut Chunk, t: Message) {
        let id = self.next;
        self.next += 1;
        Counters::add(&self.counters.received, 1);
        let limit = self.log.config().limits.max_payload;
        match refused_size(&t, self.run, id, limit) {
            None => chunk.push_transition(t),
            Some(size) => {
                tracing::error!(run = %self.run, id, size, limit,
                    "transition refused: its encoded entry is {size} bytes, over the log's \
                     limit of {limit}; recording its logical id as a gap");
                chunk.push_gap(1);
                Counters::add(&self.counters.refused, 1);
                metrics::refused();
            }
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
        metrics::lagged(n);
    }

    /// Moves what is waiting in the receiver into the chunk, up to `max_batch`.
    fn drain(&mut self, chunk: &mut Chunk) -> Drained {
        while chunk.len() < self.config.max_batch.max(1) {
            match self.rx.rx.try_recv() {
                Ok(t) => self.admit(chunk, t),
                Err(TryRecvError::Lagged(n)) => self.lagged(chunk, n),
                Err(TryRecvError::Empty) => return Drained::Empty,
                Err(TryRecvError::Closed) => return Drained::Closed,
            }
        }
        Drained::Full
    }
}

/// The encoded size of `t` as logical id `id` of `run`, if it is over `limit`.
/// Encodes only when a bound on the size (every text byte escaped six-fold, plus the
/// fixed fields) could exceed the limit.
fn refused_size(t: &Transition, run: RunId, id: u64, limit: usize) -> Option<usize> {
    let text = t.text_len();
    if text.saturating_mul(6).saturating_add(512) <= limit {
        return None;
    }
    let mut owned = t.clone();
    owned.origin = Some(Origin { run, id });
    let size = Entry::Transition(owned).to_payload().len();
    (size > limit).then_some(size)
}
