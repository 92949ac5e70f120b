//! [`PostgresConfig`]: what a caller may tune, and the checks applied to it and to the
//! URL before anything touches the server.

use std::time::Duration;

use event_log_core::StoreError;

/// The default schema: `event_log`.
pub const DEFAULT_SCHEMA: &str = "event_log";

/// How long a commit waits for the WAL, per session (PostgreSQL's `synchronous_commit`).
///
/// Applied to every pooled connection at connect time. The server default is `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynchronousCommit {
    /// `on`: a commit returns once its WAL is flushed locally (and on synchronous
    /// standbys, if configured). An acknowledged append survives a crash or power loss.
    On,
    /// `remote_apply`: like `on`, and synchronous standbys have also applied it.
    RemoteApply,
    /// `remote_write`: standbys have received it (not yet flushed it).
    RemoteWrite,
    /// `local`: flushed locally; standbys are not waited for.
    Local,
    /// `off`: a commit returns before its WAL is flushed. A server crash can lose the
    /// last few hundred milliseconds of *acknowledged* appends (never tearing or
    /// reordering them). That breaks the [`event_log_core::OpStore::append`] durability
    /// promise: use it only where losing the tail is acceptable (benchmarks, caches).
    Off,
}

impl SynchronousCommit {
    /// The value PostgreSQL spells.
    pub fn as_sql(self) -> &'static str {
        match self {
            SynchronousCommit::On => "on",
            SynchronousCommit::RemoteApply => "remote_apply",
            SynchronousCommit::RemoteWrite => "remote_write",
            SynchronousCommit::Local => "local",
            SynchronousCommit::Off => "off",
        }
    }
}

/// How a pooled connection is checked before it is handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recycling {
    /// Only checks that the driver has not seen the connection close. Free, but a
    /// silently dead (half-open) connection is only found by the operation using it,
    /// which then fails after [`PostgresConfig::operation_timeout`].
    Fast,
    /// Also sends an empty query and waits for the answer (at most
    /// [`PostgresConfig::connect_timeout`]): one round trip per checkout, and a dead
    /// connection is replaced before an operation uses it.
    Verified,
}

/// TCP keepalive probing, applied on both ends of every connection: the client socket
/// and, through the session's `tcp_keepalives_*` settings, the server's (so a server
/// notices a vanished client, ends its session and frees its locks). A dead peer is
/// noticed after about `idle + interval × retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe. Default 15 s.
    pub idle: Duration,
    /// Time between probes. Default 5 s.
    pub interval: Duration,
    /// Probes without an answer before the connection is dropped. Default 3.
    pub retries: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(15),
            interval: Duration::from_secs(5),
            retries: 3,
        }
    }
}

/// Configuration of a [`crate::PostgresStore`].
///
/// Build one with `PostgresConfig::default()` (or [`PostgresConfig::with_schema`]) and
/// change the fields you need. Parameters in the URL override these fields; see the
/// crate docs ("URL parameters") for their names.
#[derive(Debug, Clone)]
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
    /// Whether each append sends a `NOTIFY` (see [`crate::Subscription`]). Notifying
    /// serialises commits on the server's notification queue; turn it off if nobody
    /// listens and appends are very frequent. Default `true`.
    pub notify: bool,
    /// `application_name` reported to the server (visible in `pg_stat_activity`),
    /// used when the URL sets none. Default `"event-log"`.
    pub application_name: String,
    /// A [`crate::Subscription`]'s listening connection is checked this often with a
    /// trivial query, so a silently dead connection is noticed. Default 30 s.
    pub listen_ping_interval: Duration,
    /// Upper bound of the listener's reconnect backoff (it starts at 100 ms and
    /// doubles). Default 10 s.
    pub listen_max_backoff: Duration,
    /// Capacity of a [`crate::Subscription`]'s queue; a subscriber that falls further
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
    /// The default configuration with another schema.
    pub fn with_schema(schema: impl Into<String>) -> Self {
        PostgresConfig {
            schema: schema.into(),
            ..Self::default()
        }
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_schema_name(&self.schema)?;
        if self.pool_size == 0 {
            return Err(invalid("pool_size must be at least 1"));
        }
        if self.pipeline == 0 {
            return Err(invalid("pipeline must be at least 1"));
        }
        if self.listen_queue == 0 {
            return Err(invalid("listen_queue must be at least 1"));
        }
        if self.listen_ping_interval.is_zero() || self.listen_max_backoff.is_zero() {
            return Err(invalid(
                "listen_ping_interval and listen_max_backoff must be positive",
            ));
        }
        for (name, d) in [
            ("connect_timeout", Some(self.connect_timeout)),
            ("operation_timeout", Some(self.operation_timeout)),
            ("statement_timeout", self.statement_timeout),
            ("tcp_user_timeout", self.tcp_user_timeout),
            ("keepalive.idle", self.keepalive.map(|k| k.idle)),
            ("keepalive.interval", self.keepalive.map(|k| k.interval)),
        ] {
            if d.is_some_and(|d| d < Duration::from_millis(1)) {
                return Err(invalid(format!("{name} must be at least 1 ms")));
            }
        }
        if self.keepalive.is_some_and(|k| k.retries == 0) {
            return Err(invalid("keepalive.retries must be at least 1"));
        }
        Ok(())
    }
}

/// Checks that `name` is a schema name this crate accepts (see
/// [`PostgresConfig::schema`]).
pub fn validate_schema_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 {
        return Err(invalid(format!(
            "schema name {name:?} is not a plain SQL identifier \
             (a letter or '_', then letters, digits or '_', at most 63 bytes)"
        )));
    }
    if name.to_ascii_lowercase().starts_with("pg_") {
        return Err(invalid(format!(
            "schema name {name:?} starts with 'pg_', which PostgreSQL reserves"
        )));
    }
    Ok(())
}

/// `name` as a quoted identifier. Only called on validated names, which hold no `"`.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{name}\"")
}

pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
