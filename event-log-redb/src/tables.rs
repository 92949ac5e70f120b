//! The tables of a store file and the format-version check run at open, which
//! migrates a file of an older format version forward (see `migrate.rs`).
//!
//! The layout is documented in the crate docs ("On-disk format"); changing a table
//! name or type here is a format change and must bump [`FORMAT_VERSION`].

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, TableHandle};
use tracing::info;

use crate::error;
use event_log_core::StoreError;

/// The store format version this build writes and the newest it opens.
///
/// Version 1: the records without their index columns, and the id, author and
/// primary indexes. Version 2: records carry the lamport, story and idempotency
/// key, indexed by `ops_by_causal`, `ops_by_story` and `ops_by_key`. A writable open
/// migrates a version-1 file forward; a read-only open refuses it.
pub const FORMAT_VERSION: u64 = 2;

/// Key of the format version in [`META`].
const VERSION_KEY: &str = "format_version";

/// `name → number`: the format version.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// position → record (see `record.rs`).
pub(crate) const OPS: TableDefinition<u64, &[u8]> = TableDefinition::new("ops");
/// op id → position.
pub(crate) const BY_ID: TableDefinition<[u8; 32], u64> = TableDefinition::new("ops_by_id");
/// (author, seq, id) → position, every op including evidence.
pub(crate) const BY_AUTHOR: TableDefinition<AuthorKey, u64> = TableDefinition::new("ops_by_author");
/// (author, seq) → id of the primary (non-evidence) op.
pub(crate) const PRIMARY: TableDefinition<([u8; 32], u64), [u8; 32]> =
    TableDefinition::new("primary");

/// (lamport, id) → position, every op including evidence: the causal order.
pub(crate) const BY_CAUSAL: TableDefinition<CausalKey, u64> = TableDefinition::new("ops_by_causal");
/// (story, lamport, id) → position, every op with a story.
pub(crate) const BY_STORY: TableDefinition<StoryKey, u64> = TableDefinition::new("ops_by_story");
/// (author, idempotency key, seq, id) → position, every op with a key.
pub(crate) const BY_KEY: TableDefinition<IdemKey, u64> = TableDefinition::new("ops_by_key");

