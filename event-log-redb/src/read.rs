//! The read side: blocking queries, each in one redb read transaction (an MVCC
//! snapshot, so a query never sees half of a group commit and never waits for the
//! writer). Every record is checked against the index key that led to it.

use std::ops::Bound;

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{Causal, OpKey, OpRecord, Position, StoreError};
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};

/// A database to read: writable or read-only.
pub(crate) type Readable = dyn ReadableDatabase + Send + Sync;

use crate::error;
use crate::record::{self, location};
use crate::tables::{
    AuthorKey, BY_AUTHOR, BY_CAUSAL, BY_ID, BY_KEY, BY_STORY, CausalKey, OPS, PRIMARY,
};

/// Opens a read transaction.
fn begin(db: &Readable, what: &str) -> Result<ReadTransaction, StoreError> {
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

/// The first author in the by-author index after `after` (or the first of all).
fn next_author(
    by_author: &ReadOnlyTable<AuthorKey, u64>,
    after: Option<[u8; 32]>,
    ctx: &str,
) -> Result<Option<[u8; 32]>, StoreError> {
    let start = match after {
        None => Bound::Unbounded,
        Some(a) => Bound::Excluded((a, u64::MAX, [0xff; 32])),
    };
    let mut range = by_author
        .range::<AuthorKey>((start, Bound::Unbounded))
        .map_err(|e| error::storage(ctx, e))?;
    match range.next() {
        None => Ok(None),
        Some(entry) => {
            let (k, _) = entry.map_err(|e| error::storage(ctx, e))?;
            Ok(Some(k.value().0))
        }
    }
}

/// Ops whose seq is above `vv` for their author, by (author, seq, id); at most
/// `limit` except that one (author, seq) is never split.
pub(crate) fn since(
    db: &Readable,
    vv: &VersionVector,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = "reading ops since a version vector";
    let limit = limit.max(1);
    let txn = begin(db, ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(ctx, e))?;
    let by_author = txn
        .open_table(BY_AUTHOR)
        .map_err(|e| error::storage(ctx, e))?;
    let mut out: Vec<OpRecord> = Vec::new();
    let mut author = None;
    while let Some(a) = next_author(&by_author, author, ctx)? {
        author = Some(a);
        let Some(from_seq) = vv.get(&AuthorId(a)).checked_add(1) else {
            continue;
        };
        let range = by_author
            .range::<AuthorKey>((a, from_seq, [0; 32])..=(a, u64::MAX, [0xff; 32]))
            .map_err(|e| error::storage(ctx, e))?;
        for entry in range {
            let (k, v) = entry.map_err(|e| error::storage(ctx, e))?;
            let (_, seq, id) = k.value();
            if out.len() >= limit && out.last().is_none_or(|l| l.author.0 != a || l.seq != seq) {
                return Ok(out);
            }
            let position = v.value();
            let r = record_at(&ops, position)?;
            check_key(position, &r, a, seq, id)?;
            out.push(r);
        }
    }
    Ok(out)
}

/// Ops of `author` with seq above `after`, by (seq, id): one range of
/// `ops_by_author`; at most `limit` except that one seq is never split.
pub(crate) fn author_ops(
    db: &Readable,
    author: &AuthorId,
    after: u64,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = format!("reading the ops of author {author}");
    let limit = limit.max(1);
    let mut out: Vec<OpRecord> = Vec::new();
    let Some(first) = after.checked_add(1) else {
        return Ok(out);
    };
    let txn = begin(db, &ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let by_author = txn
        .open_table(BY_AUTHOR)
        .map_err(|e| error::storage(&ctx, e))?;
    let a = author.0;
    let range = by_author
        .range::<AuthorKey>((a, first, [0; 32])..=(a, u64::MAX, [0xff; 32]))
        .map_err(|e| error::storage(&ctx, e))?;
    for entry in range {
        let (k, v) = entry.map_err(|e| error::storage(&ctx, e))?;
        let (_, seq, id) = k.value();
        if out.len() >= limit && out.last().is_none_or(|l| l.seq != seq) {
            break;
        }
        let position = v.value();
        let r = record_at(&ops, position)?;
        check_key(position, &r, a, seq, id)?;
        out.push(r);
    }
    Ok(out)
}

/// Ops after `after` in the causal order, at most `limit` (at least 1): one range
/// of `ops_by_causal`.
pub(crate) fn timeline(
    db: &Readable,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = "reading the timeline";
    let txn = begin(db, ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(ctx, e))?;
    let by_causal = txn
        .open_table(BY_CAUSAL)
        .map_err(|e| error::storage(ctx, e))?;
    let range = by_causal
        .range::<CausalKey>((
            Bound::Excluded((after.lamport, after.id.0)),
            Bound::Unbounded,
        ))
        .map_err(|e| error::storage(ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(ctx, e))?;
        let (lamport, id) = k.value();
        let position = v.value();
        let r = record_at(&ops, position)?;
        check_columns(position, &r, r.lamport == lamport && r.id.0 == id, || {
            format!("ops_by_causal as (lamport {lamport}, op {})", OpId(id))
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Ops of `story` after `after` in the causal order, at most `limit` (at least 1):
/// one range of `ops_by_story`, within the story.
pub(crate) fn story_ops(
    db: &Readable,
    story: &str,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = format!("reading the ops of story {story:?}");
    let txn = begin(db, &ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let by_story = txn
        .open_table(BY_STORY)
        .map_err(|e| error::storage(&ctx, e))?;
    let range = by_story
        // The story borrowed for this call only ([`crate::tables::StoryKey`] is 'static).
        .range::<(&str, u64, [u8; 32])>((
            Bound::Excluded((story, after.lamport, after.id.0)),
            Bound::Included((story, u64::MAX, [0xff; 32])),
        ))
        .map_err(|e| error::storage(&ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(&ctx, e))?;
        let (_, lamport, id) = k.value();
        let position = v.value();
        let r = record_at(&ops, position)?;
        let holds = r.story.as_deref() == Some(story) && r.lamport == lamport && r.id.0 == id;
        check_columns(position, &r, holds, || {
            format!(
                "ops_by_story as (story {story:?}, lamport {lamport}, op {})",
                OpId(id)
            )
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Ops of `author` holding idempotency key `key`, by (seq, id), at most `limit`
/// (at least 1): one range of `ops_by_key`, within the (author, key).
pub(crate) fn keyed(
    db: &Readable,
    author: &AuthorId,
    key: &str,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = format!("reading the ops of author {author} with an idempotency key");
    let txn = begin(db, &ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let by_key = txn
        .open_table(BY_KEY)
        .map_err(|e| error::storage(&ctx, e))?;
    let a = author.0;
    let range = by_key
        // [`crate::tables::IdemKey`], with the key borrowed for this call only.
        .range::<([u8; 32], &str, u64, [u8; 32])>(
            (a, key, 0, [0; 32])..=(a, key, u64::MAX, [0xff; 32]),
        )
        .map_err(|e| error::storage(&ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(&ctx, e))?;
        let (_, _, seq, id) = k.value();
        let position = v.value();
        let r = record_at(&ops, position)?;
        check_key(position, &r, a, seq, id)?;
        check_columns(position, &r, r.key.as_deref() == Some(key), || {
            format!("ops_by_key under idempotency key {key:?}")
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Highest seq per author: one index probe per author, not a scan.
pub(crate) fn heads(db: &Readable) -> Result<VersionVector, StoreError> {
    let ctx = "reading heads";
    let txn = begin(db, ctx)?;
    let by_author = txn
        .open_table(BY_AUTHOR)
        .map_err(|e| error::storage(ctx, e))?;
    let mut vv = VersionVector::new();
    let mut author = None;
    while let Some(a) = next_author(&by_author, author, ctx)? {
        author = Some(a);
        let mut range = by_author
            .range::<AuthorKey>((a, 0, [0; 32])..=(a, u64::MAX, [0xff; 32]))
            .map_err(|e| error::storage(ctx, e))?;
        if let Some(entry) = range.next_back() {
            let (k, _) = entry.map_err(|e| error::storage(ctx, e))?;
            vv.raise(AuthorId(a), k.value().1);
        }
    }
    Ok(vv)
}

/// Every evidence op's key, ordered by (author, seq, id): the entries of
/// `ops_by_author` that are not the primary op of their (author, seq). Both tables
/// are read in key order side by side, keys only: no record is read or decoded.
pub(crate) fn evidence(db: &Readable) -> Result<Vec<OpKey>, StoreError> {
    let ctx = "reading evidence ops";
    let txn = begin(db, ctx)?;
    let by_author = txn
        .open_table(BY_AUTHOR)
        .map_err(|e| error::storage(ctx, e))?;
    let primary = txn
        .open_table(PRIMARY)
        .map_err(|e| error::storage(ctx, e))?;
    let mut primaries = primary.iter().map_err(|e| error::storage(ctx, e))?;
    // The primary entry at hand: ((author, seq), id).
    type Primary = (([u8; 32], u64), [u8; 32]);
    let mut current: Option<Primary> = None;
    let mut exhausted = false;
    let mut out = Vec::new();
    for entry in by_author.iter().map_err(|e| error::storage(ctx, e))? {
        let (k, _) = entry.map_err(|e| error::storage(ctx, e))?;
        let (author, seq, id) = k.value();
        // Advance the primaries to the first at or after (author, seq).
        while !exhausted && current.is_none_or(|(at, _)| at < (author, seq)) {
            match primaries.next() {
                Some(p) => {
                    let (pk, pv) = p.map_err(|e| error::storage(ctx, e))?;
                    current = Some((pk.value(), pv.value()));
                }
                None => {
                    current = None;
                    exhausted = true;
                }
            }
        }
        let is_primary = current.is_some_and(|(at, pid)| at == (author, seq) && pid == id);
        if !is_primary {
            out.push(OpKey {
                author: AuthorId(author),
                seq,
                id: OpId(id),
            });
        }
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
