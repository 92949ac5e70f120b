//! The persisting subscriber: the task that turns a [`BusReceiver`] into durable log
//! entries.
//!
//! What it promises, per run (one fresh [`RunId`]; logical id 0 is the first
//! transition published after the receiver was subscribed):
//!
//! - every logical id ends up either as a persisted transition or inside exactly one
//!   gap sentinel of this run, in logical order: gap ranges are disjoint and
//!   ascending, and `persisted + Σ gap sizes = published while subscribed`;
//! - a `Lagged(n)` from the channel becomes **one** gap sentinel covering exactly the
//!   n ids the receiver never saw (adjacent dropped ids merge into one sentinel);
//! - a failing store is retried with jittered exponential backoff for a time budget
//!   ([`RetryPolicy`], 5 s by default); a batch still refused after the budget is given up and its ids become a *pending gap*,
//!   appended (merged with adjacent dropped ids) as soon as the store works again;
//! - everything already available in the receiver is appended with one
//!   `append_all` (group commit), order kept exactly;
//! - on channel close or [`PersisterHandle::shutdown`] it drains its receiver,
//!   appends what it got, and returns its final [`PersisterStats`];
//! - every transition is stored with its [`Origin`] (this run, its logical id), so
//!   the log itself says which ids of which run it holds.
//!
//! ## On a backpressured bus
//!
//! Spawned with a receiver of a bus built with
//! [`TransitionBus::with_backpressure`], the persister holds the bus's window: it
//! gives a slot back for every logical id once it is settled (stored, or inside a
//! stored gap) and never earlier, so `publish_wait` waits while `capacity`
//! transitions are unsettled and the persister cannot lag behind it. Then:
//!
//! - a failing store is retried past the [`RetryPolicy`] budget (the publishers wait
//!   meanwhile): a batch is given up only on a shutdown, or on a conflict, which
//!   stops the persister as on a lossy bus;
//! - appends in doubt are completed by flushing the log every `max_backoff`, since
//!   waiting publishers may never send the next append that would complete them;
//! - the window closes when the persister stops — at a shutdown before its final
//!   drain, and when it ends or fails — so waiting and later `publish_wait` calls
//!   fail with [`PublishError::PersisterStopped`]; on a failure, what was accepted
//!   and never read is counted in the error's `pending_gap` (and in the run record)
//!   instead of vanishing with the receiver.
//!
//! [`TransitionBus::with_backpressure`]: crate::TransitionBus::with_backpressure
//! [`PublishError::PersisterStopped`]: crate::PublishError::PersisterStopped
//!
//! ## Across crashes
//!
//! A crash (or `SIGKILL`) loses what the bus and the persister held and had not
//! stored, and no code runs to say so. The next persister of the sled says it: it
//! appends **one** [`Unclean`] sentinel for the run that ended without a clean
//! shutdown, before anything of its own, naming that run, `from` (one past the last
//! logical id of that run the log holds; 0 if none) and `known_lost` (how many ids
//! from `from` on that run is known to have published). So every logical id of a
//! crashed run is a persisted transition, inside one of its gaps, or at or after
//! the sentinel's `from`; "never lost silently" holds across crashes too.
//!
//! It knows from the *run record*, a small versioned JSON value the persister keeps
//! in the store's meta values under `bus-run/<sled id>` ([`OpStore::put_meta`]):
//! written when a run starts (`clean: false`), refreshed after appends at most every
//! [`PersisterConfig::record_every`] with the bus's published count (a relaxed
//! atomic: publishing never waits for it), and written at the end with the exact
//! count and `clean: true` when everything received is accounted for in the log. A
//! run that ends normally but unsettled (a store still down, a conflict) leaves
//! `clean: false`, so the next run records what is missing.
//!
//! The limits, stated in the sentinel's own words ("…and any published after
//! them"):
//! - `known_lost` is a lower bound: the count is saved periodically, so what was
//!   published after the last save (up to `record_every` of traffic, or more while
//!   the store was slow) is lost without a number; `from` is exact;
//! - a store without meta values (the trait's default) keeps no record: crashes
//!   over it go unrecorded, as before;
//! - a run that dies before its record was first written (right after start; or
//!   while the previous run's sentinel could not be stored yet) goes unrecorded;
//!   the previous run's record, still in place, is then recorded by the next start,
//!   and a run already recorded is never recorded twice;
//! - a garbled or unknown record is logged and treated as absent; a read-only log
//!   reads and writes no record;
//! - the record is per sled: run at most one persister per sled.
//!
//! ## Transitions the log would refuse
//!
//! A transition whose encoded entry is over the log's op limits (`Limits::max_payload`)
//! could never be stored: it is recorded as a gap of its own logical id
//! ([`PersisterStats::refused`]) instead of failing the batch around it.
//!
//! ## Failed appends with an unknown outcome
//!
//! [`EventLog::append_all`] documents that a store error may leave the entries *in
//! doubt*: signed, maybe stored, and completed by the log's next successful append
//! (never dropped, never re-sequenced). Re-sending them would store them twice, so the
//! persister re-sends a batch only when the log never signed it, and otherwise counts
//! it in [`PersisterStats::in_doubt`] until a later append settles it.
//!
//! It decides from the reply to its own call, never from log-wide counters, so other
//! tasks may append to the same log (their store calls and failures are theirs):
//! `Ok` means stored; [`Error::InDoubt`] means signed, outcome unknown; any other
//! error means the request was refused before it was signed (then it is retried).
//! Either of the first two also settles an earlier batch in doubt as stored: the log
//! completes what it holds in doubt before it signs anything new.
//!
//! One reply is ambiguous for a batch in doubt: a seq conflict still returned after
//! the log's own re-sequencing (its doubt refused because a previous process of the
//! sled stored other ops at those seqs: the log then signs the doubt's unstored
//! entries again at new seqs) says neither whether the doubt was completed nor
//! whether it is still queued. There the persister catches the log up with
//! the store and asks it what it holds of this run (every transition carries its run
//! and logical id, [`Transition::origin`], every gap its run): a batch held is
//! stored, a batch not held is nowhere and is sent again, ahead of the next. The
//! same look-up settles a batch still in doubt at the end of the run, after
//! [`EventLog::flush`]. The log resolves a conflict on this sled's own seqs by
//! catching up and re-sequencing; a conflict still returned after the retry budget
//! stops the persister ([`PersisterError::Conflict`]).
//!
//! A refusal that no retry cures ([`Error::refuses_appends`]: the log was opened
//! read-only, its store lost acknowledged ops of this sled, the sled is excluded)
//! stops the persister at its first occurrence ([`PersisterError::Refused`], naming
//! the reason) instead of retrying while the publisher goes on: what it received and
//! did not store is counted in `pending_gap`, and its run record stays unclean, so
//! the next run over a store that works records the loss.
//!
//! [`Error::InDoubt`]: event_log_core::Error::InDoubt
//! [`Error::refuses_appends`]: event_log_core::Error::refuses_appends
//! [`Origin`]: event_log_core::Origin
//! [`Unclean`]: event_log_core::Unclean
//! [`OpStore::put_meta`]: event_log_core::OpStore::put_meta
//! [`Transition::origin`]: event_log_core::Transition::origin
//! [`EventLog::flush`]: event_log_core::EventLog::flush

