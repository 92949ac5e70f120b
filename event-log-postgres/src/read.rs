//! Reads: `load` (replay, by position), `since` (tailing, by `(author, seq)`),
//! the indexed reads (`author_ops`, `timeline`, `story_ops`, `keyed`), `heads`,
//! `get`, `evidence`, `count` and the meta values, as functions over the store's
//! [`Inner`] state.
//!
//! `since` never keys on a global serial: identities can commit out of order, and a
//! tailer paging by position would skip a row that commits later with a smaller one.
//! It pages per author by seq instead, which is safe because an author's seqs are
//! only ever appended in order by that author's one writer.
//!
//! Cost: distinct authors are found with a skip scan over the `(author, seq, id)`
//! index (a recursive CTE, one index probe per author), then each author contributes
//! at most `limit` rows from its own index range. So `since` and `heads` cost
//! O(authors · log n + authors · limit), not O(n).
//!
//! The indexed reads are each one range of one index, read in the index's order and
//! cut by the limit, so each costs O(k + log n) for k results: `author_ops` on
//! `(author, seq, id)` (plus the rest of the last seq returned, on the same index),
//! `timeline` on `(lamport, id)`, `story_ops` on `(story, lamport, id)` and `keyed` on
//! `(author, key, seq, id)` (see [`crate::schema`]). Resume points are row-value
//! comparisons, `(lamport, id) > ($1, $2)`, which the index range starts at.

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{Causal, OpKey, OpRecord, Position, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::codec::{
    after_to_sql, author, col, limit_to_sql, op_key, record, seq_from_sql, seq_to_sql,
};
use crate::conn::Conn;
use crate::inner::Inner;

/// Runs the read statement `sql` (prepared once per connection) on a pooled
/// connection, within the operation timeout.
async fn query(
    inner: &Inner,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let target = inner.target();
    inner
        .bounded(what, async {
            let client = Conn::get(&inner.pool, what, target).await?;
            let result = match client.prepare_cached(sql).await {
                Ok(stmt) => client.query(&stmt, params).await,
                Err(e) => Err(e),
            };
            client.finish(result, what, target)
        })
        .await
}

/// A page of `load`: read behind the position fence (see [`crate::append`]), so
/// every position below the last one returned belongs to a finished append and no
/// row that commits later can have one. Waits for appends in flight, and holds new
/// ones back for the one statement.
pub(crate) async fn load(
    inner: &Inner,
    after: Position,
    limit: usize,
) -> Result<Vec<(Position, OpRecord)>, StoreError> {
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = limit_to_sql(limit);
    let target = inner.target();
    let what = "loading ops";
    let sql = &inner.sql.read;
    let rows = inner
        .bounded(what, async {
            let mut client = Conn::get(&inner.pool, what, target).await?;
            let result = async {
                let tx = client.transaction().await?;
                tx.execute(&sql.fence, &[]).await?;
                let stmt = tx.prepare_cached(&sql.load).await?;
                let rows = tx.query(&stmt, &[&after, &limit]).await?;
                tx.commit().await?;
                Ok(rows)
            }
            .await;
            client.finish(result, what, target)
        })
        .await?;
    rows.iter()
        .map(|row| {
            let position: i64 = col(row, 0, "load")?;
            let r = record(row, 1, &format!("position {position}"))?;
            Ok((Position(position as u64), r))
        })
        .collect()
}

/// `OpStore::since`: one query (see the module docs).
pub(crate) async fn since(
    inner: &Inner,
    vv: &VersionVector,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let authors: Vec<&[u8]> = vv.iter().map(|(a, _)| a.as_bytes().as_slice()).collect();
    // A vector entry beyond any storable seq means "holds everything".
    let seqs: Vec<i64> = vv
        .iter()
        .map(|(_, &s)| seq_to_sql(s).unwrap_or(i64::MAX))
        .collect();
    let limit = limit_to_sql(limit);
    let rows = query(
        inner,
        "reading ops since a version vector",
        &inner.sql.read.since,
        &[&authors, &seqs, &limit],
    )
    .await?;
    rows.iter().map(|row| record(row, 0, "since")).collect()
}

/// `OpStore::author_ops`: one range of the `(author, seq, id)` index.
pub(crate) async fn author_ops(
    inner: &Inner,
    author: &AuthorId,
    after: u64,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    // No storable seq is above i64::MAX.
    let Some(after) = after_to_sql(after) else {
        return Ok(Vec::new());
    };
    let author: &[u8] = author.as_bytes();
    let limit = limit_to_sql(limit);
    let rows = query(
        inner,
        "reading an author's ops",
        &inner.sql.read.author_ops,
        &[&author, &after, &limit],
    )
    .await?;
    rows.iter()
        .map(|row| record(row, 0, "author_ops"))
        .collect()
}

/// `OpStore::timeline`: one range of the `(lamport, id)` index.
pub(crate) async fn timeline(
    inner: &Inner,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    // No storable timestamp is above i64::MAX: nothing follows such a point.
    let Ok(lamport) = i64::try_from(after.lamport) else {
        return Ok(Vec::new());
    };
    let id: &[u8] = after.id.as_bytes();
    let limit = limit_to_sql(limit);
    let rows = query(
        inner,
        "reading the timeline",
        &inner.sql.read.timeline,
        &[&lamport, &id, &limit],
    )
    .await?;
    rows.iter().map(|row| record(row, 0, "timeline")).collect()
}

/// `OpStore::story_ops`: one range of the `(story, lamport, id)` index.
pub(crate) async fn story_ops(
    inner: &Inner,
    story: &str,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let Ok(lamport) = i64::try_from(after.lamport) else {
        return Ok(Vec::new());
    };
    let story: &[u8] = story.as_bytes();
    let id: &[u8] = after.id.as_bytes();
    let limit = limit_to_sql(limit);
    let rows = query(
        inner,
        "reading a story's ops",
        &inner.sql.read.story_ops,
        &[&story, &lamport, &id, &limit],
    )
    .await?;
    rows.iter().map(|row| record(row, 0, "story_ops")).collect()
}

/// `OpStore::keyed`: one range of the `(author, key, seq, id)` index.
pub(crate) async fn keyed(
    inner: &Inner,
    author: &AuthorId,
    key: &str,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let author: &[u8] = author.as_bytes();
    let key: &[u8] = key.as_bytes();
    let limit = limit_to_sql(limit);
    let rows = query(
        inner,
        "reading ops by idempotency key",
        &inner.sql.read.keyed,
        &[&author, &key, &limit],
    )
    .await?;
    rows.iter().map(|row| record(row, 0, "keyed")).collect()
}

/// `OpStore::heads`: each author's highest seq.
pub(crate) async fn heads(inner: &Inner) -> Result<VersionVector, StoreError> {
    let rows = query(inner, "reading heads", &inner.sql.read.heads, &[]).await?;
    let mut vv = VersionVector::new();
    for row in &rows {
        let author = author(row, 0, "heads")?;
        let seq: Option<i64> = col(row, 1, "heads")?;
        vv.raise(author, seq_from_sql(seq.unwrap_or(0), "heads")?);
    }
    Ok(vv)
}

/// `OpStore::get`: the op with id `id`, if stored.
pub(crate) async fn get(inner: &Inner, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
    let id_bytes: &[u8] = id.as_bytes();
    let rows = query(inner, "reading an op", &inner.sql.read.get, &[&id_bytes]).await?;
    rows.first().map(|row| record(row, 0, "get")).transpose()
}

/// `OpStore::evidence`: from the partial index on evidence rows.
pub(crate) async fn evidence(inner: &Inner) -> Result<Vec<OpKey>, StoreError> {
    let rows = query(inner, "listing evidence ops", &inner.sql.read.evidence, &[]).await?;
    rows.iter().map(|row| op_key(row, "evidence")).collect()
}

/// `OpStore::count`: how many ops are stored.
pub(crate) async fn count(inner: &Inner) -> Result<u64, StoreError> {
    let rows = query(inner, "counting ops", &inner.sql.read.count, &[]).await?;
    let n: i64 = match rows.first() {
        Some(row) => col(row, 0, "count")?,
        None => 0,
    };
    Ok(n as u64)
}

/// `OpStore::get_meta`.
pub(crate) async fn get_meta(inner: &Inner, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let rows = query(
        inner,
        "reading a meta value",
        &inner.sql.read.meta_get,
        &[&key],
    )
    .await?;
    match rows.first() {
        Some(row) => Ok(Some(col(row, 0, "meta value")?)),
        None => Ok(None),
    }
}

/// `OpStore::put_meta` (the caller refuses it on a read-only store).
pub(crate) async fn put_meta(inner: &Inner, key: &str, value: &[u8]) -> Result<(), StoreError> {
    query(
        inner,
        "writing a meta value",
        &inner.sql.read.meta_put,
        &[&key, &value],
    )
    .await?;
    Ok(())
}
