//! The on-disk format: connections, pragmas and the versioned schema.
//!
//! This module exists so that the file layout is defined once, with forward
//! migrations. It promises that a store never runs on a schema it does not know:
//! an older file is migrated forward in a transaction, and a file written by a newer
//! version is refused with `StoreError::Invalid` naming both versions.
//!
//! Layout (version 1 unless marked):
//! - `schema_version(version, applied_at)`: one row per applied migration.
//! - `ops(position, id, author, seq, evidence, payload, bytes, lamport, story, key)`:
//!   one row per op; `position` is the append order, `payload` is the op's JSON as
//!   readable text. `lamport`, `story` and `key` (version 4) are the index columns
//!   the core hands over in [`OpRecord`](event_log_core::OpRecord) (the Lamport
//!   timestamp, the story and the idempotency key; `story` and `key` may be NULL);
//!   the store never parses the bytes for them. `seq` and `lamport` are SQLite
//!   integers (signed 64-bit): values above `i64::MAX` are refused at append.
//! - `ops_primary`: a partial unique index on `(author, seq) WHERE evidence = 0`, so at
//!   most one primary op holds a seq; evidence ops may share it.
//! - `ops_author_seq_id`: an index on `(author, seq, id)` serving `since` and `heads`.
//! - `meta(key, value)` (version 2): small values beside the ops (the log's replay checkpoints).
//! - `ops_evidence` (version 3): a partial index on `(author, seq, id) WHERE
//!   evidence <> 0`, serving `evidence` in O(k) for k evidence ops.
//! - `ops_lamport_id` (version 4): an index on `(lamport, id)`, serving `timeline`.
//! - `ops_story` (version 4): a partial index on `(story, lamport, id) WHERE story
//!   IS NOT NULL`, serving `story_ops`.
//! - `ops_key` (version 4): a partial index on `(author, key, seq, id) WHERE key IS
//!   NOT NULL`, serving `keyed`. (`author_ops` is served by `ops_author_seq_id`.)
//!
//! Version 4 fills the new columns of the rows already stored from their bytes,
//! with [`IndexColumns::of_bytes`] (the core decodes; the store does not parse),
//! in batches inside the migration's transaction; a row whose bytes are no op gets
//! lamport 0 and no story or key (the log reports such a row as damaged when it
//! reads it).

use std::path::Path;

use event_log_core::{IndexColumns, Migration, SchemaStatus, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tracing::{info, warn};

use crate::config::{Durability, SqliteConfig};
use crate::error;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// One migration: what it does, its SQL, and what SQL cannot do.
struct Step {
    description: &'static str,
    /// Run first.
    sql: &'static str,
    /// Run after `sql` in the same transaction: fills columns from values only Rust
    /// code computes.
    backfill: Option<fn(&Connection) -> rusqlite::Result<()>>,
    /// Run last (say, indexes built once over the filled columns).
    finish: &'static str,
}

impl Step {
    /// A step that is SQL only.
    const fn sql(description: &'static str, sql: &'static str) -> Step {
        Step {
            description,
            sql,
            backfill: None,
            finish: "",
        }
    }
}

/// Migration `i` takes the schema from version `i` to version `i + 1`.
const MIGRATIONS: &[Step] = &[
    Step::sql(
        "create the ops table and its indexes",
        "CREATE TABLE ops (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            id       BLOB    NOT NULL UNIQUE,
            author   BLOB    NOT NULL,
            seq      INTEGER NOT NULL,
            evidence INTEGER NOT NULL,
            payload  TEXT    NOT NULL,
            bytes    BLOB    NOT NULL
        );
        CREATE UNIQUE INDEX ops_primary ON ops (author, seq) WHERE evidence = 0;
        CREATE INDEX ops_author_seq_id ON ops (author, seq, id);",
    ),
    Step::sql(
        "create the meta table (the log's replay checkpoints)",
        "CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value BLOB NOT NULL
        );",
    ),
    Step::sql(
        "index the equivocation evidence ops (ops_evidence)",
        "CREATE INDEX ops_evidence ON ops (author, seq, id) WHERE evidence <> 0;",
    ),
    Step {
        description: "add the index columns lamport, story and key, filled from the \
                      stored bytes, and index them (ops_lamport_id, ops_story, ops_key)",
        sql: "ALTER TABLE ops ADD COLUMN lamport INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE ops ADD COLUMN story TEXT;
        ALTER TABLE ops ADD COLUMN key TEXT;",
        backfill: Some(backfill_index_columns),
        finish: "CREATE INDEX ops_lamport_id ON ops (lamport, id);
        CREATE INDEX ops_story ON ops (story, lamport, id) WHERE story IS NOT NULL;
        CREATE INDEX ops_key ON ops (author, key, seq, id) WHERE key IS NOT NULL;",
    },
];

