//! Where a store's schema stands, and explicit migration: [`schema_status`] and
//! [`migrate`] (`evlog migrate [--dry-run]`), dispatched by URL scheme like
//! [`super::open_store`].

use event_log_core::{OpStore, SchemaStatus, StoreError};

use super::{OpenError, open_store, resolve};
use crate::redact::redact_url;

/// Where the schema of the store a URL names stands against the version this build
/// writes, read without creating, migrating or writing anything. A store that does
/// not exist yet is `current: None` ([`migrate`] would create it); `memory:` has no
/// schema and is always current.
///
/// Errors: a bad URL, or the backend's own (a server that cannot be reached, a file
/// that is not a database of this backend, a redb file another process has open).
pub async fn schema_status(url: &str) -> Result<SchemaStatus, OpenError> {
    let (known, rest) = resolve(url)?;
    #[cfg(not(any(feature = "sqlite", feature = "redb")))]
    let _ = rest;
    match known.name {
        "memory" => Ok(SchemaStatus::from_steps("memory", Some(0), &[])),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use event_log_sqlite::{SqliteConfig, SqliteStore};
            let (path, config) =
                SqliteConfig::from_url(rest).map_err(|e| super::bad_query(url, e))?;
            super::check_file_kind(url, "sqlite", path)?;
            Ok(SqliteStore::schema_status(path, config).await?)
        }
        #[cfg(feature = "redb")]
        "redb" => {
            use event_log_redb::{RedbConfig, RedbStore};
            let (path, config) =
                RedbConfig::from_url(rest).map_err(|e| super::bad_query(url, e))?;
            super::check_file_kind(url, "redb", path)?;
            Ok(RedbStore::schema_status(path, config).await?)
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            use event_log_postgres::{PostgresConfig, PostgresStore};
            Ok(PostgresStore::schema_status(url, PostgresConfig::default()).await?)
        }
        other => Err(OpenError::UnknownScheme {
            scheme: other.to_owned(),
        }),
    }
}

/// Brings the store a URL names to the schema version this build writes, creating
/// it if it does not exist, and returns where it stands afterwards (the steps it
/// applied are [`schema_status`]'s `pending` before the call). Idempotent: a current
/// store is left as it is. Concurrent migrations of one store apply each step once
/// (each backend migrates under a lock).
///
/// Opening a store writable ([`super::open`]) migrates it too; this is the explicit
/// step for operators who upgrade a shared store before its sleds.
///
/// Errors: a URL with `mode=ro` (a migration writes), a store written by a newer
/// build ([`StoreError::Invalid`] naming both versions), and the errors of
/// [`super::open_store`].
pub async fn migrate(url: &str) -> Result<SchemaStatus, OpenError> {
    let before = schema_status(url).await?;
    if before.is_newer() {
        return Err(StoreError::Invalid {
            message: format!(
                "{} is at {} schema version {}, newer than this build writes ({}): \
                 upgrade event-log instead",
                redact_url(url),
                before.backend,
                before.current.unwrap_or_default(),
                before.target
            ),
        }
        .into());
    }
    let store = open_store(url).await?;
    if store.describe().read_only {
        // Closing a read-only store writes nothing.
        store.close().await?;
        return Err(OpenError::BadUrl {
            url: redact_url(url),
            reason: "the URL says mode=ro, and a migration writes: remove mode=ro".into(),
        });
    }
    store.close().await?;
    schema_status(url).await
}
