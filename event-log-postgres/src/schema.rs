//! The tables, and the migrations that create them.
//!
//! Everything lives in the configured schema:
//!
//! ```sql
//! schema_version (version integer PRIMARY KEY, applied_at timestamptz)
//! ops (
//!     position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- load order
//!     id          bytea  NOT NULL UNIQUE,     -- 32-byte op id
//!     author      bytea  NOT NULL,            -- 32-byte public key
//!     seq         bigint NOT NULL,            -- the author's 1-based seq
//!     evidence    boolean NOT NULL,           -- equivocation evidence?
//!     payload     text,                       -- the JSON payload, readable with psql
//!     payload_raw bytea,                      -- only for payloads holding U+0000
//!     bytes       bytea  NOT NULL             -- canonical signed encoding
//! )
//! UNIQUE (author, seq) WHERE NOT evidence     -- one primary op per (author, seq)
//! INDEX  (author, seq, id)                    -- since(), heads()
//! INDEX  (author, seq, id) WHERE evidence     -- evidence()
//! meta (key text PRIMARY KEY, value bytea)    -- checkpoints and other small values
//! ```
//!
//! `payload` is text rather than `jsonb` so it comes back byte for byte (jsonb
//! reorders keys and rejects non-JSON). PostgreSQL text cannot hold U+0000; such a
//! payload is kept in `payload_raw` instead, with `payload` NULL.
//!
//! Migrations run in one transaction under a transaction-scoped advisory lock keyed
//! on the schema name, so concurrent openers of one schema neither race on
//! `CREATE SCHEMA` nor apply a migration twice. A schema whose version is newer than
//! this build knows is refused (`Invalid`) rather than guessed at.
//!
//! A read-only store ([`crate::PostgresConfig::read_only`]) runs no DDL at all: it
//! checks that the schema exists (`NotFound` otherwise, naming it) and is at exactly
//! [`SCHEMA_VERSION`] (an older one must be opened writable once, to migrate).

use deadpool_postgres::Object;
use event_log_core::{Migration, SchemaStatus, StoreError};
use tracing::info;

use crate::codec::col;
use crate::config::quote_ident;
use crate::error::from_pg;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i32 = 3;

/// Quoted, schema-qualified table names.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    /// `"schema"`.
    pub schema: String,
    /// `"schema".ops`.
    pub ops: String,
    /// `"schema".schema_version`.
    pub version: String,
    /// `"schema".meta`.
    pub meta: String,
    /// The key (an SQL expression) of the advisory lock every append holds shared
    /// and `load` takes exclusively: see [`crate::append`].
    pub fence_key: String,
}

impl Tables {
    /// Names in the validated schema `schema`.
    pub(crate) fn new(schema: &str) -> Self {
        let q = quote_ident(schema);
        Tables {
            ops: format!("{q}.ops"),
            version: format!("{q}.schema_version"),
            meta: format!("{q}.meta"),
            // The schema is a validated identifier: safe inside a literal.
            fence_key: format!("hashtextextended('event-log positions {schema}', 0)"),
            schema: q,
        }
    }
}

/// What each migration does: `STEPS[n - 1]` describes migration `n`.
const STEPS: [&str; SCHEMA_VERSION as usize] = [
    "create the schema, the ops table and its indexes",
    "create the meta table (the log's replay checkpoints)",
    "index the equivocation evidence ops (ops_evidence)",
];

/// Where the schema stands, read without DDL: `current` is `None` when the schema or
/// its version table does not exist yet (opening writable creates it).
pub(crate) async fn status(
    client: &Object,
    t: &Tables,
    target: &str,
) -> Result<SchemaStatus, StoreError> {
    let current = stored_version(client, t, target)
        .await?
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        .filter(|&v| v > 0);
    let steps: Vec<Migration> = STEPS
        .iter()
        .zip(1..)
        .map(|(what, version)| Migration::new(version, *what))
        .collect();
    Ok(SchemaStatus::from_steps("postgres", current, &steps))
}

