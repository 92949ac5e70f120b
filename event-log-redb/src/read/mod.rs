//! The read side: blocking queries, each in one redb read transaction (an MVCC
//! snapshot, so a query never sees half of a group commit and never waits for the
//! writer). Every record is checked against the index key that led to it.
//!
//! Here: the checks every read shares, reads by position (`ops`) and by id
//! (`ops_by_id`), and the count. Reads along the author indexes are in [`author`],
//! reads in the causal order in [`causal`].

pub(crate) mod author;
pub(crate) mod causal;

use std::ops::Bound;

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, Position, StoreError};
use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase};

/// A database to read: writable or read-only.
pub(crate) type Readable = dyn ReadableDatabase + Send + Sync;

use crate::error;
use crate::record::{self, location};
use crate::tables::{BY_ID, OPS};

/// Opens a read transaction.
pub(crate) fn begin(db: &Readable, what: &str) -> Result<ReadTransaction, StoreError> {
    db.begin_read().map_err(|e| error::storage(what, e))
}

/// The record an index entry points at; a dangling index entry is corruption.
fn record_at(
    ops: &ReadOnlyTable<u64, &'static [u8]>,
    position: u64,
) -> Result<OpRecord, StoreError> {
    let ctx = location(position);
    match ops.get(position).map_err(|e| error::storage(&ctx, e))? {
        Some(raw) => record::decode(position, raw.value()),
        None => Err(StoreError::corrupt(
            ctx,
            "an index points at this position, which holds no op",
        )),
    }
}

/// Fails with corruption if the record at `position` is not the op its index names.
fn check_key(
    position: u64,
    r: &OpRecord,
    author: [u8; 32],
    seq: u64,
    id: [u8; 32],
) -> Result<(), StoreError> {
    if r.author.0 != author || r.seq != seq || r.id.0 != id {
        return Err(StoreError::corrupt(
            location(position),
            format!(
                "indexed as op {} (author {}, seq {seq}) but holds op {} (author {}, seq {})",
                OpId(id),
                AuthorId(author),
                r.id,
                r.author,
                r.seq
            ),
        ));
    }
    Ok(())
}

/// Fails with corruption if the record at `position` does not hold the index
/// columns its index entry names (`index` names the index and the key).
fn check_columns(
    position: u64,
    r: &OpRecord,
    holds: bool,
    index: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    if holds {
        return Ok(());
    }
    Err(StoreError::corrupt(
        location(position),
        format!(
            "indexed in {} but holds op {} (lamport {}, story {:?}, idempotency key {:?})",
            index(),
            r.id,
            r.lamport,
            r.story,
            r.key
        ),
    ))
}

/// Ops at positions after `after`, at most `limit` (at least 1).
pub(crate) fn load(
    db: &Readable,
    after: Position,
    limit: usize,
) -> Result<Vec<(Position, OpRecord)>, StoreError> {
    let ctx = format!("loading after {after}");
    let txn = begin(db, &ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let range = ops
        .range::<u64>((Bound::Excluded(after.0), Bound::Unbounded))
        .map_err(|e| error::storage(&ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(&ctx, e))?;
        let position = k.value();
        out.push((Position(position), record::decode(position, v.value())?));
    }
    Ok(out)
}

/// One op by id.
pub(crate) fn get(db: &Readable, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
    let ctx = format!("reading op {id}");
    let txn = begin(db, &ctx)?;
    let by_id = txn.open_table(BY_ID).map_err(|e| error::storage(&ctx, e))?;
    let Some(position) = by_id
        .get(id.0)
        .map_err(|e| error::storage(&ctx, e))?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let r = record_at(&ops, position)?;
    if r.id != *id {
        return Err(StoreError::corrupt(
            location(position),
            format!("indexed as op {id} but holds op {}", r.id),
        ));
    }
    Ok(Some(r))
}

/// Number of ops stored.
pub(crate) fn count(db: &Readable) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    let ctx = "counting ops";
    let txn = begin(db, ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(ctx, e))?;
    ops.len().map_err(|e| error::storage(ctx, e))
}
