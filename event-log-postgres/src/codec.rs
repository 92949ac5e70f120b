//! Turning ops into SQL values and rows back into ops: the column arrays an append
//! sends, seqs and limits as `bigint`, 32-byte ids, and the [`OpRecord`] of a row.
//!
//! A leaf: it knows the `ops` table's columns and nothing else of the crate. Every
//! decode error is [`StoreError::Corrupt`] (a schema altered by hand, an unexpected
//! NULL), never a panic; every encode error is [`StoreError::Invalid`].

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpKey, OpRecord, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

/// The columns every record read selects, in [`record`]'s order.
pub(crate) const COLUMNS: &str = "id, author, seq, evidence, payload, payload_raw, bytes";

/// A batch of ops as column arrays (the parameters `$1`–`$7` of an append),
/// borrowing from the records.
pub(crate) struct Columns<'a> {
    ids: Vec<&'a [u8]>,
    authors: Vec<&'a [u8]>,
    seqs: Vec<i64>,
    evidence: Vec<bool>,
    payloads: Vec<Option<&'a str>>,
    payloads_raw: Vec<Option<&'a [u8]>>,
    bytes: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    /// The columns of `ops`; `Invalid` if a seq cannot be stored.
    pub(crate) fn new(ops: &'a [OpRecord]) -> Result<Self, StoreError> {
        let mut c = Columns {
            ids: Vec::with_capacity(ops.len()),
            authors: Vec::with_capacity(ops.len()),
            seqs: Vec::with_capacity(ops.len()),
            evidence: Vec::with_capacity(ops.len()),
            payloads: Vec::with_capacity(ops.len()),
            payloads_raw: Vec::with_capacity(ops.len()),
            bytes: Vec::with_capacity(ops.len()),
        };
        for r in ops {
            c.ids.push(r.id.as_bytes());
            c.authors.push(r.author.as_bytes());
            c.seqs.push(seq_to_sql(r.seq)?);
            c.evidence.push(r.evidence);
            // PostgreSQL text cannot hold U+0000: such payloads go to payload_raw.
            if r.payload.contains('\0') {
                c.payloads.push(None);
                c.payloads_raw.push(Some(r.payload.as_bytes()));
            } else {
                c.payloads.push(Some(r.payload.as_str()));
                c.payloads_raw.push(None);
            }
            c.bytes.push(&r.bytes);
        }
        Ok(c)
    }

    /// The seven arrays, in the order of the statements' `unnest`.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.ids,
            &self.authors,
            &self.seqs,
            &self.evidence,
            &self.payloads,
            &self.payloads_raw,
            &self.bytes,
        ]
    }
}

/// A seq as a `bigint`; seqs above `i64::MAX` cannot be stored.
pub(crate) fn seq_to_sql(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        message: format!("seq {seq} is above the largest storable seq ({})", i64::MAX),
    })
}

/// A stored seq; `Corrupt` if negative.
pub(crate) fn seq_from_sql(seq: i64, location: &str) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::corrupt(location, format!("negative seq {seq}")))
}

/// `limit` as a SQL limit; `limit >= 1` as `MemStore` treats 0.
pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit.max(1)).unwrap_or(i64::MAX)
}

/// Exactly 32 bytes, or a `Corrupt` error naming `what`.
pub(crate) fn bytes32(b: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    b.try_into().map_err(|_| {
        StoreError::corrupt(
            what.to_owned(),
            format!("expected 32 bytes, found {}", b.len()),
        )
    })
}

/// Column `i` of `row`, or `Corrupt` if it does not have the expected type (a schema
/// altered by hand, an unexpected NULL) — never a panic.
pub(crate) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    location: &str,
) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::corrupt(location, format!("column {i}: {e}")))
}

/// The op id in column `i`.
pub(crate) fn op_id(row: &Row, i: usize, location: &str) -> Result<OpId, StoreError> {
    Ok(OpId(bytes32(col(row, i, location)?, "op id")?))
}

/// The author in column `i`.
pub(crate) fn author(row: &Row, i: usize, location: &str) -> Result<AuthorId, StoreError> {
    Ok(AuthorId(bytes32(col(row, i, location)?, "author")?))
}

/// The `(author, seq, id)` of a row selecting those three columns.
pub(crate) fn op_key(row: &Row, location: &str) -> Result<OpKey, StoreError> {
    Ok(OpKey {
        author: author(row, 0, location)?,
        seq: seq_from_sql(col(row, 1, location)?, location)?,
        id: op_id(row, 2, location)?,
    })
}

/// The record in `row`'s columns from `first` on, in [`COLUMNS`] order.
pub(crate) fn record(row: &Row, first: usize, location: &str) -> Result<OpRecord, StoreError> {
    let c = |i: usize| first + i;
    let id = OpId(bytes32(col(row, c(0), location)?, location)?);
    let author = AuthorId(bytes32(col(row, c(1), location)?, location)?);
    let seq = seq_from_sql(col(row, c(2), location)?, location)?;
    let evidence: bool = col(row, c(3), location)?;
    let payload: Option<String> = col(row, c(4), location)?;
    let payload_raw: Option<Vec<u8>> = col(row, c(5), location)?;
    let payload = match (payload, payload_raw) {
        (Some(p), _) => p,
        (None, Some(raw)) => String::from_utf8(raw)
            .map_err(|_| StoreError::corrupt(location, "payload_raw is not UTF-8"))?,
        (None, None) => return Err(StoreError::corrupt(location, "payload missing")),
    };
    let bytes: Vec<u8> = col(row, c(6), location)?;
    Ok(OpRecord {
        id,
        author,
        seq,
        payload,
        bytes,
        evidence,
    })
}