/// The highest version in the version table, or `None` if the table does not exist.
async fn stored_version(
    client: &Object,
    t: &Tables,
    target: &str,
) -> Result<Option<i32>, StoreError> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.version])
        .await
        .map_err(|e| from_pg("looking for the schema", target, e))?;
    let exists: bool = col(&row, 0, "schema lookup")?;
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {}", t.version),
            &[],
        )
        .await
        .map_err(|e| from_pg("reading the schema version", target, e))?;
    Ok(Some(col(&row, 0, "schema_version")?))
}

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`, written against the table names.
fn migrations(t: &Tables) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE {ops} (
             position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             id          bytea   NOT NULL UNIQUE CHECK (length(id) = 32),
             author      bytea   NOT NULL CHECK (length(author) = 32),
             seq         bigint  NOT NULL CHECK (seq >= 0),
             evidence    boolean NOT NULL,
             payload     text,
             payload_raw bytea,
             bytes       bytea   NOT NULL,
             CHECK ((payload IS NULL) <> (payload_raw IS NULL))
         );
         CREATE UNIQUE INDEX ops_primary_author_seq ON {ops} (author, seq) WHERE NOT evidence;
         CREATE INDEX ops_author_seq_id ON {ops} (author, seq, id);
         COMMENT ON TABLE {ops} IS 'event-log ops: one signed op per row; see event-log-postgres';",
            ops = t.ops
        ),
        // Version 2: small values kept beside the ops (the log's replay checkpoints).
        format!(
            "CREATE TABLE {meta} (
                 key   text  PRIMARY KEY,
                 value bytea NOT NULL
             );",
            meta = t.meta
        ),
        // Version 3: evidence ops found without a scan.
        format!(
            "CREATE INDEX IF NOT EXISTS ops_evidence ON {ops} (author, seq, id) WHERE evidence;",
            ops = t.ops
        ),
    ]
}

/// Creates the schema if needed and brings it to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(
    client: &mut Object,
    schema: &str,
    t: &Tables,
    target: &str,
) -> Result<(), StoreError> {
    let pg = |what: &str| {
        let what = what.to_owned();
        move |e| from_pg(&what, target, e)
    };
    let tx = client
        .transaction()
        .await
        .map_err(pg("starting migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('event-log migrate ' || $1, 0))",
        &[&schema],
    )
    .await
    .map_err(pg("taking the migration lock"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {v} (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
        s = t.schema,
        v = t.version
    ))
    .await
    .map_err(pg("creating the schema"))?;
    let row = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {}", t.version),
            &[],
        )
        .await
        .map_err(pg("reading the schema version"))?;
    let current: i32 = col(&row, 0, "schema_version")?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Invalid {
            message: format!(
                "schema {schema:?} on {target} is at version {current}, newer than this \
                 build understands ({SCHEMA_VERSION}); upgrade event-log-postgres"
            ),
        });
    }
    for (i, sql) in migrations(t).iter().enumerate() {
        let version = i as i32 + 1;
        if version <= current {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(pg(&format!("applying migration {version}")))?;
        tx.execute(
            &format!("INSERT INTO {} (version) VALUES ($1)", t.version),
            &[&version],
        )
        .await
        .map_err(pg("recording the schema version"))?;
        info!(schema, version, "applied event-log schema migration");
    }
    tx.commit().await.map_err(pg("committing the migration"))?;
    Ok(())
}

/// For a read-only store: the schema must exist and be at [`SCHEMA_VERSION`].
pub(crate) async fn check_read_only(
    client: &Object,
    schema: &str,
    t: &Tables,
    target: &str,
) -> Result<(), StoreError> {
    let Some(current) = stored_version(client, t, target).await? else {
        return Err(StoreError::NotFound {
            what: format!("event-log schema {schema:?} on {target}"),
        });
    };
    match current.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(StoreError::Invalid {
            message: format!(
                "schema {schema:?} on {target} is at version {current}; this build reads \
                 version {SCHEMA_VERSION}: migrate it first (`evlog migrate`, or open it \
                 writable once)"
            ),
        }),
        std::cmp::Ordering::Greater => Err(StoreError::Invalid {
            message: format!(
                "schema {schema:?} on {target} is at version {current}, newer than this \
                 build understands ({SCHEMA_VERSION}); upgrade event-log-postgres"
            ),
        }),
    }
}
