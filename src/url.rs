//! Opening a store from a URL: a small table of schemes, each with the cargo feature
//! that compiles it (the idea of sqlx's `AnyDriver`).

use event_log_core::{EventLog, EventLogConfig, MemStore, OpStore, SigningKey, StoreError};

use crate::redact::redact_url;

/// Any store, chosen at run time.
pub type AnyStore = Box<dyn OpStore>;

/// One URL scheme and the feature that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    /// The scheme, as written before `:`.
    pub name: &'static str,
    /// The cargo feature of the `event-log` crate that compiles the store.
    pub feature: &'static str,
    /// Whether this build includes it.
    pub enabled: bool,
}

/// Every scheme `open` knows, enabled in this build or not.
pub const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "memory",
        feature: "(always)",
        enabled: true,
    },
    Scheme {
        name: "sqlite",
        feature: "sqlite",
        enabled: cfg!(feature = "sqlite"),
    },
    Scheme {
        name: "redb",
        feature: "redb",
        enabled: cfg!(feature = "redb"),
    },
    Scheme {
        name: "postgres",
        feature: "postgres",
        enabled: cfg!(feature = "postgres"),
    },
    Scheme {
        name: "postgresql",
        feature: "postgres",
        enabled: cfg!(feature = "postgres"),
    },
];

