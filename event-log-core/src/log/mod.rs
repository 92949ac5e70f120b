//! [`EventLog`]: the one type applications use.
//!
//! It replays its store on open, signs and appends entries of its own sled with
//! contiguous seqs (group commit: concurrent appends share one store call), merges
//! ops from other sleds, and answers reads from in-memory indexes.

mod append;
mod config;
pub(crate) mod decode;
mod follow;
mod merge;
mod open;
mod pages;
mod read;
mod scan;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::event::{LoggedEvent, SledId};
use crate::state::State;
use crate::store::OpStore;

pub(crate) use append::KeyRegistry;
pub use config::EventLogConfig;
pub use follow::CatchUp;
pub use merge::{MergeDelivery, MergeRejected, MergeReport};
pub use pages::Page;
pub use verify::{VerifyReport, verify};

/// Receives every event that becomes visible in a log, local or merged, in commit
/// order. Called synchronously after the store made the ops durable: keep it quick
/// (send into a channel).
pub trait EventObserver: Send + Sync + 'static {
    /// New visible events.
    fn on_events(&self, events: &[LoggedEvent]);
}

/// Counters a user may graph. Cheap to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Entries this sled appended since open.
    pub appended: u64,
    /// Store calls made by appends (appended / append_calls = group-commit factor).
    pub append_calls: u64,
    /// Ops from other sleds applied by merges since open.
    pub merged: u64,
    /// Ops refused by merges since open.
    pub rejected: u64,
    /// Ops refused by merges since open, by reason (`not_member`, `bad_signature`,
    /// … see `Rejected::reason`).
    pub rejected_by_reason: std::collections::BTreeMap<&'static str, u64>,
    /// Damaged rows found in the store (at open and by catch-ups).
    pub damaged: u64,
}

#[derive(Default)]
struct Counters {
    appended: AtomicU64,
    append_calls: AtomicU64,
    merged: AtomicU64,
    rejected: AtomicU64,
    rejected_by_reason: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

/// A durable, replicated, tamper-evident log of transitions, over a store `S`.
pub struct EventLog<S: OpStore> {
    store: S,
    /// This sled's key, prepared for signing; shared with the signing jobs.
    /// (Its author id is this log's sled id.)
    key: Arc<bft_json_crdt::KeyPair>,
    config: EventLogConfig,
    state: RwLock<State>,
    /// This sled's keyed events, recorded while appends look their keys up.
    keys: Arc<KeyRegistry>,
    queue: Mutex<Vec<append::Pending>>,
    /// Notified when a request joins `queue`, so a leader waiting on the store can
    /// sign it while the store works.
    queued: event_listener::Event,
    /// Held by whoever writes: the appender leading the pipeline, a merge, a
    /// catch-up, a flush.
    leader: async_lock::Mutex<append::LeaderState>,
    /// Tasks other than appenders waiting for `leader` (merges, catch-ups, flushes,
    /// close): a leader hands the lock on as soon as one waits.
    others_waiting: std::sync::atomic::AtomicUsize,
    observers: RwLock<Vec<Arc<dyn EventObserver>>>,
    counters: Counters,
    opened: OpenStats,
    /// Damaged rows found (at open, by catch-ups).
    damage: Mutex<crate::damage::DamageLog>,
    /// Acknowledged ops the store lacked at open, per sled (signed frontiers).
    missing: Mutex<Vec<crate::damage::MissingOps>>,
    /// The highest own seq signed, while the store holds less (appends wait).
    signed_up_to: Mutex<Option<u64>>,
    /// The verified prefix of the store, extended by [`EventLog::checkpoint`].
    verified: async_lock::Mutex<(crate::checkpoint::Chain, crate::store::Position)>,
}

/// What [`EventLog::open`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// Ops replayed from the store.
    pub replayed: u64,
    /// Ops whose signatures and links were verified (the others were covered by this
    /// sled's signed replay checkpoint and only had their ids re-hashed).
    pub verified: u64,
    /// Damaged rows found and kept out of the view (see [`EventLog::damage`]).
    pub damaged: u64,
    /// Sleds whose acknowledged ops the store no longer holds (see
    /// [`EventLog::missing`]).
    pub missing: u64,
}

impl<S: OpStore> EventLog<S> {
    /// This log's sled id (the public key of its signing key).
    pub fn sled_id(&self) -> SledId {
        self.key.author()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &EventLogConfig {
        &self.config
    }

    /// Registers an observer of new visible events.
    pub fn add_observer(&self, observer: Arc<dyn EventObserver>) {
        self.observers.write().push(observer);
    }

    /// Takes the leader lock for work other than appending; a leader writing
    /// appends hands it on at its next group instead of at the end of its budget.
    async fn lock_leader(&self) -> async_lock::MutexGuard<'_, append::LeaderState> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.others_waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.others_waiting);
        self.leader.lock().await
    }

    fn notify(&self, events: &[LoggedEvent]) {
        if events.is_empty() {
            return;
        }
        for l in self.observers.read().iter() {
            l.on_events(events);
        }
    }

    /// Damaged rows found in the store (at open and by later reads), kept out of
    /// the view: the first [`crate::MAX_REPORTED_DAMAGE`], each with its position,
    /// op id and reason.
    pub fn damage(&self) -> Vec<crate::damage::DamagedRow> {
        self.damage.lock().rows().to_vec()
    }

    /// Sleds whose acknowledged ops the store lacked at open (a signed checkpoint or
    /// this sled's watermark records more than it holds), and still lacks.
    pub fn missing(&self) -> Vec<crate::damage::MissingOps> {
        let st = self.state.read();
        self.missing
            .lock()
            .iter()
            .filter(|m| st.replica.max_seq(&m.sled) < m.acknowledged)
            .map(|m| crate::damage::MissingOps {
                held: st.replica.max_seq(&m.sled),
                ..*m
            })
            .collect()
    }

    /// What the open replayed and verified.
    pub fn open_stats(&self) -> OpenStats {
        self.opened
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        LogStats {
            appended: self.counters.appended.load(Ordering::Relaxed),
            append_calls: self.counters.append_calls.load(Ordering::Relaxed),
            merged: self.counters.merged.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            rejected_by_reason: self.counters.rejected_by_reason.lock().clone(),
            damaged: self.damage.lock().count(),
        }
    }

    /// Completes appends in doubt, saves a checkpoint (see [`EventLog::checkpoint`])
    /// and closes the store.
    /// Appends already returned are durable whether or not this is called.
    pub async fn close(&self) -> crate::Result<()> {
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "appends in doubt could not be completed at close");
        }
        if let Err(e) = self.checkpoint().await {
            tracing::warn!(error = %e, "cannot save the replay checkpoint at close");
        }
        if let Some(w) = &self.config.watermark
            && !self.config.read_only
            && let Err(e) = w.0.flush().await
        {
            tracing::warn!(error = %e, "cannot make the sled's watermark durable at close");
        }
        let _w = self.lock_leader().await;
        self.store.close().await?;
        Ok(())
    }
}
