//! [`PostgresConfig`]: what a caller may tune, and the checks applied to it and to the
//! URL before anything touches the server.

use std::time::Duration;

use event_log_core::StoreError;
use tokio_postgres::config::Host;

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

/// Configuration of a [`crate::PostgresStore`].
///
/// Build one with `PostgresConfig::default()` (or [`PostgresConfig::with_schema`]) and
/// change the fields you need.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The schema holding the store's tables; created if missing. Must be a plain SQL
    /// identifier: an ASCII letter or `_`, then letters, digits or `_`, at most 63
    /// bytes, not starting with `pg_`. It is always quoted, so case is kept. It also
    /// names the `LISTEN/NOTIFY` channel. Default [`DEFAULT_SCHEMA`].
    pub schema: String,
    /// Maximum pooled connections. Default 16.
    pub pool_size: usize,
    /// Connect timeout, used when the URL sets none (`connect_timeout=`). Default 10 s.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free pooled connection before failing with
    /// `Unavailable`. `None` waits for ever. Default 30 s.
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
    /// over one dedicated pooled connection, where the server runs them one after the
    /// other; each is written only if the op it continues is stored. So the log sends
    /// its next group without waiting for the previous answer. 1 turns this off.
    /// Default 4.
    pub pipeline: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
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

/// Parses the URL and applies the config's connection settings.
pub(crate) fn connection_config(
    url: &str,
    config: &PostgresConfig,
) -> Result<tokio_postgres::Config, StoreError> {
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| {
        // The parser's message names the offending parameter, never its value, so it
        // cannot leak a password; the URL itself is not repeated.
        invalid(format!("malformed PostgreSQL URL: {e}"))
    })?;
    if pg.get_hosts().is_empty() {
        return Err(invalid("malformed PostgreSQL URL: no host given"));
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name(config.application_name.clone());
    }
    if let Some(sc) = config.synchronous_commit {
        let extra = format!("-c synchronous_commit={}", sc.as_sql());
        let options = match pg.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {extra}"),
            _ => extra,
        };
        pg.options(options);
    }
    Ok(pg)
}

/// The server as a URL without the password, for messages and logs.
pub(crate) fn redacted_url(pg: &tokio_postgres::Config) -> String {
    let user = pg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let db = pg.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

fn invalid(message: impl Into<String>) -> StoreError {
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

    #[test]
    fn redaction_drops_the_password() {
        let pg = connection_config(
            "postgres://alice:s3cret@db.example:6543/app",
            &PostgresConfig::default(),
        )
        .unwrap();
        let shown = redacted_url(&pg);
        assert_eq!(shown, "postgres://alice@db.example:6543/app");
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn malformed_url_is_invalid() {
        for url in ["postgres://u:p@h:notaport/db", "host=h port=x", "nonsense"] {
            let e = connection_config(url, &PostgresConfig::default()).unwrap_err();
            assert_eq!(e.kind(), event_log_core::StoreErrorKind::Invalid, "{url}");
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
    }

    #[test]
    fn synchronous_commit_goes_into_options() {
        let cfg = PostgresConfig {
            synchronous_commit: Some(SynchronousCommit::Off),
            ..PostgresConfig::default()
        };
        let pg = connection_config("postgres://u@h/db?options=-c%20work_mem%3D4MB", &cfg).unwrap();
        assert_eq!(
            pg.get_options(),
            Some("-c work_mem=4MB -c synchronous_commit=off")
        );
    }
}
