//! [`PostgresConfig`]: what a caller may tune, and the checks applied to it and to the
//! URL before anything touches the server.

use std::time::Duration;

use event_log_core::{ConfigError, StoreError};

use crate::options::{Keepalive, Recycling, SynchronousCommit};

/// The default schema: `event_log`.
pub const DEFAULT_SCHEMA: &str = "event_log";

/// Configuration of a [`crate::PostgresStore`].
///
/// Build one from `PostgresConfig::default()` and the `with_*` setters; [`PostgresConfig::validate`] says which field cannot work
/// (opening validates too). Parameters in the URL override these fields; see the
/// crate docs ("URL parameters") for their names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The schema holding the store's tables; created if missing (unless
    /// [`PostgresConfig::read_only`]). Must be a plain SQL
    /// identifier: an ASCII letter or `_`, then letters, digits or `_`, at most 63
    /// bytes, not starting with `pg_`. It is always quoted, so case is kept. It also
    /// names the `LISTEN/NOTIFY` channel. Default [`DEFAULT_SCHEMA`]. URL: `schema=`.
    pub schema: String,
    /// Open for reading only: no DDL, no migration, no write. Sessions run with
    /// `default_transaction_read_only = on`; a missing schema is
    /// [`StoreError::NotFound`], an older one is refused (open it writable once to
    /// migrate it); appends and `put_meta` fail with [`StoreError::Invalid`];
    /// `acquire_sled` takes no lock. For read-only roles and hot standbys.
    /// Default `false`. URL: `mode=ro` (or `mode=rw`).
    pub read_only: bool,
    /// Maximum pooled connections. Default 16. (The ordered-append connection and
    /// each subscription's connection are extra.)
    pub pool_size: usize,
    /// Bound on establishing a connection (TCP connect, TLS, startup and
    /// authentication), used when the URL sets none (`connect_timeout=`, seconds).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Client-side bound on every store operation (waiting for a connection, the
    /// statements, their answers). Holds even when the server cannot answer at all (a
    /// black-holed network): the operation then fails with
    /// [`StoreError::Unavailable`] naming the operation and the server, and its
    /// connection is discarded, never reused. An append that timed out may or may not
    /// have been stored; retrying it is safe (appends are idempotent by op id).
    /// Default 30 s. URL: `operation_timeout=`.
    pub operation_timeout: Duration,
    /// The sessions' `statement_timeout`: the server cancels a statement running
    /// longer (reported as `Unavailable`). `None` keeps the server's setting.
    /// Default 30 s. URL: `statement_timeout=` (`0` keeps the server's).
    pub statement_timeout: Option<Duration>,
    /// How long [`event_log_core::OpStore::acquire_sled`] waits for another session
    /// holding the sled's writer lock (a previous process whose last statement may
    /// still run, whose session the server ends once it notices the process gone:
    /// see [`PostgresConfig::keepalive`]). Default 60 s. URL: `sled_lock_timeout=`.
    pub sled_lock_timeout: Duration,
    /// TCP keepalives, client and server side; `None` leaves the operating system's
    /// (typically 2 hours before the first probe). Used where the URL sets none
    /// (`keepalives=`, `keepalives_idle=`, `keepalives_interval=`,
    /// `keepalives_retries=`). Default [`Keepalive::default`].
    pub keepalive: Option<Keepalive>,
    /// How long sent data may stay unacknowledged before the connection is dropped
    /// (`TCP_USER_TIMEOUT`, Linux), client and server side; `None` leaves the
    /// operating system's. Used when the URL sets none (`tcp_user_timeout=`, seconds).
    /// Default 30 s.
    pub tcp_user_timeout: Option<Duration>,
    /// How pooled connections are checked before reuse. Default
    /// [`Recycling::Verified`]. URL: `recycle=fast` or `recycle=verified`.
    pub recycling: Recycling,
    /// How long an operation waits for a free pooled connection before failing with
    /// `Unavailable`. `None` waits for ever (still within `operation_timeout`).
    /// Default 30 s.
    pub pool_wait_timeout: Option<Duration>,
    /// `synchronous_commit` for the store's sessions; `None` keeps the server's setting
    /// (normally `on`, which is what the durability promise assumes). Default `None`.
    pub synchronous_commit: Option<SynchronousCommit>,
    /// Whether each append sends a `NOTIFY` (see [`crate::Notifications`]). Notifying
    /// serialises commits on the server's notification queue; turn it off if nobody
    /// listens and appends are very frequent. Default `true`.
    pub notify: bool,
    /// `application_name` reported to the server (visible in `pg_stat_activity`),
    /// used when the URL sets none. Default `"event-log"`.
    pub application_name: String,
    /// A [`crate::Notifications`]'s listening connection is checked this often with a
    /// trivial query, so a silently dead connection is noticed. Default 30 s.
    pub listen_ping_interval: Duration,
    /// Upper bound of the listener's reconnect backoff (it starts at 100 ms and
    /// doubles, each sleep jittered, never past this). Default 10 s.
    pub listen_max_backoff: Duration,
    /// Capacity of a [`crate::Notifications`]'s queue; a subscriber that falls further
    /// behind gets [`crate::Notice::Lagged`] instead of the missed notices. Default 1024.
    pub listen_queue: usize,
    /// How many appends of one log may be in flight at once
    /// ([`event_log_core::OpStore::append_pipeline`]). Pipelined appends go, in order,
    /// over one dedicated connection, where the server runs them one after the
    /// other; each is written only if the op it continues is stored. So the log sends
    /// its next group without waiting for the previous answer. 1 turns this off.
    /// Default 4.
    pub pipeline: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: DEFAULT_SCHEMA.to_owned(),
            read_only: false,
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            statement_timeout: Some(Duration::from_secs(30)),
            sled_lock_timeout: Duration::from_secs(60),
            keepalive: Some(Keepalive::default()),
            tcp_user_timeout: Some(Duration::from_secs(30)),
            recycling: Recycling::Verified,
            pool_wait_timeout: Some(Duration::from_secs(30)),
            synchronous_commit: None,
            notify: true,
            application_name: "event-log".to_owned(),
            listen_ping_interval: Duration::from_secs(30),
            listen_max_backoff: Duration::from_secs(10),
            listen_queue: 1024,
            pipeline: 4,
        }
    }
}

