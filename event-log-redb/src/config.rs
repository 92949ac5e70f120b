//! [`RedbConfig`]: how a [`crate::RedbStore`] opens its file and commits.

use event_log_core::ConfigError;
use event_log_core::backend::url_query::{self, UrlQueryError};

/// Options for [`crate::RedbStore::open`]. Build it from [`RedbConfig::default`]
/// and the `with_*` methods; [`RedbConfig::validate`] names a value it cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbConfig {
    /// Use redb's two-phase commit: two `fsync`s per commit instead of one. Protects
    /// against an adversary who controls page write order and crashes the process on
    /// purpose (see redb's `docs/design.md`, "Security of 1PC+C"). Default `false`:
    /// plain `Durability::Immediate` already makes every acknowledged append survive
    /// a crash or power loss.
    pub two_phase_commit: bool,
    /// At most this many append requests share one write transaction (group commit).
    /// Default 256. Must be at least 1.
    pub max_group: usize,
    /// redb page cache size in bytes; `None` keeps redb's default.
    pub cache_size: Option<usize>,
    /// Verify the whole file on every open (redb `set_check_integrity_on_open`).
    /// Slower opens, but a file damaged outside redb is reported as
    /// [`event_log_core::StoreError::Corrupt`] instead of being trusted. Default `false`.
    pub check_integrity_on_open: bool,
    /// How many appends of one log may be in flight at once
    /// ([`event_log_core::OpStore::append_pipeline`]). The writer takes requests in
    /// the order they were sent and writes an ordered append only if the op it
    /// continues is stored, so a log may send its next group while the writer is
    /// still syncing the previous one. 1 turns this off. Default 2. Must be at least 1.
    pub pipeline: usize,
    /// Open for reading only (redb `ReadOnlyDatabase`): the file is never created or
    /// written, and no writer thread runs. A missing file fails with
    /// `StoreError::NotFound` naming the path; a file that is not an event-log store
    /// of a format version this build reads is refused with `StoreError::Invalid`;
    /// appends and `put_meta` fail with `StoreError::Invalid` ("read-only"). While
    /// another process has the file open for writing, the open fails with
    /// `StoreError::Unavailable` (redb locks the file). Default `false`.
    pub read_only: bool,
}

impl Default for RedbConfig {
    fn default() -> Self {
        RedbConfig {
            two_phase_commit: false,
            max_group: 256,
            cache_size: None,
            check_integrity_on_open: false,
            pipeline: 2,
            read_only: false,
        }
    }
}

impl RedbConfig {
    /// Sets [`RedbConfig::two_phase_commit`].
    pub fn with_two_phase_commit(mut self, two_phase_commit: bool) -> Self {
        self.two_phase_commit = two_phase_commit;
        self
    }

    /// Sets [`RedbConfig::max_group`].
    pub fn with_max_group(mut self, max_group: usize) -> Self {
        self.max_group = max_group;
        self
    }

    /// Sets [`RedbConfig::cache_size`] to `bytes`.
    pub fn with_cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Sets [`RedbConfig::check_integrity_on_open`].
    pub fn with_check_integrity_on_open(mut self, check_integrity_on_open: bool) -> Self {
        self.check_integrity_on_open = check_integrity_on_open;
        self
    }

    /// Sets [`RedbConfig::pipeline`].
    pub fn with_pipeline(mut self, pipeline: usize) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Sets [`RedbConfig::read_only`].
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Refuses settings the store cannot work with, naming the field.
    /// [`crate::RedbStore::open`] calls it first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::at_least_one("max_group", self.max_group)?;
        ConfigError::at_least_one("pipeline", self.pipeline)
    }

    /// The file path and config a `redb:` URL names, given what follows the scheme
    /// (`//events.redb?mode=ro`). Parameter: `mode` (`ro` for
    /// [`RedbConfig::read_only`], or `rw`); other settings keep their defaults.
    pub fn from_url(rest: &str) -> Result<(&str, RedbConfig), UrlQueryError> {
        let (path, params) = url_query::split_file_url(rest)?;
        let mut config = RedbConfig::default();
        for (key, value) in params {
            config = match key {
                "mode" => config.with_read_only(url_query::read_only_mode(value)?),
                k => {
                    return Err(UrlQueryError::Unknown {
                        key: k.to_owned(),
                        known: "mode",
                    });
                }
            };
        }
        Ok((path, config))
    }
}