/// Why a URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No store has this scheme.
    #[error("unknown store URL scheme `{scheme}` (known: {})", known_schemes())]
    UnknownScheme {
        /// The scheme found.
        scheme: String,
    },
    /// The scheme is known but its store was not compiled in.
    #[error(
        "store URL scheme `{scheme}` needs the `{feature}` feature of the event-log crate, which this build does not enable"
    )]
    FeatureDisabled {
        /// The scheme found.
        scheme: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The URL is malformed.
    #[error("bad store URL `{url}`: {reason}")]
    BadUrl {
        /// The URL (password removed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log could not be replayed.
    #[error(transparent)]
    Log(#[from] event_log_core::Error),
}

/// The schemes of [`SCHEMES`] as a list for messages: `memory:, sqlite://, …`.
fn known_schemes() -> String {
    SCHEMES
        .iter()
        .map(|s| {
            if s.name == "memory" {
                format!("{}:", s.name)
            } else {
                format!("{}://", s.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits `scheme:rest`.
fn split(url: &str) -> Result<(&str, &str), OpenError> {
    let valid = |scheme: &str| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    match url.split_once(':') {
        Some((scheme, rest)) if valid(scheme) => Ok((scheme, rest)),
        _ if crate::redact::is_dsn(url) => Err(OpenError::BadUrl {
            url: redact_url(url),
            reason: "a libpq key=value string is not a store URL; write postgres://user@host/db"
                .into(),
        }),
        _ => Err(OpenError::BadUrl {
            url: redact_url(url),
            reason: "expected `scheme:...`, e.g. sqlite://events.db".into(),
        }),
    }
}

/// A file store URL whose part after the scheme the backend refused.
#[cfg(any(feature = "sqlite", feature = "redb"))]
fn bad_query(url: &str, e: event_log_core::backend::url_query::UrlQueryError) -> OpenError {
    OpenError::BadUrl {
        url: redact_url(url),
        reason: e.to_string(),
    }
}

/// The first bytes of a SQLite database file.
#[cfg(any(feature = "sqlite", feature = "redb"))]
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
/// The first bytes of a redb database file.
#[cfg(any(feature = "sqlite", feature = "redb"))]
const REDB_MAGIC: &[u8] = b"redb\x1a\x0a";

/// Refuses, naming the fix, a path that names a directory, or a database file of the
/// other embedded backend (a `redb://` URL on a SQLite file, or the reverse), before
/// the backend would report it in its own terms. Anything else (a missing file, an
/// unreadable one) is left to the backend.
#[cfg(any(feature = "sqlite", feature = "redb"))]
fn check_file_kind(url: &str, scheme: &str, path: &str) -> Result<(), OpenError> {
    use std::io::Read;
    let bad = |reason: String| OpenError::BadUrl {
        url: redact_url(url),
        reason,
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        return Err(bad(format!(
            "{path} is a directory: a {scheme}:// URL names the database file, for example \
             {scheme}://{}/events.db",
            path.trim_end_matches('/')
        )));
    }
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    let other = if head.starts_with(SQLITE_MAGIC) {
        "sqlite"
    } else if head.starts_with(REDB_MAGIC) {
        "redb"
    } else {
        return Ok(());
    };
    if other == scheme {
        return Ok(());
    }
    Err(bad(format!(
        "{path} is a {} database, not a {} one: open it as {other}://{path}",
        if other == "sqlite" { "SQLite" } else { "redb" },
        if scheme == "sqlite" { "SQLite" } else { "redb" },
    )))
}

/// Whether a store is opened for writing or for reading only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the URL says (`mode=ro` or `mode=rw`; writable if it says nothing).
    AsGiven,
    /// Read-only, whatever the URL says.
    ReadOnly,
}

/// The query of a PostgreSQL URL, found as event-log-postgres finds it: the user info
/// ends at the last `@` before the first `?` (or the last `@` at all).
#[cfg(feature = "postgres")]
fn pg_query(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let first_q = rest.find('?').unwrap_or(rest.len());
    let after = match rest[..first_q].rfind('@').or_else(|| rest.rfind('@')) {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    after.split_once('?').map(|(_, q)| q)
}

/// Whether a PostgreSQL URL says `mode=ro` (its last `mode` parameter wins, as in
/// event-log-postgres).
#[cfg(feature = "postgres")]
fn pg_read_only(url: &str) -> bool {
    let mut read_only = false;
    for pair in pg_query(url).unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k == "mode"
        {
            read_only = v == "ro";
        }
    }
    read_only
}

/// Opens the store a URL names, for writing unless the URL says `mode=ro`.
///
/// A PostgreSQL URL takes TLS as libpq does (`sslmode=disable|prefer|require|verify-ca|verify-full`,
/// `sslrootcert`, `sslcert`, `sslkey`; PEM files; rustls): see event-log-postgres's
/// crate docs, "TLS".
pub async fn open_store(url: &str) -> Result<AnyStore, OpenError> {
    Ok(open_store_as(url, Mode::AsGiven).await?.0)
}

/// Opens the store a URL names for reading only, whatever its `mode` parameter:
/// nothing is created, migrated or written (SQLite `SQLITE_OPEN_READONLY`, redb
/// `ReadOnlyDatabase`, PostgreSQL read-only sessions and no DDL). A store that does
/// not exist is [`StoreError::NotFound`] naming the path or schema; writes to the
/// store are refused. What reading tools use.
pub async fn open_store_read_only(url: &str) -> Result<AnyStore, OpenError> {
    Ok(open_store_as(url, Mode::ReadOnly).await?.0)
}

/// The scheme of `url` from [`SCHEMES`], enabled in this build, and the rest of the
/// URL after `scheme:`.
fn resolve(url: &str) -> Result<(&'static Scheme, &str), OpenError> {
    let (scheme, rest) = split(url)?;
    let known = SCHEMES
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(scheme))
        .ok_or_else(|| OpenError::UnknownScheme {
            scheme: scheme.to_owned(),
        })?;
    if !known.enabled {
        return Err(OpenError::FeatureDisabled {
            scheme: scheme.to_owned(),
            feature: known.feature,
        });
    }
    Ok((known, rest))
}

/// Opens the store; also says whether it was opened read-only.
async fn open_store_as(url: &str, mode: Mode) -> Result<(AnyStore, bool), OpenError> {
    let forced = mode == Mode::ReadOnly;
    let (known, rest) = resolve(url)?;
    #[cfg(not(any(feature = "sqlite", feature = "redb")))]
    let _ = rest;
    match known.name {
        "memory" => Ok((Box::new(MemStore::new()), forced)),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use event_log_sqlite::{SqliteConfig, SqliteStore};
            let (path, config) = SqliteConfig::from_url(rest).map_err(|e| bad_query(url, e))?;
            check_file_kind(url, "sqlite", path)?;
            let read_only = config.read_only || forced;
            let config = config.with_read_only(read_only);
            Ok((Box::new(SqliteStore::open(path, config).await?), read_only))
        }
        #[cfg(feature = "redb")]
        "redb" => {
            use event_log_redb::{RedbConfig, RedbStore};
            let (path, config) = RedbConfig::from_url(rest).map_err(|e| bad_query(url, e))?;
            check_file_kind(url, "redb", path)?;
            let read_only = config.read_only || forced;
            let config = config.with_read_only(read_only);
            Ok((Box::new(RedbStore::open(path, config).await?), read_only))
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            use event_log_postgres::{PostgresConfig, PostgresStore};
            // event-log-postgres reads its own parameters (`schema`, `mode`, …) and a
            // password holding `@`; its last `mode` wins, so a forced read-only
            // open appends one.
            let read_only = forced || pg_read_only(url);
            let conn = if forced {
                let sep = if pg_query(url).is_some() { '&' } else { '?' };
                format!("{url}{sep}mode=ro")
            } else {
                url.to_owned()
            };
            let config = PostgresConfig::default().with_read_only(read_only);
            Ok((
                Box::new(PostgresStore::open(&conn, config).await?),
                read_only,
            ))
        }
        other => Err(OpenError::UnknownScheme {
            scheme: other.to_owned(),
        }),
    }
}

/// Opens a log over the store a URL names, signing as `key`.
pub async fn open(url: &str, key: SigningKey) -> Result<EventLog<AnyStore>, OpenError> {
    open_with(url, key, EventLogConfig::default()).await
}

/// [`open`] with a configuration. A URL with `mode=ro` opens the log read-only too
/// ([`EventLogConfig::read_only`]).
pub async fn open_with(
    url: &str,
    key: SigningKey,
    mut config: EventLogConfig,
) -> Result<EventLog<AnyStore>, OpenError> {
    let mode = if config.read_only {
        Mode::ReadOnly
    } else {
        Mode::AsGiven
    };
    let (store, read_only) = open_store_as(url, mode).await?;
    config.read_only |= read_only;
    Ok(EventLog::open_with(store, key, config).await?)
}

/// Opens a log over the store a URL names for reading only, as a tool that is not
/// one of its sleds: the store is opened as by [`open_store_read_only`], the log
/// with [`EventLogConfig::read_only`] and a throwaway key, so nothing is created,
/// migrated or written; appends and merges fail with [`Error::ReadOnly`].
///
/// [`Error::ReadOnly`]: event_log_core::Error::ReadOnly
pub async fn open_read_only(url: &str) -> Result<EventLog<AnyStore>, OpenError> {
    let config = EventLogConfig::default()
        .with_read_only(true)
        .with_save_checkpoints(false);
    open_with(url, crate::keys::generate(), config).await
}

mod schema;

pub use schema::{migrate, schema_status};

#[cfg(test)]
mod tests;
