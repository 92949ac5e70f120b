//! How to open a store: [`SqliteConfig`] and its [`Durability`] modes.
//!
//! This module exists so that every knob of the backend is in one documented place,
//! with defaults that are safe (durable on power loss) rather than fast.

use std::time::Duration;

use event_log_core::ConfigError;
use event_log_core::backend::url_query::{self, UrlQueryError};

/// What an acknowledged append survives.
///
/// Both modes run SQLite in WAL mode, where a transaction is atomic: after any crash
/// the database holds every transaction that reached the disk whole and nothing of the
/// others, so the file is never corrupt in either mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL` (and `fullfsync` where the platform needs it): the WAL is
    /// synced before every commit returns, so an acknowledged append survives a
    /// process crash, an OS crash and a power loss. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: the WAL is synced only at WAL checkpoints. An acknowledged
    /// append survives a process crash, but the last commits before an OS crash or a
    /// power loss may be lost (never half-written). Faster; choose it only if a peer
    /// or the caller can re-send what was lost.
    Normal,
}

impl Durability {
    /// The value of `PRAGMA synchronous` for this mode.
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Options for [`crate::SqliteStore::open`]. Build it from [`SqliteConfig::default`]
/// and the `with_*` methods; [`SqliteConfig::validate`] names a value it cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// What an acknowledged append survives. Default: [`Durability::Full`].
    pub durability: Durability,
    /// How long a connection waits for a lock held by another connection or process
    /// before the call fails with `StoreError::Unavailable`. Default: 5 s.
    pub busy_timeout: Duration,
    /// The most read connections open at once (reads run concurrently with the
    /// writer and with each other). Default: 4. Must be at least 1.
    pub readers: usize,
    /// The most append calls committed in one transaction (one group commit).
    /// Default: 1024. Must be at least 1.
    pub max_group: usize,
    /// Create the database file if it does not exist. Default: true. When false,
    /// opening a missing file fails with `StoreError::NotFound` naming the path.
    pub create_if_missing: bool,
    /// Open for reading only (SQLite `SQLITE_OPEN_READONLY`): the file is never
    /// created, migrated or written. A missing file fails with `StoreError::NotFound`
    /// naming the path; a file whose schema is older than [`crate::SCHEMA_VERSION`]
    /// is refused with `StoreError::Invalid` (open it writable once to migrate it);
    /// appends and `put_meta` fail with `StoreError::Invalid` ("read-only"). For
    /// tools that only look at a store. Default: false.
    pub read_only: bool,
    /// How many appends of one log may be in flight at once
    /// ([`event_log_core::OpStore::append_pipeline`]). The writer takes requests in
    /// the order they were sent and writes an ordered append only if the op it
    /// continues is stored, so a log may send its next group while the writer is
    /// still syncing the previous one: both can share the next sync. 1 turns this
    /// off. Default: 2. Must be at least 1.
    pub pipeline: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_group: 1024,
            create_if_missing: true,
            read_only: false,
            pipeline: 2,
        }
    }
}

impl SqliteConfig {
    /// Sets [`SqliteConfig::durability`].
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`SqliteConfig::busy_timeout`].
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Sets [`SqliteConfig::readers`].
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Sets [`SqliteConfig::max_group`].
    pub fn with_max_group(mut self, max_group: usize) -> Self {
        self.max_group = max_group;
        self
    }

    /// Sets [`SqliteConfig::pipeline`].
    pub fn with_pipeline(mut self, pipeline: usize) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Sets [`SqliteConfig::create_if_missing`].
    pub fn with_create_if_missing(mut self, create_if_missing: bool) -> Self {
        self.create_if_missing = create_if_missing;
        self
    }

    /// Sets [`SqliteConfig::read_only`].
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Refuses settings the store cannot work with, naming the field.
    /// [`crate::SqliteStore::open`] calls it first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::at_least_one("readers", self.readers)?;
        ConfigError::at_least_one("max_group", self.max_group)?;
        ConfigError::at_least_one("pipeline", self.pipeline)
    }

    /// The file path and config a `sqlite:` URL names, given what follows the scheme
    /// (`//events.db?durability=normal&mode=ro`). Parameters: `durability`
    /// (`full` or `normal`, see [`Durability`]) and `mode` (`ro` for
    /// [`SqliteConfig::read_only`], or `rw`); other settings keep their defaults.
    pub fn from_url(rest: &str) -> Result<(&str, SqliteConfig), UrlQueryError> {
        let (path, params) = url_query::split_file_url(rest)?;
        let mut config = SqliteConfig::default();
        for (key, value) in params {
            config = match (key, value) {
                ("durability", "full") => config.with_durability(Durability::Full),
                ("durability", "normal") => config.with_durability(Durability::Normal),
                ("durability", other) => {
                    return Err(UrlQueryError::BadValue {
                        key: "durability",
                        value: other.to_owned(),
                        expected: "`full` or `normal`",
                    });
                }
                ("mode", v) => config.with_read_only(url_query::read_only_mode(v)?),
                (k, _) => {
                    return Err(UrlQueryError::Unknown {
                        key: k.to_owned(),
                        known: "durability, mode",
                    });
                }
            };
        }
        Ok((path, config))
    }
}
