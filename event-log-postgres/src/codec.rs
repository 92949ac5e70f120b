//! Turning ops into SQL values and rows back into ops: the column arrays an append
//! sends, seqs, Lamport timestamps and limits as `bigint`, 32-byte ids, the index
//! columns (story and idempotency key as UTF-8 `bytea`), and the [`OpRecord`] of a
//! row.
//!
//! A leaf: it knows the `ops` table's columns and nothing else of the crate. Every
//! decode error is [`StoreError::Corrupt`] (a schema altered by hand, an unexpected
//! NULL), never a panic; every encode error is [`StoreError::Invalid`].

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpKey, OpRecord, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

/// The columns every record read selects, in [`record`]'s order.
pub(crate) const COLUMNS: &str =
    "id, author, seq, evidence, payload, payload_raw, bytes, lamport, story, key";

/// [`COLUMNS`], each qualified by the table alias `o` (for joins).
pub(crate) const O_COLUMNS: &str = "o.id, o.author, o.seq, o.evidence, o.payload, \
     o.payload_raw, o.bytes, o.lamport, o.story, o.key";

/// A batch of ops as column arrays (the parameters `$1`–`$10` of an append),
/// borrowing from the records.
pub(crate) struct Columns<'a> {
    ids: Vec<&'a [u8]>,
    authors: Vec<&'a [u8]>,
    seqs: Vec<i64>,
    evidence: Vec<bool>,
    payloads: Vec<Option<&'a str>>,
    payloads_raw: Vec<Option<&'a [u8]>>,
    bytes: Vec<&'a [u8]>,
    lamports: Vec<i64>,
    stories: Vec<Option<&'a [u8]>>,
    keys: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    /// The columns of `ops`; `Invalid` if a seq or a Lamport timestamp cannot be
    /// stored (above `i64::MAX`: see [`lamport_to_sql`]).
    pub(crate) fn new(ops: &'a [OpRecord]) -> Result<Self, StoreError> {
        let mut c = Columns {
            ids: Vec::with_capacity(ops.len()),
            authors: Vec::with_capacity(ops.len()),
            seqs: Vec::with_capacity(ops.len()),
            evidence: Vec::with_capacity(ops.len()),
            payloads: Vec::with_capacity(ops.len()),
            payloads_raw: Vec::with_capacity(ops.len()),
            bytes: Vec::with_capacity(ops.len()),
            lamports: Vec::with_capacity(ops.len()),
            stories: Vec::with_capacity(ops.len()),
            keys: Vec::with_capacity(ops.len()),
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
            c.lamports.push(lamport_to_sql(r.lamport)?);
            c.stories.push(r.story.as_deref().map(str::as_bytes));
            c.keys.push(r.key.as_deref().map(str::as_bytes));
        }
        Ok(c)
    }

    /// The ten arrays, in the order of the statements' `unnest`.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.ids,
            &self.authors,
            &self.seqs,
            &self.evidence,
            &self.payloads,
            &self.payloads_raw,
            &self.bytes,
            &self.lamports,
            &self.stories,
            &self.keys,
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

/// A Lamport timestamp as a `bigint`; above `i64::MAX` it cannot be stored
/// (`Invalid`), as a seq cannot.
///
/// Stored as is rather than through an order-preserving map (`x ^ 1 << 63`) so the
/// column reads as the op's timestamp in `psql`. Nothing is lost: a valid op's
/// timestamp is one more than its deps' highest (the replica rejects any other), so
/// a timestamp above `i64::MAX` needs a causal chain of 2^63 ops, and only a record
/// that is no valid op can carry one.
pub(crate) fn lamport_to_sql(lamport: u64) -> Result<i64, StoreError> {
    i64::try_from(lamport).map_err(|_| StoreError::Invalid {
        message: format!(
            "lamport timestamp {lamport} is above the largest storable one ({})",
            i64::MAX
        ),
    })
}

/// A bound of a read by seq or timestamp (`after`) as a `bigint`, or `None` when it
/// is at or above `i64::MAX`: no storable value is above it, so the read is empty.
pub(crate) fn after_to_sql(after: u64) -> Option<i64> {
    i64::try_from(after).ok().filter(|&a| a < i64::MAX)
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

/// Column `i` of `row`, named `name` in the `Corrupt` error of `location`.
fn named<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    name: &str,
    location: &str,
) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::corrupt(location, format!("{name} column: {e}")))
}

/// The index column `name` (story or idempotency key, UTF-8 `bytea`) in column `i`.
fn index_text(
    row: &Row,
    i: usize,
    name: &str,
    location: &str,
) -> Result<Option<String>, StoreError> {
    let raw: Option<Vec<u8>> = named(row, i, name, location)?;
    raw.map(|b| {
        String::from_utf8(b)
            .map_err(|_| StoreError::corrupt(location, format!("{name} column is not UTF-8")))
    })
    .transpose()
}

/// The record in `row`'s columns from `first` on, in [`COLUMNS`] order. A column
/// that is NULL where it may not be, of another type, or out of range is `Corrupt`
/// naming `location` (with the op id once it is read) and the column.
pub(crate) fn record(row: &Row, first: usize, location: &str) -> Result<OpRecord, StoreError> {
    let c = |i: usize| first + i;
    let id = OpId(bytes32(named(row, c(0), "id", location)?, location)?);
    // Past the id, errors name the op too (a `since` or `timeline` page has no
    // other name for its rows).
    let here = format!("{location} (op {id})");
    let location = here.as_str();
    let author = AuthorId(bytes32(named(row, c(1), "author", location)?, location)?);
    let seq = seq_from_sql(named(row, c(2), "seq", location)?, location)?;
    let evidence: bool = named(row, c(3), "evidence", location)?;
    let payload: Option<String> = named(row, c(4), "payload", location)?;
    let payload_raw: Option<Vec<u8>> = named(row, c(5), "payload_raw", location)?;
    let payload = match (payload, payload_raw) {
        (Some(p), _) => p,
        (None, Some(raw)) => String::from_utf8(raw)
            .map_err(|_| StoreError::corrupt(location, "payload_raw is not UTF-8"))?,
        (None, None) => return Err(StoreError::corrupt(location, "payload missing")),
    };
    let bytes: Vec<u8> = named(row, c(6), "bytes", location)?;
    let lamport: i64 = named(row, c(7), "lamport", location)?;
    let lamport = u64::try_from(lamport).map_err(|_| {
        StoreError::corrupt(location, format!("lamport column: negative ({lamport})"))
    })?;
    let story = index_text(row, c(8), "story", location)?;
    let key = index_text(row, c(9), "key", location)?;
    Ok(OpRecord {
        id,
        author,
        seq,
        payload,
        bytes,
        evidence,
        lamport,
        story,
        key,
    })
}
