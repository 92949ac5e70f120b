//! The tables of a store file and the format-version check run at open.
//!
//! The layout is documented in the crate docs ("On-disk format"); changing a table
//! name or type here is a format change and must bump [`FORMAT_VERSION`].

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, TableHandle};
use tracing::info;

use crate::error;
use event_log_core::StoreError;

/// The store format version this build writes and the newest it opens.
pub const FORMAT_VERSION: u64 = 1;

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

/// `key → bytes`: small values kept beside the ops (the log's replay checkpoints).
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// Key of [`BY_AUTHOR`]: (author, seq, id).
pub(crate) type AuthorKey = ([u8; 32], u64, [u8; 32]);

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
/// redb file with no tables yet; refuses what [`check`] refuses otherwise.
pub(crate) fn version(db: &impl ReadableDatabase, path: &Path) -> Result<Option<u64>, StoreError> {
    let ctx = format!("checking {}", path.display());
    let read = db.begin_read().map_err(|e| error::storage(&ctx, e))?;
    format_version(&read, path)
}

/// Checks the format version of a freshly opened file and creates the tables of a
/// new one. A newer version is refused before anything is written.
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
        if found.is_none() {
            meta.insert(VERSION_KEY, FORMAT_VERSION)
                .map_err(|e| error::storage(&ctx, e))?;
            info!(path = %shown, version = FORMAT_VERSION, "created event-log store");
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
    }
    write.commit().map_err(|e| error::storage(&ctx, e))?;
    Ok(())
}
