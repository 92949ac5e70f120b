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
//!     bytes       bytea  NOT NULL,            -- canonical signed encoding
//!     lamport     bigint NOT NULL CHECK (lamport >= 0), -- the op's Lamport timestamp
//!     story       bytea,                      -- the transition's story (UTF-8), if any
//!     key         bytea                       -- its idempotency key (UTF-8), if any
//! )
//! UNIQUE (author, seq) WHERE NOT evidence     -- one primary op per (author, seq)
//! INDEX  (author, seq, id)                    -- since(), heads(), author_ops()
//! INDEX  (author, seq, id) WHERE evidence     -- evidence()
//! INDEX  (lamport, id)                        -- timeline()
//! INDEX  (story, lamport, id) WHERE story IS NOT NULL      -- story_ops()
//! INDEX  (author, key, seq, id) WHERE key IS NOT NULL      -- keyed()
//! meta (key text PRIMARY KEY, value bytea)    -- checkpoints and other small values
//! ```
//!
//! `payload` is text rather than `jsonb` so it comes back byte for byte (jsonb
//! reorders keys and rejects non-JSON). PostgreSQL text cannot hold U+0000; such a
//! payload is kept in `payload_raw` instead, with `payload` NULL.
//!
//! `lamport`, `story` and `key` are the index columns the core hands with each op
//! ([`event_log_core::OpRecord`]): stored as handed and returned exactly, never
//! parsed from the op here (the log checks them against the signed bytes when it
//! reads a row). `story` and `key` are `bytea` holding UTF-8 (read them in `psql`
//! with `convert_from(story, 'UTF8')`): they are compared by equality only, as bytes,
//! so no collation is involved, and a story holding U+0000 (valid in a signed JSON
//! payload, impossible in `text`) is stored like any other. `lamport` is a `bigint`
//! holding the timestamp as is: above `i64::MAX` an append is `Invalid` (as for
//! seqs), which no valid op reaches (a timestamp is one more than its deps' highest).
//!
//! Migration 4 adds those columns to a schema written by an older build: it fills
//! them in for every stored row from its signed bytes, decoded by the core
//! ([`event_log_core::IndexColumns::of_bytes`]), a thousand rows per statement,
//! inside the migration's transaction (so it applies wholly or not at all, and
//! writers wait for it: the `ALTER TABLE` locks the table). A row whose bytes are no
//! op gets lamport 0 and no story or key; the log reports it as damaged when it reads
//! it. The indexes are built after the backfill. It rewrites every row, so on a big
//! store it takes a while and the table needs room for a second copy of its rows
//! until vacuum; each statement, not the whole migration, is bounded by the
//! operation timeout.
//!
//! Migrations run in one transaction under a transaction-scoped advisory lock keyed
//! on the schema name, so concurrent openers of one schema neither race on
//! `CREATE SCHEMA` nor apply a migration twice. A schema whose version is newer than
//! this build knows is refused (`Invalid`) rather than guessed at.
//!
//! A read-only store ([`crate::PostgresConfig::read_only`]) runs no DDL at all: it
//! checks that the schema exists (`NotFound` otherwise, naming it) and is at exactly
//! [`SCHEMA_VERSION`] (an older one must be opened writable once, to migrate).
//!
//! The table names are in `tables`, the migrations' statements in `migrations`,
//! and migration 4's backfill in `backfill`.

mod backfill;
mod migrations;
mod tables;

use std::time::Duration;

use deadpool_postgres::Object;
use event_log_core::{Migration, SchemaStatus, StoreError};
use tracing::{info, warn};

use crate::codec::col;
use crate::conn::bounded;
use crate::error::from_pg;
use backfill::backfill;
pub use migrations::SCHEMA_VERSION;
use migrations::{STEPS, Step, migrations, preamble};
pub(crate) use tables::Tables;

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

/// SQL that builds the schema `schema` as this build's migrations up to `version`
/// left it (1 to 3: the migrations that are SQL alone), version rows included: for
/// tests that migrate a schema stored by an older build. `Invalid` for another
/// version or a bad schema name. Not part of the crate's API.
#[doc(hidden)]
pub fn schema_sql_at(schema: &str, version: i32) -> Result<String, StoreError> {
    crate::config::validate_schema_name(schema)?;
    if !(1..=3).contains(&version) {
        return Err(StoreError::Invalid {
            message: format!("no SQL-only schema at version {version}"),
        });
    }
    let t = Tables::new(schema);
    let mut sql = preamble(&t);
    for (step, v) in migrations(&t).into_iter().zip(1..=version) {
        let Step::Sql(step) = step else {
            return Err(StoreError::Invalid {
                message: format!("migration {v} is not SQL alone"),
            });
        };
        sql.push_str(&step);
        sql.push_str(&format!(
            "\nINSERT INTO {} (version) VALUES ({v});\n",
            t.version
        ));
    }
    Ok(sql)
}

/// Creates the schema if needed and brings it to [`SCHEMA_VERSION`], in one
/// transaction. Each statement is bounded by `bound` (the operation timeout), not the
/// whole migration, which may take long on a big store (the version 4 backfill
/// rewrites every row); a statement cut short drops the connection, rolling the
/// migration back.
pub(crate) async fn migrate(
    client: &mut Object,
    schema: &str,
    t: &Tables,
    target: &str,
    bound: Duration,
) -> Result<(), StoreError> {
    let pg = |what: &str| {
        let what = what.to_owned();
        move |e| from_pg(&what, target, e)
    };
    let tx = bounded("starting migration", target, bound, async {
        client.transaction().await.map_err(pg("starting migration"))
    })
    .await?;
    let step = |what: &'static str, sql: String| {
        let tx = &tx;
        bounded(what, target, bound, async move {
            tx.batch_execute(&sql).await.map_err(pg(what))
        })
    };
    bounded("taking the migration lock", target, bound, async {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('event-log migrate ' || $1, 0))",
            &[&schema],
        )
        .await
        .map_err(pg("taking the migration lock"))
    })
    .await?;
    step("creating the schema", preamble(t)).await?;
    let row = bounded("reading the schema version", target, bound, async {
        tx.query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {}", t.version),
            &[],
        )
        .await
        .map_err(pg("reading the schema version"))
    })
    .await?;
    let current: i32 = col(&row, 0, "schema_version")?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Invalid {
            message: format!(
                "schema {schema:?} on {target} is at version {current}, newer than this \
                 build understands ({SCHEMA_VERSION}); upgrade event-log-postgres"
            ),
        });
    }
    for (i, migration) in migrations(t).into_iter().enumerate() {
        let version = i as i32 + 1;
        if version <= current {
            continue;
        }
        match migration {
            Step::Sql(sql) => step("applying a migration", sql).await?,
            Step::IndexColumns { add, finish } => {
                step("adding the index columns", add).await?;
                let (filled, undecodable) = backfill(&tx, t, target, bound).await?;
                if undecodable > 0 {
                    warn!(
                        schema,
                        undecodable,
                        "rows whose bytes are no op got no index columns; the log reports \
                         them as damaged"
                    );
                }
                info!(schema, filled, "backfilled the index columns");
                step("indexing the index columns", finish).await?;
            }
        }
        bounded("recording the schema version", target, bound, async {
            tx.execute(
                &format!("INSERT INTO {} (version) VALUES ($1)", t.version),
                &[&version],
            )
            .await
            .map_err(pg("recording the schema version"))
        })
        .await?;
        info!(schema, version, "applied event-log schema migration");
    }
    bounded("committing the migration", target, bound, async {
        tx.commit().await.map_err(pg("committing the migration"))
    })
    .await?;
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
