//! The read queries behind `load`, `since`, `heads`, `get` and `count`.
//!
//! Each runs on one read connection, multi-statement ones inside one read
//! transaction so they see a single snapshot. They promise `MemStore`'s results
//! exactly, using the indexes so a call costs O(k log n) for k results (plus one
//! seek per author for `since` and `heads`), never a scan of the whole table.

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{OpKey, OpRecord, Position, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error;
use crate::row::{self, COLUMNS};

fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Up to `limit` ops after position `after`, in append order.
pub(crate) fn load(
    conn: &Connection,
    after: Position,
    limit: usize,
) -> Result<Vec<(Position, OpRecord)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM ops WHERE position > ?1 ORDER BY position LIMIT ?2"
        ))
        .map_err(error::at("prepare load"))?;
    let mut rows = stmt
        .query(params![to_sql(after.0), to_sql(limit.max(1) as u64)])
        .map_err(error::at("load ops"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(error::at("load ops"))? {
        out.push(row::decode(r)?);
    }
    Ok(out)
}

/// One op by id.
pub(crate) fn get(conn: &Connection, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM ops WHERE id = ?1"))
        .map_err(error::at("prepare get"))?;
    stmt.query_row([id.as_bytes()], |r| Ok(row::decode(r)))
        .optional()
        .map_err(error::at("get an op by id"))?
        .transpose()
        .map(|found| found.map(|(_, record)| record))
}

/// Every evidence op's key, ordered by (author, seq, id), from the partial index
/// `ops_evidence`.
pub(crate) fn evidence(conn: &Connection) -> Result<Vec<OpKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT position, author, seq, id FROM ops INDEXED BY ops_evidence \
             WHERE evidence <> 0 ORDER BY author, seq, id",
        )
        .map_err(error::at("prepare evidence"))?;
    let mut rows = stmt.query([]).map_err(error::at("read evidence ops"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(error::at("read evidence ops"))? {
        let position = row::position(r, 0)?;
        out.push(OpKey {
            author: AuthorId(row::blob32(r, 1, "author", position)?),
            seq: row::seq(r, 2, position)?,
            id: OpId(row::blob32(r, 3, "id", position)?),
        });
    }
    Ok(out)
}

/// Number of ops stored.
pub(crate) fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM ops", [], |r| r.get(0))
        .map_err(error::at("count ops"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Highest seq per author.
pub(crate) fn heads(conn: &mut Connection) -> Result<VersionVector, StoreError> {
    let tx = conn.transaction().map_err(error::at("begin a read"))?;
    let mut vv = VersionVector::new();
    let mut author = next_author(&tx, None)?;
    while let Some(a) = author {
        let mut stmt = tx
            .prepare_cached(
                "SELECT position, seq FROM ops WHERE author = ?1 ORDER BY seq DESC LIMIT 1",
            )
            .map_err(error::at("prepare heads"))?;
        let head = stmt
            .query_row([a.as_bytes()], |r| {
                Ok(row::position(r, 0).and_then(|p| row::seq(r, 1, p)))
            })
            .optional()
            .map_err(error::at("read the head of an author"))?
            .transpose()?;
        if let Some(seq) = head {
            vv.raise(a, seq);
        }
        author = next_author(&tx, Some(&a))?;
    }
    Ok(vv)
}

/// Ops above `vv`, ordered by (author, seq, id); at most `limit` of them plus the rest
/// of the last `(author, seq)`.
pub(crate) fn since(
    conn: &mut Connection,
    vv: &VersionVector,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let limit = limit.max(1);
    let tx = conn.transaction().map_err(error::at("begin a read"))?;
    let mut out: Vec<OpRecord> = Vec::new();
    let mut author = next_author(&tx, None)?;
    while let Some(a) = author {
        let held = vv.get(&a);
        if held < i64::MAX as u64 {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM ops WHERE author = ?1 AND seq > ?2 \
                     ORDER BY seq, id LIMIT ?3"
                ))
                .map_err(error::at("prepare since"))?;
            let remaining = to_sql((limit - out.len()) as u64);
            collect(
                stmt.query(params![a.as_bytes(), to_sql(held), remaining]),
                &mut out,
            )?;
            if out.len() >= limit {
                // Never split one (author, seq): add the rest of the last seq's ops.
                if let Some(last) = out.last() {
                    let (seq, id) = (to_sql(last.seq), last.id);
                    let mut tail = tx
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM ops WHERE author = ?1 AND seq = ?2 \
                             AND id > ?3 ORDER BY id"
                        ))
                        .map_err(error::at("prepare since"))?;
                    collect(
                        tail.query(params![a.as_bytes(), seq, id.as_bytes()]),
                        &mut out,
                    )?;
                }
                return Ok(out);
            }
        }
        author = next_author(&tx, Some(&a))?;
    }
    Ok(out)
}

fn collect(
    rows: rusqlite::Result<rusqlite::Rows<'_>>,
    out: &mut Vec<OpRecord>,
) -> Result<(), StoreError> {
    let mut rows = rows.map_err(error::at("read ops since a version vector"))?;
    while let Some(r) = rows
        .next()
        .map_err(error::at("read ops since a version vector"))?
    {
        out.push(row::decode(r)?.1);
    }
    Ok(())
}

/// The smallest author above `after` (or the smallest of all): one index seek.
fn next_author(
    conn: &Connection,
    after: Option<&AuthorId>,
) -> Result<Option<AuthorId>, StoreError> {
    let found = match after {
        None => conn
            .prepare_cached("SELECT position, author FROM ops ORDER BY author LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok(author(r))).optional()),
        Some(a) => conn
            .prepare_cached(
                "SELECT position, author FROM ops WHERE author > ?1 ORDER BY author LIMIT 1",
            )
            .and_then(|mut s| s.query_row([a.as_bytes()], |r| Ok(author(r))).optional()),
    };
    found
        .map_err(error::at("find the next author"))?
        .transpose()
}

fn author(r: &rusqlite::Row<'_>) -> Result<AuthorId, StoreError> {
    let position = row::position(r, 0)?;
    row::blob32(r, 1, "author", position).map(AuthorId)
}

/// A meta value by key.
pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(|e| StoreError::backend("read a meta value", e))
}