/// Rows read and updated at a time by [`backfill_index_columns`].
const BACKFILL_BATCH: i64 = 512;

/// Fills `lamport`, `story` and `key` of every stored row from its bytes, in
/// batches by position (memory bounded by one batch), inside the caller's
/// transaction.
fn backfill_index_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut select = conn.prepare(
        "SELECT position, bytes FROM ops WHERE position > ?1 ORDER BY position LIMIT ?2",
    )?;
    let mut update =
        conn.prepare("UPDATE ops SET lamport = ?2, story = ?3, key = ?4 WHERE position = ?1")?;
    let mut after = 0i64;
    loop {
        let batch: Vec<(i64, i64, Option<String>, Option<String>)> = select
            .query_map(params![after, BACKFILL_BATCH], |row| {
                let position: i64 = row.get(0)?;
                let (lamport, story, key) = index_columns(row.get_ref(1)?);
                Ok((position, lamport, story, key))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&(last, ..)) = batch.last() else {
            return Ok(());
        };
        for (position, lamport, story, key) in &batch {
            update.execute(params![position, lamport, story, key])?;
        }
        after = last;
    }
}

/// The index columns of a stored `bytes` value, as the version-4 migration fills
/// them: what [`IndexColumns::of_bytes`] reads, or lamport 0 and no story or key for
/// a value that is no op (not a blob, not an op's encoding, or a Lamport timestamp
/// above `i64::MAX`, which no valid op holds).
pub(crate) fn index_columns(bytes: ValueRef<'_>) -> (i64, Option<String>, Option<String>) {
    let columns = match bytes {
        ValueRef::Blob(b) => IndexColumns::of_bytes(b),
        _ => None,
    };
    match columns {
        Some(c) => match i64::try_from(c.lamport) {
            Ok(lamport) => (lamport, c.story, c.key),
            Err(_) => (0, None, None),
        },
        None => (0, None, None),
    }
}

/// Every migration of this build, as [`Migration`]s.
fn steps() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .zip(1..)
        .map(|(step, version)| Migration::new(version, step.description))
        .collect()
}

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)";

/// Opens the write connection, sets WAL and the durability pragmas, and brings the
/// schema to [`SCHEMA_VERSION`].
pub(crate) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if config.create_if_missing {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = open(path, flags, config)?;
    let what = format!("set WAL mode on {}", path.display());
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| error::sqlite(&what, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still atomic and durable with a rollback journal, but readers then wait
        // for the writer. Happens on file systems without shared memory.
        warn!(path = %path.display(), %mode, "SQLite refused WAL mode; continuing");
    }
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read connection. It may not write (`query_only`); in a read-only store it
/// is opened `SQLITE_OPEN_READONLY` too.
pub(crate) fn open_reader(path: &Path, config: &SqliteConfig) -> Result<Connection, StoreError> {
    let access = if config.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = open(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX, config)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| error::sqlite(&format!("open a reader on {}", path.display()), e))?;
    Ok(conn)
}