mod config;
mod record;
mod retry;
mod settle;
mod task;
mod trace;
mod unclean;

use std::sync::Arc;

use event_log_core::{EventLog, OpStore, RunId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bus::BusReceiver;
use crate::error::PersisterError;
use crate::stats::{Counters, PersisterStats};
use task::Persister;

pub use config::{PersisterConfig, RetryPolicy};

/// Controls a running persister: read its counters, stop it, wait for it.
///
/// Dropping the handle does not stop the task; it then runs until the bus closes.
#[derive(Debug)]
pub struct PersisterHandle {
    run: RunId,
    counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<PersisterStats, PersisterError>>,
}

impl PersisterHandle {
    /// The run id its gap sentinels carry.
    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// Its counters now (a few relaxed loads; never reads the log).
    pub fn stats(&self) -> PersisterStats {
        self.counters.snapshot(self.run)
    }

    /// True once the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the task to stop, waits until it has appended everything its receiver
    /// already held, and returns its final counters.
    pub async fn shutdown(self) -> Result<PersisterStats, PersisterError> {
        let _ = self.shutdown.send(true);
        self.task.await?
    }

    /// Waits for the task to end by itself (when every [`crate::TransitionBus`] clone
    /// is dropped) and returns its final counters.
    pub async fn join(self) -> Result<PersisterStats, PersisterError> {
        let _shutdown = self.shutdown;
        self.task.await?
    }
}

/// Spawns the persisting subscriber on the current tokio runtime.
///
/// `receiver` should come from [`crate::TransitionBus::receiver`]; what was
/// published after that call, even before this one, is logical id 0 onwards.
/// On a backpressured bus ([`crate::TransitionBus::with_backpressure`]) the
/// persister attaches to its window (unless another persister holds it): from now
/// on `publish_wait` publishes, and it gives room back as it stores transitions;
/// once it ends, `publish_wait` fails with [`crate::PublishError::PersisterStopped`].
/// Must be called from within a tokio runtime.
pub fn spawn_persister<S: OpStore>(
    receiver: BusReceiver,
    log: Arc<EventLog<S>>,
    config: PersisterConfig,
) -> PersisterHandle {
    let run = RunId::random();
    let counters = Arc::new(Counters::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let gate = receiver.attach();
    let backpressure = gate.is_some();
    let persister = Persister::new(log, receiver, gate, run, config, counters.clone());
    tracing::info!(run = %run, backpressure, "persister started");
    let task = tokio::spawn(persister.run(shutdown_rx));
    PersisterHandle {
        run,
        counters,
        shutdown,
        task,
    }
}