/// `key → bytes`: small values kept beside the ops (the log's replay checkpoints).
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// Key of [`BY_AUTHOR`]: (author, seq, id).
pub(crate) type AuthorKey = ([u8; 32], u64, [u8; 32]);
/// Key of [`BY_CAUSAL`]: (lamport, id).
pub(crate) type CausalKey = (u64, [u8; 32]);
/// Key of [`BY_STORY`]: (story, lamport, id). redb compares a tuple element by
/// element (the story as bytes, whole), so a story that is a prefix of another
/// never mixes into its range.
pub(crate) type StoryKey = (&'static str, u64, [u8; 32]);
/// Key of [`BY_KEY`]: (author, idempotency key, seq, id).
pub(crate) type IdemKey = ([u8; 32], &'static str, u64, [u8; 32]);

/// The format version of an opened file (`None` for a new, empty one), refusing a
/// version this build does not open and a redb file of something else.
fn format_version(read: &ReadTransaction, path: &Path) -> Result<Option<u64>, StoreError> {
    let shown = path.display();
    let ctx = format!("preparing {shown}");
    let found = match read.open_table(META) {
        Ok(meta) => meta
            .get(VERSION_KEY)
            .map_err(|e| error::storage(&ctx, e))?
            .map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(error::storage(&ctx, e)),
    };
    match found {
        Some(v) if v > FORMAT_VERSION => {
            return Err(StoreError::Invalid {
                message: format!(
                    "{shown} has store format version {v}; this build of event-log-redb opens versions up to {FORMAT_VERSION}"
                ),
            });
        }
        Some(0) => {
            return Err(StoreError::Invalid {
                message: format!("{shown} has store format version 0, which never existed"),
            });
        }
        Some(_) => {}
        None => {
            let foreign: Vec<String> = read
                .list_tables()
                .map_err(|e| error::storage(&ctx, e))?
                .map(|t| t.name().to_owned())
                .collect();
            if !foreign.is_empty() {
                return Err(StoreError::Invalid {
                    message: format!(
                        "{shown} is a redb database but not an event-log store (no format version; tables {foreign:?})"
                    ),
                });
            }
        }
    }
    Ok(found)
}

/// Checks, writing nothing, that a file opened read-only is an event-log store of a
/// format version this build reads.
pub(crate) fn check(db: &impl ReadableDatabase, path: &Path) -> Result<(), StoreError> {
    let ctx = format!("checking {}", path.display());
    let read = db.begin_read().map_err(|e| error::storage(&ctx, e))?;
    match format_version(&read, path)? {
        Some(v) if v < FORMAT_VERSION => Err(StoreError::Invalid {
            message: format!(
                "{} has store format version {v}, older than version {FORMAT_VERSION} that this build of event-log-redb reads, and a read-only open does not migrate: migrate it first (`evlog migrate`, or open it writable once)",
                path.display()
            ),
        }),
        Some(_) => Ok(()),
        None => Err(StoreError::Invalid {
            message: format!(
                "{} holds no event-log store (no format version); a read-only open creates nothing",
                path.display()
            ),
        }),
    }
}

/// The format version of a file opened read-only, writing nothing: `None` for a
/// redb file with no tables yet; an older version is returned (for
/// `schema_status`), a newer one or a foreign file refused as [`check`] does.
pub(crate) fn version(db: &impl ReadableDatabase, path: &Path) -> Result<Option<u64>, StoreError> {
    let ctx = format!("checking {}", path.display());
    let read = db.begin_read().map_err(|e| error::storage(&ctx, e))?;
    format_version(&read, path)
}

/// Checks the format version of a freshly opened file, creates the tables of a new
/// one and migrates an older one forward, in one write transaction (so a file is
/// wholly of its old version or wholly of this one). A newer version is refused
/// before anything is written.
pub(crate) fn prepare(db: &Database, path: &Path) -> Result<(), StoreError> {
    let shown = path.display();
    let ctx = format!("preparing {shown}");
    let read = db.begin_read().map_err(|e| error::storage(&ctx, e))?;
    let found = format_version(&read, path)?;
    drop(read);

    let mut write = db.begin_write().map_err(|e| error::storage(&ctx, e))?;
    write
        .set_durability(redb::Durability::Immediate)
        .map_err(|e| error::storage(&ctx, e))?;
    {
        let mut meta = write
            .open_table(META)
            .map_err(|e| error::storage(&ctx, e))?;
        if found != Some(FORMAT_VERSION) {
            meta.insert(VERSION_KEY, FORMAT_VERSION)
                .map_err(|e| error::storage(&ctx, e))?;
        }
        // Opening creates a missing table and checks the types of an existing one.
        write.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(BY_ID)
            .map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(BY_AUTHOR)
            .map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(PRIMARY)
            .map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(BY_CAUSAL)
            .map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(BY_STORY)
            .map_err(|e| error::storage(&ctx, e))?;
        write
            .open_table(BY_KEY)
            .map_err(|e| error::storage(&ctx, e))?;
    }
    let migrated = match found {
        Some(1) => Some(crate::migrate::from_v1(&write, path)?),
        _ => None,
    };
    write.commit().map_err(|e| error::storage(&ctx, e))?;
    match (found, migrated) {
        (None, _) => info!(path = %shown, version = FORMAT_VERSION, "created event-log store"),
        (Some(from), Some(report)) => info!(
            path = %shown,
            from,
            to = FORMAT_VERSION,
            rows = report.rows,
            undecodable_ops = report.undecodable_ops,
            damaged_records = report.damaged_records,
            "migrated event-log store"
        ),
        (Some(_), None) => {}
    }
    Ok(())
}