fn open(path: &Path, flags: OpenFlags, config: &SqliteConfig) -> Result<Connection, StoreError> {
    let what = format!("open SQLite database {}", path.display());
    let conn = Connection::open_with_flags(path, flags).map_err(|e| error::sqlite(&what, e))?;
    conn.busy_timeout(config.busy_timeout)
        .map_err(|e| error::sqlite(&what, e))?;
    conn.pragma_update(None, "synchronous", config.durability.synchronous())
        .map_err(|e| error::sqlite(&what, e))?;
    if config.durability == Durability::Full {
        // On macOS fsync does not flush the drive's cache; F_FULLFSYNC does.
        // Elsewhere these pragmas have no effect.
        conn.pragma_update(None, "fullfsync", true)
            .map_err(|e| error::sqlite(&what, e))?;
        conn.pragma_update(None, "checkpoint_fullfsync", true)
            .map_err(|e| error::sqlite(&what, e))?;
    }
    Ok(conn)
}

/// The schema version recorded in the file (0 for a new file).
pub(crate) fn stored_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )
}

/// Checks, without changing anything, that the file holds the schema this build
/// reads: a read-only store is never migrated, so an older schema is refused.
pub(crate) fn check_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = found_version(conn, path)?;
    let known = i64::from(SCHEMA_VERSION);
    refuse_unknown(found, path)?;
    if found == 0 {
        return Err(StoreError::Invalid {
            message: format!(
                "{} holds no event-log store (no schema version); a read-only open \
                 creates nothing",
                path.display()
            ),
        });
    }
    if found < known {
        return Err(StoreError::Invalid {
            message: format!(
                "{} has schema version {found}, older than version {SCHEMA_VERSION} \
                 that this event-log-sqlite reads, and a read-only open does not migrate: \
                 migrate it first (`evlog migrate`, or open it writable once)",
                path.display()
            ),
        });
    }
    Ok(())
}

/// The schema version recorded in the file, without changing anything: 0 for a
/// file with no version table.
fn found_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let what = format!("read the schema version of {}", path.display());
    let err = |e| error::sqlite(&what, e);
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'schema_version')",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    if has_table {
        stored_version(conn).map_err(err)
    } else {
        Ok(0)
    }
}

/// Where the schema of the file at `path` stands, read without creating, migrating
/// or writing anything: `current` is `None` if there is no file, or a file with no
/// event-log schema in it yet (a migration would create it).
pub(crate) fn status(path: &Path, config: &SqliteConfig) -> Result<SchemaStatus, StoreError> {
    let current = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => {
            let conn = open_reader(path, &config.clone().with_read_only(true))?;
            let found = found_version(&conn, path)?;
            if found < 0 {
                refuse_unknown(found, path)?;
            }
            let version = u32::try_from(found).unwrap_or(u32::MAX);
            (version > 0).then_some(version)
        }
    };
    Ok(SchemaStatus::from_steps("sqlite", current, &steps()))
}

/// Refuses a schema version this build does not know: newer than
/// [`SCHEMA_VERSION`] (written by a newer event-log-sqlite) or negative.
fn refuse_unknown(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > i64::from(SCHEMA_VERSION) || found < 0 {
        return Err(StoreError::Invalid {
            message: format!(
                "{} has schema version {found}, but this event-log-sqlite knows versions \
                 up to {SCHEMA_VERSION}; open it with a newer event-log-sqlite",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Applies the missing migrations, each in its own immediate transaction (so two
/// processes opening one new file at once migrate it once). Returns the version.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let what = format!("migrate the schema of {}", path.display());
    let err = |e| error::sqlite(&what, e);
    conn.execute_batch(VERSION_TABLE).map_err(err)?;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let found = stored_version(&tx).map_err(err)?;
        let known = i64::from(SCHEMA_VERSION);
        refuse_unknown(found, path)?;
        if found == known {
            tx.commit().map_err(err)?;
            return Ok(SCHEMA_VERSION);
        }
        // `found` is in 0..known here, so the index is in range.
        let index = found as usize;
        let next = found + 1;
        let step = &MIGRATIONS[index];
        tx.execute_batch(step.sql).map_err(err)?;
        if let Some(backfill) = step.backfill {
            backfill(&tx).map_err(err)?;
        }
        tx.execute_batch(step.finish).map_err(err)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [next])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        info!(path = %path.display(), version = next, "migrated the SQLite schema");
    }
}
