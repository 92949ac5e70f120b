//! Reads along the author indexes: `ops_by_author` (ops since a version vector, an
//! author's ops, heads), `primary` beside it (evidence), and `ops_by_key` (an
//! author's ops under an idempotency key).

use std::ops::Bound;

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{OpKey, OpRecord, StoreError};
use redb::{ReadOnlyTable, ReadableTable};

use super::{Readable, begin, check_columns, check_key, record_at};
use crate::error;
use crate::tables::{AuthorKey, BY_AUTHOR, BY_KEY, OPS, PRIMARY};

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
