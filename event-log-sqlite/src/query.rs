//! The read queries behind `load`, `since`, `heads`, `get`, `count` and the indexed
//! reads `author_ops`, `timeline`, `story_ops` and `keyed`.
//!
//! Each runs on one read connection, multi-statement ones inside one read
//! transaction so they see a single snapshot. They promise `MemStore`'s results
//! exactly, using the indexes so a call costs O(k + log n) for k results (plus one
//! seek per author for `since` and `heads`), never a scan of the whole table. Each
//! indexed read is one index range: `(author, seq, id)`, `(lamport, id)`,
//! `(story, lamport, id)` or `(author, key, seq, id)`; the causal order
//! `(lamport, id)` is a row-value comparison SQLite serves from the index (ids are
//! blobs, compared as bytes, as `MemStore` compares them). The unit tests check
//! each plan with `EXPLAIN QUERY PLAN`.

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{Causal, OpKey, OpRecord, Position, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error;
use crate::row::{self, COLUMNS, columns};

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

/// `author_ops`: the author's ops above a seq, from `ops_author_seq_id`.
const AUTHOR_OPS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ops INDEXED BY ops_author_seq_id \
     WHERE author = ?1 AND seq > ?2 ORDER BY seq, id LIMIT ?3"
);

/// The rest of one `(author, seq)` after an id, from `ops_author_seq_id`.
const AUTHOR_SEQ_REST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ops INDEXED BY ops_author_seq_id \
     WHERE author = ?1 AND seq = ?2 AND id > ?3 ORDER BY id"
);

/// `timeline`: ops after a causal point, from `ops_lamport_id`.
const TIMELINE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ops INDEXED BY ops_lamport_id \
     WHERE (lamport, id) > (?1, ?2) ORDER BY lamport, id LIMIT ?3"
);

/// `story_ops`: one story's ops after a causal point, from `ops_story`.
const STORY_OPS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ops INDEXED BY ops_story \
     WHERE story = ?1 AND (lamport, id) > (?2, ?3) ORDER BY lamport, id LIMIT ?4"
);

/// `keyed`: an author's ops holding an idempotency key, from `ops_key`.
const KEYED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ops INDEXED BY ops_key \
     WHERE author = ?1 AND key = ?2 ORDER BY seq, id LIMIT ?3"
);

/// Ops of `author` with seq above `after`, ordered by (seq, id); at most `limit` of
/// them plus the rest of the last seq (never splitting one seq).
pub(crate) fn author_ops(
    conn: &mut Connection,
    author: &AuthorId,
    after: u64,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let limit = limit.max(1);
    let mut out = Vec::new();
    // No stored seq is above `i64::MAX` (the writer refuses it).
    let Ok(after) = i64::try_from(after) else {
        return Ok(out);
    };
    let tx = conn.transaction().map_err(error::at("begin a read"))?;
    let mut stmt = tx
        .prepare_cached(AUTHOR_OPS)
        .map_err(error::at("prepare author_ops"))?;
    collect_as(
        stmt.query(params![author.as_bytes(), after, to_sql(limit as u64)]),
        &mut out,
        "read the ops of an author",
    )?;
    if out.len() >= limit
        && let Some(last) = out.last()
    {
        let (seq, id) = (to_sql(last.seq), last.id);
        let mut rest = tx
            .prepare_cached(AUTHOR_SEQ_REST)
            .map_err(error::at("prepare author_ops"))?;
        collect_as(
            rest.query(params![author.as_bytes(), seq, id.as_bytes()]),
            &mut out,
            "read the ops of an author",
        )?;
    }
    Ok(out)
}

/// Up to `limit` ops after `after` in the causal order `(lamport, id)`: of every
/// story (the timeline), or of `story` alone.
pub(crate) fn causal_ops(
    conn: &Connection,
    story: Option<&str>,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let mut out = Vec::new();
    // No stored lamport is above `i64::MAX` (the writer refuses it).
    let Ok(lamport) = i64::try_from(after.lamport) else {
        return Ok(out);
    };
    let (sql, prepare, what) = match story {
        None => (TIMELINE, "prepare timeline", "read the timeline"),
        Some(_) => (STORY_OPS, "prepare story_ops", "read the ops of a story"),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(error::at(prepare))?;
    let limit = to_sql(limit.max(1) as u64);
    let id = after.id.as_bytes();
    let rows = match story {
        None => stmt.query(params![lamport, id, limit]),
        Some(story) => stmt.query(params![story, lamport, id, limit]),
    };
    collect_as(rows, &mut out, what)?;
    Ok(out)
}

/// The first `limit` ops of `author` holding idempotency key `key`, by (seq, id).
pub(crate) fn keyed(
    conn: &Connection,
    author: &AuthorId,
    key: &str,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached(KEYED)
        .map_err(error::at("prepare keyed"))?;
    collect_as(
        stmt.query(params![author.as_bytes(), key, to_sql(limit.max(1) as u64)]),
        &mut out,
        "read the ops of an idempotency key",
    )?;
    Ok(out)
}

fn collect(
    rows: rusqlite::Result<rusqlite::Rows<'_>>,
    out: &mut Vec<OpRecord>,
) -> Result<(), StoreError> {
    collect_as(rows, out, "read ops since a version vector")
}

/// Decodes every row of `rows` into `out`; `what` names the read in errors.
fn collect_as(
    rows: rusqlite::Result<rusqlite::Rows<'_>>,
    out: &mut Vec<OpRecord>,
    what: &'static str,
) -> Result<(), StoreError> {
    let mut rows = rows.map_err(error::at(what))?;
    while let Some(r) = rows.next().map_err(error::at(what))? {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::*;

    /// The query plan of `sql`, one line per step, on a database at the current
    /// schema holding some rows (so the planner has something to weigh).
    fn plan(sql: &str) -> Vec<String> {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        crate::schema::migrate(&mut conn, Path::new(":memory:")).expect("migrate");
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
             INSERT INTO ops (id, author, seq, evidence, payload, bytes, lamport, story, key)
             SELECT randomblob(32), zeroblob(31) || char(i % 4), i, 0, '{}', x'00', i,
                    iif(i % 3 = 0, NULL, 's-' || (i % 7)), iif(i % 5 = 0, 'k', NULL)
             FROM n;
             ANALYZE;",
        )
        .expect("fill the table");
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the query prepares");
        // The plan does not depend on the values; bind one for each parameter.
        let values = vec![0i64; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(values), |r| {
            r.get::<_, String>(3)
        })
        .expect("explain")
        .collect::<rusqlite::Result<_>>()
        .expect("explain rows")
    }

    /// Each indexed read is one search of its own index: no scan of the table, no
    /// temporary b-tree to sort.
    #[test]
    fn indexed_reads_search_their_index() {
        for (sql, index, range) in [
            (AUTHOR_OPS, "ops_author_seq_id", "(author=? AND seq>?)"),
            (
                AUTHOR_SEQ_REST,
                "ops_author_seq_id",
                "(author=? AND seq=? AND id>?)",
            ),
            (TIMELINE, "ops_lamport_id", "((lamport,id)>(?,?))"),
            (STORY_OPS, "ops_story", "(story=? AND (lamport,id)>(?,?))"),
            (KEYED, "ops_key", "(author=? AND key=?)"),
        ] {
            let plan = plan(sql);
            assert_eq!(
                plan,
                vec![format!("SEARCH ops USING INDEX {index} {range}")],
                "{sql}"
            );
        }
    }
}
