//! [`EventLog`]: the one type applications use.
//!
//! It replays its store on open, signs and appends entries of its own sled with
//! contiguous seqs (group commit: concurrent appends share one store call), merges
//! ops from other sleds, and answers reads from in-memory indexes.

mod append;
mod follow;
mod merge;
mod open;
mod read;
mod scan;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bft_json_crdt::Limits;
use parking_lot::{Mutex, RwLock};

use crate::event::{LoggedEvent, SledId};
use crate::state::State;
use crate::store::OpStore;

pub use follow::CatchUp;
pub use merge::{MergeDelivery, MergeRejected, MergeReport};
pub use verify::{VerifyReport, verify};

/// Tunables of an [`EventLog`]. The defaults suit most deployments.
#[derive(Debug, Clone)]
pub struct EventLogConfig {
    /// Op limits; every sled of a deployment must use the same.
    pub limits: Limits,
    /// The sleds allowed to author ops (their public keys); `None` accepts every
    /// valid key. Every sled of a deployment should use the same set. Ops of others
    /// are refused by merges (`Rejected::NotMember`, counted in
    /// [`LogStats::rejected`]) and kept out of the view when found in the store.
    pub members: Option<bft_json_crdt::Membership>,
    /// Ops read per store call during replay.
    pub replay_page: usize,
    /// Most entries signed and appended in one store call (group commit).
    pub max_batch: usize,
    /// Most heads of other sleds an op depends on besides its own previous op.
    pub max_extra_deps: usize,
    /// Save this sled's signed replay checkpoint (at open, at close, on
    /// [`EventLog::checkpoint`]). Turn it off for read-only tools that open a store
    /// with a throwaway key, so they write nothing to it.
    pub save_checkpoints: bool,
    /// Where this sled keeps its signed high-water mark outside the store (see
    /// [`crate::watermark`]), so that a store that lost acknowledged ops cannot
    /// make it sign a seq twice. `None`: only the store's own checkpoint is
    /// compared.
    pub watermark: Option<crate::watermark::SharedWatermark>,
    /// Open for reading only: nothing is ever written to the store (no checkpoint,
    /// no writer right taken with [`OpStore::acquire_sled`]); appends and merges fail
    /// with [`crate::Error::ReadOnly`]. For tools that read a store, a read-only
    /// role, or a hot standby. Open the store itself read-only too (each backend has
    /// an option), so that it is not created or migrated either.
    pub read_only: bool,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            limits: Limits::default(),
            members: None,
            replay_page: 4096,
            max_batch: 1024,
            max_extra_deps: 8,
            save_checkpoints: true,
            watermark: None,
            read_only: false,
        }
    }
}

impl EventLogConfig {
    /// Checks that the configuration can work and can only sign ops every replica
    /// with the same limits accepts. [`EventLog::open_with`] calls it.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        use crate::error::ConfigError;
        let bad = |field, reason: String| Err(ConfigError { field, reason });
        let l = &self.limits;
        if self.replay_page == 0 {
            return bad("replay_page", "must be at least 1".into());
        }
        if self.max_batch == 0 {
            return bad("max_batch", "must be at least 1".into());
        }
        // An op depends on its own previous op and on up to max_extra_deps heads.
        if self.max_extra_deps >= l.max_deps {
            return bad(
                "max_extra_deps",
                format!(
                    "is {}, but an op also depends on its previous op and limits.max_deps is {}",
                    self.max_extra_deps, l.max_deps
                ),
            );
        }
        if l.max_payload < MIN_PAYLOAD {
            return bad(
                "limits.max_payload",
                format!(
                    "is {}, below the {MIN_PAYLOAD} bytes an entry needs",
                    l.max_payload
                ),
            );
        }
        if l.max_buffered_per_author == 0 || l.max_buffered == 0 {
            return bad("limits.max_buffered", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Smallest `max_payload` a log can work with: a gap sentinel's payload is ~120
/// bytes; transitions need room for their labels.
const MIN_PAYLOAD: usize = 1024;

/// Receives every event that becomes visible in a log, local or merged, in commit
/// order. Called synchronously after the store made the ops durable: keep it quick
/// (send into a channel).
pub trait EventListener: Send + Sync + 'static {
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
    listeners: RwLock<Vec<Arc<dyn EventListener>>>,
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

    /// Registers a listener for new visible events.
    pub fn add_listener(&self, listener: Arc<dyn EventListener>) {
        self.listeners.write().push(listener);
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
        for l in self.listeners.read().iter() {
            l.on_events(events);
        }
    }

    /// Damaged rows found in the store (at open and by later reads), kept out of
    /// the view: the first [`crate::damage::MAX_REPORTED`], each with its position,
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
