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

/// Splits `path?k=v&k2=v2` into the path and its parameters.
#[cfg(any(feature = "sqlite", feature = "redb"))]
fn params(rest: &str) -> (&str, Vec<(&str, &str)>) {
    match rest.split_once('?') {
        None => (rest, Vec::new()),
        Some((p, q)) => (
            p,
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .collect(),
        ),
    }
}

#[cfg(any(feature = "sqlite", feature = "redb"))]
fn file_path<'a>(url: &str, rest: &'a str) -> Result<&'a str, OpenError> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(OpenError::BadUrl {
            url: redact_url(url),
            reason: "no file path after the scheme".into(),
        });
    }
    Ok(path)
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

#[cfg(any(feature = "sqlite", feature = "redb"))]
fn unknown_param(url: &str, key: &str, known: &str) -> OpenError {
    OpenError::BadUrl {
        url: redact_url(url),
        reason: format!("unknown parameter `{key}` (known: {known})"),
    }
}

/// Whether a store is opened for writing or for reading only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the URL says (`mode=ro` or `mode=rw`; writable if it says nothing).
    AsGiven,
    /// Read-only, whatever the URL says.
    ReadOnly,
}

/// The `mode=` parameter of a file store URL: `Some(true)` for `ro`.
#[cfg(any(feature = "sqlite", feature = "redb"))]
fn mode_param(url: &str, value: &str) -> Result<bool, OpenError> {
    match value {
        "ro" => Ok(true),
        "rw" => Ok(false),
        other => Err(OpenError::BadUrl {
            url: redact_url(url),
            reason: format!("mode must be `ro` or `rw`, not `{other}`"),
        }),
    }
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

/// Opens the store; also says whether it was opened read-only.
async fn open_store_as(url: &str, mode: Mode) -> Result<(AnyStore, bool), OpenError> {
    let forced = mode == Mode::ReadOnly;
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
    #[cfg(not(any(feature = "sqlite", feature = "redb")))]
    let _ = rest;
    match known.name {
        "memory" => Ok((Box::new(MemStore::new()), forced)),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use event_log_sqlite::{Durability, SqliteConfig, SqliteStore};
            let (path, ps) = params(rest);
            let path = file_path(url, path)?;
            check_file_kind(url, "sqlite", path)?;
            let mut config = SqliteConfig::default();
            let mut read_only = false;
            for (k, v) in ps {
                match (k, v) {
                    ("durability", "full") => config = config.with_durability(Durability::Full),
                    ("durability", "normal") => config = config.with_durability(Durability::Normal),
                    ("durability", other) => {
                        return Err(OpenError::BadUrl {
                            url: redact_url(url),
                            reason: format!("durability must be `full` or `normal`, not `{other}`"),
                        });
                    }
                    ("mode", v) => read_only = mode_param(url, v)?,
                    (k, _) => return Err(unknown_param(url, k, "durability, mode")),
                }
            }
            let read_only = read_only || forced;
            let config = config.with_read_only(read_only);
            Ok((Box::new(SqliteStore::open(path, config).await?), read_only))
        }
        #[cfg(feature = "redb")]
        "redb" => {
            use event_log_redb::{RedbConfig, RedbStore};
            let (path, ps) = params(rest);
            let path = file_path(url, path)?;
            check_file_kind(url, "redb", path)?;
            let mut read_only = false;
            for (k, v) in ps {
                match k {
                    "mode" => read_only = mode_param(url, v)?,
                    k => return Err(unknown_param(url, k, "mode")),
                }
            }
            let read_only = read_only || forced;
            let config = RedbConfig::default().with_read_only(read_only);
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
            let config = PostgresConfig {
                read_only,
                ..PostgresConfig::default()
            };
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
    let config = EventLogConfig {
        read_only: true,
        save_checkpoints: false,
        ..Default::default()
    };
    open_with(url, crate::keys::generate(), config).await
}

#[cfg(test)]
mod tests {
    use super::open_store;

    /// The error for a URL that cannot be opened names the URL without its secret,
    /// whatever the shape (before, a `?password=` was shown verbatim, and a
    /// password holding `@` was cut at its first `@`).
    #[tokio::test]
    async fn open_errors_show_no_password() {
        let mut cases = vec![
            ("nosuch://alice:p@ss@db/x", "ss@"),
            ("host=db password=Secret1", "Secret1"),
        ];
        if cfg!(feature = "sqlite") {
            cases.push(("sqlite://?password=Secret2", "Secret2"));
            cases.push(("sqlite://x.db?password=Secret3", "Secret3"));
            cases.push(("sqlite://x.db?durability=p@ss@x&token=Secret4", "Secret4"));
        }
        if cfg!(feature = "redb") {
            cases.push(("redb://x.redb?token=Secret5", "Secret5"));
        }
        for (url, secret) in cases {
            let e = match open_store(url).await {
                Ok(_) => panic!("{url} opened"),
                Err(e) => e.to_string(),
            };
            assert!(!e.contains(secret), "{url}: {e}");
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod read_only_tests {
    use event_log_core::{Error, StoreErrorKind, Transition};

    use super::{OpenError, open_read_only, open_store, open_store_read_only};

    fn not_found(r: Result<impl Sized, OpenError>) -> String {
        match r {
            Err(OpenError::Store(e)) if e.kind() == StoreErrorKind::NotFound => e.to_string(),
            Err(e) => panic!("expected NotFound, found {e}"),
            Ok(_) => panic!("a missing store opened"),
        }
    }

    /// A missing store opened read-only (by `mode=ro` or by the read-only
    /// functions) is `NotFound` naming the path, and nothing is created (before, a
    /// reading tool created an empty store at a mistyped path).
    #[tokio::test]
    async fn read_only_opens_of_a_missing_store_are_not_found_and_create_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("missing.db");
        let url = format!("sqlite://{}", db.display());
        let shown = db.display().to_string();
        assert!(not_found(open_store(&format!("{url}?mode=ro")).await).contains(&shown));
        assert!(not_found(open_store_read_only(&url).await).contains(&shown));
        assert!(not_found(open_read_only(&url).await).contains(&shown));
        if cfg!(feature = "redb") {
            let url = format!("redb://{}", dir.path().join("missing.redb").display());
            assert!(not_found(open_store_read_only(&url).await).contains("missing.redb"));
            not_found(open_store(&format!("{url}?mode=ro")).await);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A log opened read-only shows what is stored, refuses appends, and leaves the
    /// file as it was (no checkpoint, no migration); `mode=rw` in the URL does not
    /// make a forced read-only open writable.
    #[tokio::test]
    async fn read_only_log_reads_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("log.db");
        let url = format!("sqlite://{}", db.display());
        let log = super::open(&url, crate::keys::generate()).await.unwrap();
        for i in 0..3 {
            log.append_transition(Transition::now(format!("s{i}"), "a", "b", "t"))
                .await
                .unwrap();
        }
        log.close().await.unwrap();
        let bytes = std::fs::read(&db).unwrap();
        for url in [url.clone(), format!("{url}?mode=rw")] {
            let ro = open_read_only(&url).await.unwrap();
            assert_eq!(ro.len(), 3);
            match ro
                .append_transition(Transition::now("s9", "a", "b", "t"))
                .await
            {
                Err(Error::ReadOnly { .. }) => {}
                other => panic!("expected ReadOnly, found {other:?}"),
            }
            ro.close().await.unwrap();
        }
        // `mode=ro` makes `open` read-only too.
        let ro = super::open(&format!("{url}?mode=ro"), crate::keys::generate())
            .await
            .unwrap();
        assert!(
            ro.append_transition(Transition::now("s9", "a", "b", "t"))
                .await
                .is_err()
        );
        ro.close().await.unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "the store was written");
    }

    /// A `mode` other than `ro` or `rw` is a bad URL.
    #[tokio::test]
    async fn bad_mode_is_a_bad_url() {
        match open_store("sqlite:///tmp/x.db?mode=readonly").await {
            Err(OpenError::BadUrl { reason, .. }) => assert!(reason.contains("mode"), "{reason}"),
            Err(e) => panic!("expected BadUrl, found {e}"),
            Ok(_) => panic!("opened"),
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod postgres_tests {
    use super::{pg_query, pg_read_only};

    /// The query and `mode` are found after the user info, as event-log-postgres
    /// finds them, also when the password holds `@` or `?`.
    #[test]
    fn postgres_mode_is_read_after_the_user_info() {
        assert_eq!(pg_query("postgres://u:p@ss@h/db?mode=ro"), Some("mode=ro"));
        assert_eq!(pg_query("postgres://u:p?ss@h/db"), None);
        assert_eq!(pg_query("postgres://h/db"), None);
        assert!(pg_read_only("postgres://u:p?mode=rw@h/db?mode=ro"));
        assert!(!pg_read_only("postgres://h/db?mode=ro&mode=rw"));
        assert!(!pg_read_only("postgres://u:mode=ro@h/db"));
    }
}
