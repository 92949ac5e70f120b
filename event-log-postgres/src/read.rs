//! Reads: `load` (replay, by position), `since` (tailing, by `(author, seq)`),
//! `heads`, `get`, `count`, and turning rows back into [`OpRecord`]s.
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

use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{OpKey, OpRecord, Position, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::append::seq_to_sql;
use crate::conn::Conn;
use crate::error::from_pg;
use crate::schema::Tables;
use crate::store::PostgresStore;

/// The columns every record read selects, in [`record`]'s order.
const COLUMNS: &str = "id, author, seq, evidence, payload, payload_raw, bytes";

/// The statements of this module, written once per store.
#[derive(Debug)]
pub(crate) struct ReadSql {
    load: String,
    since: String,
    heads: String,
    get: String,
    count: String,
    meta_get: String,
    meta_put: String,
    /// Waits for every append in flight and holds new ones back until the
    /// transaction ends (see [`crate::append`]).
    pub(crate) fence: String,
    evidence: String,
}

impl ReadSql {
    pub(crate) fn new(t: &Tables) -> Self {
        let ops = &t.ops;
        let authors = format!(
            "WITH RECURSIVE authors(author) AS (
                 (SELECT author FROM {ops} ORDER BY author LIMIT 1)
                 UNION ALL
                 SELECT (SELECT o.author FROM {ops} o WHERE o.author > a.author
                         ORDER BY o.author LIMIT 1)
                 FROM authors a WHERE a.author IS NOT NULL
             )"
        );
        // $1/$2: the version vector as arrays; $3: the limit. `page` is the first
        // `limit` ops in (author, seq, id) order; the second branch completes the
        // (author, seq) group of the page's last op, so a group is never split.
        let since = format!(
            "{authors},
             vv(author, seq) AS (SELECT * FROM unnest($1::bytea[], $2::bigint[])),
             page AS (
                 SELECT r.* FROM authors a
                 LEFT JOIN vv ON vv.author = a.author
                 CROSS JOIN LATERAL (
                     SELECT {COLUMNS} FROM {ops} o
                     WHERE o.author = a.author AND o.seq > coalesce(vv.seq, 0)
                     ORDER BY o.seq, o.id LIMIT $3
                 ) r
                 WHERE a.author IS NOT NULL
                 ORDER BY r.author, r.seq, r.id LIMIT $3
             ),
             last AS (
                 SELECT author, seq, id FROM page ORDER BY author DESC, seq DESC, id DESC LIMIT 1
             )
             SELECT * FROM (
                 SELECT {COLUMNS} FROM page
                 UNION ALL
                 SELECT o.id, o.author, o.seq, o.evidence, o.payload, o.payload_raw, o.bytes
                 FROM {ops} o JOIN last
                   ON o.author = last.author AND o.seq = last.seq AND o.id > last.id
             ) s
             ORDER BY author, seq, id"
        );
        ReadSql {
            load: format!(
                "SELECT position, {COLUMNS} FROM {ops} WHERE position > $1 \
                 ORDER BY position LIMIT $2"
            ),
            since,
            heads: format!(
                "{authors}
                 SELECT a.author, (SELECT max(o.seq) FROM {ops} o WHERE o.author = a.author)
                 FROM authors a WHERE a.author IS NOT NULL"
            ),
            get: format!("SELECT {COLUMNS} FROM {ops} WHERE id = $1"),
            count: format!("SELECT count(*) FROM {ops}"),
            meta_get: format!("SELECT value FROM {} WHERE key = $1", t.meta),
            fence: format!("SELECT pg_advisory_xact_lock({})", t.fence_key),
            evidence: format!(
                "SELECT author, seq, id FROM {ops} WHERE evidence ORDER BY author, seq, id"
            ),
            meta_put: format!(
                "INSERT INTO {} (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                t.meta
            ),
        }
    }
}

impl PostgresStore {
    async fn read(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let target = self.redacted_url();
        self.bounded(what, async {
            let client = Conn::get(self.pool(), what, target).await?;
            let result = match client.prepare_cached(sql).await {
                Ok(stmt) => client.query(&stmt, params).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(rows) => {
                    client.done();
                    Ok(rows)
                }
                Err(e) => {
                    client.settle(&e);
                    Err(from_pg(what, target, e))
                }
            }
        })
        .await
    }

