//! [`EventLogConfig`]: the tunables of an [`EventLog`](crate::EventLog), each with a `with_*`
//! setter, validated when the log opens ([`EventLogConfig::validate`]).

use bft_json_crdt::Limits;

use crate::error::ConfigError;
use crate::watermark::SharedWatermark;

/// Tunables of an [`EventLog`](crate::EventLog). The defaults suit most deployments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EventLogConfig {
    /// Op limits; every sled of a deployment must use the same.
    pub limits: Limits,
    /// The sleds allowed to author ops (their public keys); `None` accepts every
    /// valid key. Every sled of a deployment should use the same set. Ops of others
    /// are refused by merges (`Rejected::NotMember`, counted in
    /// [`crate::LogStats::rejected`]) and kept out of the view when found in the store.
    pub members: Option<bft_json_crdt::Membership>,
    /// Ops read per store call during replay.
    pub replay_page: usize,
    /// Most entries signed and appended in one store call (group commit).
    pub max_batch: usize,
    /// Most heads of other sleds an op depends on besides its own previous op.
    pub max_extra_deps: usize,
    /// Save this sled's signed replay checkpoint (at open, at close, on
    /// [`crate::EventLog::checkpoint`]). Turn it off for read-only tools that open a store
    /// with a throwaway key, so they write nothing to it.
    pub save_checkpoints: bool,
    /// Where this sled keeps its signed high-water mark outside the store (see
    /// [`crate::Watermark`]), so that a store that lost acknowledged ops cannot
    /// make it sign a seq twice. `None`: only the store's own checkpoint is
    /// compared.
    pub watermark: Option<SharedWatermark>,
    /// Open for reading only: nothing is ever written to the store (no checkpoint,
    /// no writer right taken with [`OpStore::acquire_sled`](crate::OpStore::acquire_sled)); appends and merges fail
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
    /// Sets [`EventLogConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`EventLogConfig::members`].
    pub fn with_members(mut self, members: Option<bft_json_crdt::Membership>) -> Self {
        self.members = members;
        self
    }

    /// Sets [`EventLogConfig::replay_page`].
    pub fn with_replay_page(mut self, replay_page: usize) -> Self {
        self.replay_page = replay_page;
        self
    }

    /// Sets [`EventLogConfig::max_batch`].
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// Sets [`EventLogConfig::max_extra_deps`].
    pub fn with_max_extra_deps(mut self, max_extra_deps: usize) -> Self {
        self.max_extra_deps = max_extra_deps;
        self
    }

    /// Sets [`EventLogConfig::save_checkpoints`].
    pub fn with_save_checkpoints(mut self, save_checkpoints: bool) -> Self {
        self.save_checkpoints = save_checkpoints;
        self
    }

    /// Sets [`EventLogConfig::watermark`].
    pub fn with_watermark(mut self, watermark: Option<SharedWatermark>) -> Self {
        self.watermark = watermark;
        self
    }

    /// Sets [`EventLogConfig::read_only`].
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Checks that the configuration can work and can only sign ops every replica
    /// with the same limits accepts. [`crate::EventLog::open_with`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
