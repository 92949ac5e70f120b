//! Turning an `ops` row back into an [`OpRecord`], column by column.
//!
//! A row may have been damaged outside the store (a disk error, a hand-edited file).
//! This module promises that decoding never panics: a column of the wrong type or
//! size is reported as `StoreError::Corrupt` naming the row's position and the
//! column. (The op bytes themselves are checked by the caller, not here.)

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, Position, StoreError};
use rusqlite::Row;
use rusqlite::types::ValueRef;

use crate::error;

/// The columns every row query selects, in the order [`decode`] reads them, as a
/// literal (for `concat!`).
macro_rules! columns {
    () => {
        "position, id, author, seq, evidence, payload, bytes, lamport, story, key"
    };
}
pub(crate) use columns;

/// The columns every row query selects, in the order [`decode`] reads them.
pub(crate) const COLUMNS: &str = columns!();

/// Decodes a row selected with [`COLUMNS`].
pub(crate) fn decode(row: &Row<'_>) -> Result<(Position, OpRecord), StoreError> {
    let position = position(row, 0)?;
    let record = OpRecord {
        id: OpId(blob32(row, 1, "id", position)?),
        author: AuthorId(blob32(row, 2, "author", position)?),
        seq: seq(row, 3, position)?,
        evidence: match value(row, 4, "evidence", position)? {
            ValueRef::Integer(0) => false,
            ValueRef::Integer(1) => true,
            other => return Err(bad(position, "evidence", "0 or 1", other)),
        },
        payload: match value(row, 5, "payload", position)? {
            ValueRef::Text(t) => String::from_utf8(t.to_vec())
                .map_err(|_| corrupt(position, "payload", "text is not valid UTF-8"))?,
            other => return Err(bad(position, "payload", "text", other)),
        },
        bytes: match value(row, 6, "bytes", position)? {
            ValueRef::Blob(b) => b.to_vec(),
            other => return Err(bad(position, "bytes", "a blob", other)),
        },
        lamport: match value(row, 7, "lamport", position)? {
            ValueRef::Integer(l) if l >= 0 => l as u64,
            other => return Err(bad(position, "lamport", "an integer >= 0", other)),
        },
        story: text_or_null(row, 8, "story", position)?,
        key: text_or_null(row, 9, "key", position)?,
    };
    Ok((position, record))
}

/// Reads the `position` column at `index`.
pub(crate) fn position(row: &Row<'_>, index: usize) -> Result<Position, StoreError> {
    match row
        .get_ref(index)
        .map_err(|e| error::sqlite("read column position", e))?
    {
        ValueRef::Integer(p) if p >= 1 => Ok(Position(p as u64)),
        other => Err(StoreError::corrupt(
            "ops row of unknown position",
            format!(
                "column position: expected an integer >= 1, found {}",
                describe(other)
            ),
        )),
    }
}

/// Reads a 32-byte blob column (`id`, `author`) at `index`.
pub(crate) fn blob32(
    row: &Row<'_>,
    index: usize,
    column: &str,
    position: Position,
) -> Result<[u8; 32], StoreError> {
    match value(row, index, column, position)? {
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b)
            .map_err(|_| bad(position, column, "a 32-byte blob", ValueRef::Blob(b))),
        other => Err(bad(position, column, "a 32-byte blob", other)),
    }
}

/// Reads the `seq` column at `index`.
pub(crate) fn seq(row: &Row<'_>, index: usize, position: Position) -> Result<u64, StoreError> {
    match value(row, index, "seq", position)? {
        ValueRef::Integer(s) if s >= 0 => Ok(s as u64),
        other => Err(bad(position, "seq", "an integer >= 0", other)),
    }
}

/// Reads a column that holds UTF-8 text or NULL (`story`, `key`) at `index`.
fn text_or_null(
    row: &Row<'_>,
    index: usize,
    column: &str,
    position: Position,
) -> Result<Option<String>, StoreError> {
    match value(row, index, column, position)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map(Some)
            .map_err(|_| corrupt(position, column, "text is not valid UTF-8")),
        other => Err(bad(position, column, "text or NULL", other)),
    }
}

fn value<'a>(
    row: &'a Row<'_>,
    index: usize,
    column: &str,
    position: Position,
) -> Result<ValueRef<'a>, StoreError> {
    row.get_ref(index)
        .map_err(|e| error::sqlite(&format!("read column {column} at position {position}"), e))
}

fn bad(position: Position, column: &str, expected: &str, found: ValueRef<'_>) -> StoreError {
    corrupt(
        position,
        column,
        &format!("expected {expected}, found {}", describe(found)),
    )
}

fn corrupt(position: Position, column: &str, detail: &str) -> StoreError {
    StoreError::corrupt(
        format!("ops row at position {position}"),
        format!("column {column}: {detail}"),
    )
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(r) => format!("the real {r}"),
        ValueRef::Text(t) => format!("a {}-byte text", t.len()),
        ValueRef::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}
