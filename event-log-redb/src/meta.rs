//! The `kv` table: small values kept beside the ops (the log's signed replay
//! checkpoints), read in a read transaction and written in their own durable
//! write transaction.

use event_log_core::StoreError;
use redb::Database;

use crate::error;
use crate::read::{Readable, begin};

/// A meta value by key.
pub(crate) fn get_meta(db: &Readable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let ctx = "reading a meta value";
    let txn = begin(db, ctx)?;
    let kv = match txn.open_table(crate::tables::KV) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(error::storage(ctx, e)),
    };
    Ok(kv
        .get(key)
        .map_err(|e| error::storage(ctx, e))?
        .map(|v| v.value().to_vec()))
}

/// Stores a meta value in its own durable write transaction.
pub(crate) fn put_meta(db: &Database, key: &str, value: &[u8]) -> Result<(), StoreError> {
    let ctx = "writing a meta value";
    let mut txn = db.begin_write().map_err(|e| error::storage(ctx, e))?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| error::storage(ctx, e))?;
    {
        let mut kv = txn
            .open_table(crate::tables::KV)
            .map_err(|e| error::storage(ctx, e))?;
        kv.insert(key, value).map_err(|e| error::storage(ctx, e))?;
    }
    txn.commit().map_err(|e| error::storage(ctx, e))
}