impl PostgresConfig {
    /// Sets [`PostgresConfig::schema`].
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`PostgresConfig::read_only`].
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`PostgresConfig::pool_size`].
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets [`PostgresConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets [`PostgresConfig::operation_timeout`].
    pub fn with_operation_timeout(mut self, operation_timeout: Duration) -> Self {
        self.operation_timeout = operation_timeout;
        self
    }

    /// Sets [`PostgresConfig::statement_timeout`].
    pub fn with_statement_timeout(mut self, statement_timeout: Option<Duration>) -> Self {
        self.statement_timeout = statement_timeout;
        self
    }

    /// Sets [`PostgresConfig::sled_lock_timeout`].
    pub fn with_sled_lock_timeout(mut self, sled_lock_timeout: Duration) -> Self {
        self.sled_lock_timeout = sled_lock_timeout;
        self
    }

    /// Sets [`PostgresConfig::keepalive`].
    pub fn with_keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Sets [`PostgresConfig::tcp_user_timeout`].
    pub fn with_tcp_user_timeout(mut self, tcp_user_timeout: Option<Duration>) -> Self {
        self.tcp_user_timeout = tcp_user_timeout;
        self
    }

    /// Sets [`PostgresConfig::recycling`].
    pub fn with_recycling(mut self, recycling: Recycling) -> Self {
        self.recycling = recycling;
        self
    }

    /// Sets [`PostgresConfig::pool_wait_timeout`].
    pub fn with_pool_wait_timeout(mut self, pool_wait_timeout: Option<Duration>) -> Self {
        self.pool_wait_timeout = pool_wait_timeout;
        self
    }

    /// Sets [`PostgresConfig::synchronous_commit`].
    pub fn with_synchronous_commit(
        mut self,
        synchronous_commit: Option<SynchronousCommit>,
    ) -> Self {
        self.synchronous_commit = synchronous_commit;
        self
    }

    /// Sets [`PostgresConfig::notify`].
    pub fn with_notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Sets [`PostgresConfig::application_name`].
    pub fn with_application_name(mut self, application_name: impl Into<String>) -> Self {
        self.application_name = application_name.into();
        self
    }

    /// Sets [`PostgresConfig::listen_ping_interval`].
    pub fn with_listen_ping_interval(mut self, listen_ping_interval: Duration) -> Self {
        self.listen_ping_interval = listen_ping_interval;
        self
    }

    /// Sets [`PostgresConfig::listen_max_backoff`].
    pub fn with_listen_max_backoff(mut self, listen_max_backoff: Duration) -> Self {
        self.listen_max_backoff = listen_max_backoff;
        self
    }

    /// Sets [`PostgresConfig::listen_queue`].
    pub fn with_listen_queue(mut self, listen_queue: usize) -> Self {
        self.listen_queue = listen_queue;
        self
    }

    /// Sets [`PostgresConfig::pipeline`].
    pub fn with_pipeline(mut self, pipeline: usize) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Checks every field, naming the first that cannot work. No value is adjusted:
    /// a zero where at least one is needed is an error, never read as one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if let Some(reason) = schema_name_problem(&self.schema) {
            return Err(ConfigError {
                field: "schema",
                reason,
            });
        }
        ConfigError::at_least_one("pool_size", self.pool_size)?;
        ConfigError::at_least_one("pipeline", self.pipeline)?;
        ConfigError::at_least_one("listen_queue", self.listen_queue)?;
        for (field, d) in [
            ("listen_ping_interval", self.listen_ping_interval),
            ("listen_max_backoff", self.listen_max_backoff),
        ] {
            if d.is_zero() {
                return bad(field, "must be positive");
            }
        }
        for (field, d) in [
            ("connect_timeout", Some(self.connect_timeout)),
            ("operation_timeout", Some(self.operation_timeout)),
            ("statement_timeout", self.statement_timeout),
            ("tcp_user_timeout", self.tcp_user_timeout),
        ] {
            if d.is_some_and(|d| d < Duration::from_millis(1)) {
                return bad(field, "must be at least 1 ms");
            }
        }
        // TCP counts keepalive times in whole seconds, on both ends.
        for (field, d) in [
            ("keepalive.idle", self.keepalive.map(|k| k.idle)),
            ("keepalive.interval", self.keepalive.map(|k| k.interval)),
        ] {
            if d.is_some_and(|d| d < Duration::from_secs(1)) {
                return bad(field, "must be at least 1 s");
            }
        }
        if self.keepalive.is_some_and(|k| k.retries == 0) {
            return bad("keepalive.retries", "must be at least 1");
        }
        Ok(())
    }
}

/// Checks that `name` is a schema name this crate accepts (see
/// [`PostgresConfig::schema`]); `Invalid` otherwise.
pub fn validate_schema_name(name: &str) -> Result<(), StoreError> {
    match schema_name_problem(name) {
        Some(reason) => Err(invalid(reason)),
        None => Ok(()),
    }
}

/// What is wrong with the schema name `name`, if anything.
fn schema_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 {
        return Some(format!(
            "schema name {name:?} is not a plain SQL identifier \
             (a letter or '_', then letters, digits or '_', at most 63 bytes)"
        ));
    }
    if name.to_ascii_lowercase().starts_with("pg_") {
        return Some(format!(
            "schema name {name:?} starts with 'pg_', which PostgreSQL reserves"
        ));
    }
    None
}

/// `name` as a quoted identifier. Only called on validated names, which hold no `"`.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// An `Invalid` store error.
pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// A configuration error as a store error (what opening returns).
pub(crate) fn config_error(e: ConfigError) -> StoreError {
    StoreError::Config(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP keepalive counts whole seconds: a sub-second idle or interval is refused
    /// naming the field (it was once rounded up to 1 s on the server side).
    #[test]
    fn sub_second_keepalive_is_refused_naming_the_field() {
        let ms = Duration::from_millis(500);
        for (keepalive, field) in [
            (
                Keepalive {
                    idle: ms,
                    ..Keepalive::default()
                },
                "keepalive.idle",
            ),
            (
                Keepalive {
                    interval: ms,
                    ..Keepalive::default()
                },
                "keepalive.interval",
            ),
        ] {
            let err = PostgresConfig::default()
                .with_keepalive(Some(keepalive))
                .validate()
                .unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        assert!(
            PostgresConfig::default()
                .with_keepalive(Some(Keepalive::default()))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn schema_names() {
        for ok in ["event_log", "_x", "A1", &"a".repeat(63)] {
            assert!(validate_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a\"b",
            "a b",
            "pg_x",
            "PG_x",
            &"a".repeat(64),
            "é",
        ] {
            let e = validate_schema_name(bad).unwrap_err();
            assert_eq!(e.kind(), event_log_core::StoreErrorKind::Invalid, "{bad}");
        }
    }
}