    /// A page of `load`: read behind the position fence (see [`crate::append`]), so
    /// every position below the last one returned belongs to a finished append and no
    /// row that commits later can have one. Waits for appends in flight, and holds new
    /// ones back for the one statement.
    pub(crate) async fn load_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        let after = i64::try_from(after.0).unwrap_or(i64::MAX);
        let limit = limit_to_sql(limit);
        let target = self.redacted_url();
        let what = "loading ops";
        let rows = self
            .bounded(what, async {
                let mut client = Conn::get(self.pool(), what, target).await?;
                let result = async {
                    let tx = client.transaction().await?;
                    tx.execute(&self.sql().read.fence, &[]).await?;
                    let stmt = tx.prepare_cached(&self.sql().read.load).await?;
                    let rows = tx.query(&stmt, &[&after, &limit]).await?;
                    tx.commit().await?;
                    Ok::<_, tokio_postgres::Error>(rows)
                }
                .await;
                match result {
                    Ok(rows) => {
                        client.done();
                        Ok(rows)
                    }
                    Err(e) => {
                        client.settle(&e);
                        Err(from_pg(what, target, e))
                    }
                }
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

    pub(crate) async fn since_vv(
        &self,
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
        let rows = self
            .read(
                "reading ops since a version vector",
                &self.sql().read.since,
                &[&authors, &seqs, &limit],
            )
            .await?;
        rows.iter().map(|row| record(row, 0, "since")).collect()
    }

    pub(crate) async fn heads_vv(&self) -> Result<VersionVector, StoreError> {
        let rows = self
            .read("reading heads", &self.sql().read.heads, &[])
            .await?;
        let mut vv = VersionVector::new();
        for row in &rows {
            let author = AuthorId(bytes32(col(row, 0, "heads")?, "author")?);
            let seq: Option<i64> = col(row, 1, "heads")?;
            vv.raise(author, seq_from_sql(seq.unwrap_or(0), "heads")?);
        }
        Ok(vv)
    }

    pub(crate) async fn get_by_id(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        let id_bytes: &[u8] = id.as_bytes();
        let rows = self
            .read("reading an op", &self.sql().read.get, &[&id_bytes])
            .await?;
        rows.first()
            .map(|row| record(row, 0, &format!("op {id}")))
            .transpose()
    }

    pub(crate) async fn evidence_keys(&self) -> Result<Vec<OpKey>, StoreError> {
        let rows = self
            .read("listing evidence ops", &self.sql().read.evidence, &[])
            .await?;
        rows.iter()
            .map(|row| {
                let author = AuthorId(bytes32(col(row, 0, "evidence")?, "author")?);
                let seq = seq_from_sql(col(row, 1, "evidence")?, "evidence")?;
                let id = OpId(bytes32(col(row, 2, "evidence")?, "op id")?);
                Ok(OpKey { author, seq, id })
            })
            .collect()
    }

    pub(crate) async fn count_ops(&self) -> Result<u64, StoreError> {
        let rows = self
            .read("counting ops", &self.sql().read.count, &[])
            .await?;
        let n: i64 = match rows.first() {
            Some(row) => col(row, 0, "count")?,
            None => 0,
        };
        Ok(n as u64)
    }

    pub(crate) async fn get_meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .read("reading a meta value", &self.sql().read.meta_get, &[&key])
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(col(row, 0, "meta value")?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn put_meta_value(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.read(
            "writing a meta value",
            &self.sql().read.meta_put,
            &[&key, &value],
        )
        .await?;
        Ok(())
    }
}

/// `limit` as a SQL limit; `limit >= 1` as `MemStore` treats 0.
fn limit_to_sql(limit: usize) -> i64 {
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

pub(crate) fn seq_from_sql(seq: i64, location: &str) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::corrupt(location, format!("negative seq {seq}")))
}

/// The record in `row`'s columns from `first` on, in [`COLUMNS`] order.
fn record(row: &Row, first: usize, location: &str) -> Result<OpRecord, StoreError> {
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
