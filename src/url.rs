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
#[cfg(any(feature = "sqlite", feature = "redb", feature = "postgres"))]
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

#[cfg(any(feature = "sqlite", feature = "redb", feature = "postgres"))]
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

#[cfg(any(feature = "sqlite", feature = "redb", feature = "postgres"))]
fn unknown_param(url: &str, key: &str, known: &str) -> OpenError {
    OpenError::BadUrl {
        url: redact_url(url),
        reason: format!("unknown parameter `{key}` (known: {known})"),
    }
}

/// Opens the store a URL names.
pub async fn open_store(url: &str) -> Result<AnyStore, OpenError> {
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
        "memory" => Ok(Box::new(MemStore::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use storage_sqlite::{Durability, SqliteConfig, SqliteStore};
            let (path, ps) = params(rest);
            let path = file_path(url, path)?;
            let mut config = SqliteConfig::default();
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
                    (k, _) => return Err(unknown_param(url, k, "durability")),
                }
            }
            Ok(Box::new(SqliteStore::open(path, config).await?))
        }
        #[cfg(feature = "redb")]
        "redb" => {
            use storage_redb::{RedbConfig, RedbStore};
            let (path, ps) = params(rest);
            let path = file_path(url, path)?;
            if let Some((k, _)) = ps.first() {
                return Err(unknown_param(url, k, "none"));
            }
            Ok(Box::new(
                RedbStore::open(path, RedbConfig::default()).await?,
            ))
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            use storage_postgres::{PostgresConfig, PostgresStore};
            let (base, ps) = params(url);
            let mut config = PostgresConfig::default();
            let mut pass: Vec<String> = Vec::new();
            for (k, v) in ps {
                if k == "schema" {
                    config.schema = v.to_owned();
                } else {
                    pass.push(format!("{k}={v}"));
                }
            }
            let conn = if pass.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", pass.join("&"))
            };
            // Written out by the `url` crate, a password holding `@` is
            // percent-encoded, so no later split at an `@` can show part of it.
            let conn = ::url::Url::parse(&conn).map_or(conn, String::from);
            Ok(Box::new(PostgresStore::open(&conn, config).await?))
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

/// [`open`] with a configuration.
pub async fn open_with(
    url: &str,
    key: SigningKey,
    config: EventLogConfig,
) -> Result<EventLog<AnyStore>, OpenError> {
    let store = open_store(url).await?;
    Ok(EventLog::open_with(store, key, config).await?)
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
