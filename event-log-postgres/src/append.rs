//! `append`: one statement, one transaction, any batch size.
//!
//! The whole batch goes to the server as column arrays in a single
//! `INSERT … SELECT FROM unnest(…) WITH ORDINALITY ORDER BY ord ON CONFLICT (id) DO
//! NOTHING`, wrapped in a CTE that also sends the `NOTIFY`s. A single statement is its
//! own transaction: it writes every new op or none, and `Ok` means committed (durable
//! per `synchronous_commit`, `on` by default: the WAL is flushed before the commit
//! returns).
//!
//! - **Idempotent**: an op whose id is stored (or repeated in the batch) is skipped by
//!   `ON CONFLICT (id) DO NOTHING`; the stored row is untouched.
//! - **Conflict**: a new primary op on a taken `(author, seq)` violates the partial
//!   unique index, the statement fails and nothing is written. The error is then
//!   explained by reading the stored ops of the batch's ids and keys and replaying
//!   `MemStore`'s rule over the batch, so the reported `(existing, incoming)` pair is
//!   the one `MemStore` would report. If the replay finds no conflict, the violation
//!   came from a concurrent append of the same ops that committed in between; the
//!   statement is simply run again.
//! - **Connection loss**: the call fails (`Unavailable`). The batch either committed or
//!   did not; as appends are idempotent, retrying the same batch is always safe and
//!   never duplicates.
//! - **Order**: positions are taken from the identity in batch order. Concurrent
//!   appends may commit out of position order, so every append statement first takes
//!   the schema's *position fence* (a transaction-scoped advisory lock) shared, before
//!   it takes any position, and holds it to its commit; `load` takes the fence
//!   exclusively for its statement. So when `load` reads, no append holds a position
//!   it has not committed or rolled back, and a reader paging by position never skips
//!   a row that commits later (appends do not wait for each other: shared holders
//!   are compatible).
//! - **Writer lock**: once a sled is acquired ([`event_log_core::OpStore::acquire_sled`]),
//!   every write of the store goes over its *writer* connection, the session that
//!   holds the sled's advisory lock; see `store.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, StoreError};
use tracing::{debug, warn};

use crate::conn::Conn;
use crate::error::{from_pg, is_connection_problem, is_unique_violation};
use crate::read::{bytes32, col, seq_from_sql};
use crate::schema::Tables;
use crate::store::{Lane, PostgresStore, Writer};

/// How many times a batch is re-run after a unique violation that turned out to be a
/// concurrent append of the same ops.
const MAX_ATTEMPTS: usize = 5;

/// The statements of this module, written once per store.
#[derive(Debug)]
pub(crate) struct AppendSql {
    insert: String,
    /// `insert`, writing only if the op `$8` is stored; returns whether it was.
    guarded: String,
    check: String,
    raw: String,
}

const BATCH: &str = "SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], \
     $4::boolean[], $5::text[], $6::bytea[], $7::bytea[]) WITH ORDINALITY \
     AS b(id, author, seq, evidence, payload, payload_raw, bytes, ord)";

impl AppendSql {
    pub(crate) fn new(t: &Tables, channel: &str, notify: bool) -> Self {
        // The batch's rows, in batch order; `filter` joins and restricts them.
        let rows = |filter: &str| {
            format!(
                "INSERT INTO {ops} (id, author, seq, evidence, payload, payload_raw, bytes)
                 SELECT id, author, seq, evidence, payload, payload_raw, bytes
                 FROM ({BATCH}) AS b, fence{filter} ORDER BY ord",
                ops = t.ops
            )
        };
        let insert_rows = rows("");
        let fence = format!(
            "fence AS (SELECT pg_advisory_xact_lock_shared({}) AS held)",
            t.fence_key
        );
        // One notification per author with new ops, naming the highest new seq: small
        // (about 100 bytes, far below the 8000-byte limit) and never the op itself.
        let notify_expr = if notify {
            format!(
                "pg_notify('{channel}',
                     json_build_object('author', encode(author, 'hex'), 'seq', max(seq))::text)"
            )
        } else {
            "NULL".to_owned()
        };
        let insert = format!(
            "WITH {fence}, ins AS ({insert_rows} ON CONFLICT (id) DO NOTHING RETURNING author, seq)
             SELECT count(*)::bigint, {notify_expr}::text FROM ins GROUP BY author"
        );
        // The guard and the insert share the statement's snapshot: the rows are
        // written if and only if the predecessor was stored when it started.
        let guarded = format!(
            "WITH {fence}, pred AS (SELECT $8::bytea IS NULL
                 OR EXISTS (SELECT 1 FROM {ops} WHERE id = $8::bytea) AS found),
             ins AS ({rows} ON CONFLICT (id) DO NOTHING RETURNING author, seq),
             notified AS (SELECT {notify_expr} FROM ins GROUP BY author)
             SELECT pred.found, (SELECT count(*) FROM notified)::bigint FROM pred",
            ops = t.ops,
            rows = rows(", pred WHERE pred.found"),
        );
        let check = format!(
            "SELECT id, author, seq, evidence FROM {ops} WHERE id = ANY($1::bytea[])
             UNION
             SELECT o.id, o.author, o.seq, o.evidence
             FROM {ops} o JOIN unnest($2::bytea[], $3::bigint[]) AS k(author, seq)
               ON o.author = k.author AND o.seq = k.seq
             WHERE NOT o.evidence",
            ops = t.ops
        );
        AppendSql {
            insert,
            guarded,
            check,
            raw: format!(
                "INSERT INTO {ops} (id, author, seq, evidence, payload, payload_raw, bytes)
                 SELECT id, author, seq, evidence, payload, payload_raw, bytes
                 FROM ({BATCH}) AS b ORDER BY ord",
                ops = t.ops
            ),
        }
    }
}

/// The batch as column arrays, borrowing from the records.
struct Columns<'a> {
    ids: Vec<&'a [u8]>,
    authors: Vec<&'a [u8]>,
    seqs: Vec<i64>,
    evidence: Vec<bool>,
    payloads: Vec<Option<&'a str>>,
    payloads_raw: Vec<Option<&'a [u8]>>,
    bytes: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn new(ops: &'a [OpRecord]) -> Result<Self, StoreError> {
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

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 7] {
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

impl PostgresStore {
    pub(crate) async fn append_batch(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.refuse_if_read_only("appending")?;
        if self.holds_sleds().await {
            // Over the writer session, so nothing is written once its lock is lost.
            return self.append_ordered(None, ops).await;
        }
        let columns = Columns::new(ops)?;
        let target = self.redacted_url();
        self.bounded("appending", async {
            for attempt in 1..=MAX_ATTEMPTS {
                let client = Conn::get(self.pool(), "appending", target).await?;
                let stmt = match client.prepare_cached(&self.sql().append.insert).await {
                    Ok(stmt) => stmt,
                    Err(e) => {
                        client.settle(&e);
                        return Err(from_pg("preparing append", target, e));
                    }
                };
                match client.query(&stmt, &columns.params()).await {
                    Ok(rows) => {
                        client.done();
                        let inserted: i64 = rows
                            .iter()
                            .map(|r| r.try_get::<_, i64>(0).unwrap_or(0))
                            .sum();
                        debug!(batch = ops.len(), inserted, "appended ops");
                        return Ok(());
                    }
                    Err(e) if is_unique_violation(&e) => {
                        let explained = self.after_unique_violation(&client, ops, attempt).await;
                        client.done();
                        explained?;
                    }
                    Err(e) => {
                        client.settle(&e);
                        return Err(from_pg("appending", target, e));
                    }
                }
            }
            Err(race_persisted(target))
        })
        .await
    }

    /// [`event_log_core::OpStore::append_after`]: the batch goes over the store's one
    /// ordered-append connection ("lane"). The lane is held only until the request is
    /// queued on the connection, so calls are sent, and run by the server, in the
    /// order they were first polled; the statement inserts only if `after` (when
    /// given) is stored. (A call re-run after a unique violation that turned out to
    /// be a race goes behind calls sent meanwhile; those then find their
    /// predecessor missing and write nothing, which the log handles by sending
    /// them again: the guard keeps the order safe even then.)
    pub(crate) async fn append_ordered(
        &self,
        after: Option<&OpId>,
        ops: &[OpRecord],
    ) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.refuse_if_read_only("appending")?;
        let columns = Columns::new(ops)?;
        let target = self.redacted_url();
        let after_bytes: Option<&[u8]> = after.map(|a| a.as_bytes().as_slice());
        self.bounded("appending", async {
            for attempt in 1..=MAX_ATTEMPTS {
                let mut lane = self.lane().lock().await;
                let writer = self.writer(&mut lane).await?;
                // Poisons the writer if this future is dropped before the answer is
                // read (a timeout, a cancelled caller): its connection then carries
                // an answer nobody reads, and is replaced.
                let busy = writer.busy();
                let result = {
                    let stmt = match writer
                        .client
                        .prepare_cached(&self.sql().append.guarded)
                        .await
                    {
                        Ok(stmt) => stmt,
                        Err(e) => {
                            busy.done();
                            drop_writer_if_broken(&mut lane, &writer, &e);
                            return Err(from_pg("preparing append", target, e));
                        }
                    };
                    let [a, b, c, d, e, f, g] = columns.params();
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
                        [a, b, c, d, e, f, g, &after_bytes];
                    let query = writer.client.query(&stmt, &params);
                    futures::pin_mut!(query);
                    // The first poll queues the request on the connection: from then on
                    // its place in line is fixed, and the next caller may take the lane.
                    let first = futures::poll!(query.as_mut());
                    drop(lane);
                    match first {
                        std::task::Poll::Ready(r) => r,
                        std::task::Poll::Pending => query.await,
                    }
                };
                busy.done();
                match result {
                    Ok(rows) => {
                        let found = rows
                            .first()
                            .map(|r| col::<bool>(r, 0, "ordered append"))
                            .transpose()?
                            .unwrap_or(false);
                        if let Some(after) = after.filter(|_| !found) {
                            return Err(StoreError::MissingPredecessor { after: *after });
                        }
                        debug!(batch = ops.len(), "appended ops after their predecessor");
                        return Ok(());
                    }
                    Err(e) if is_unique_violation(&e) => {
                        self.after_unique_violation(&writer.client, ops, attempt)
                            .await?;
                    }
                    Err(e) => {
                        let mut lane = self.lane().lock().await;
                        drop_writer_if_broken(&mut lane, &writer, &e);
                        return Err(from_pg("appending", target, e));
                    }
                }
            }
            Err(race_persisted(target))
        })
        .await
    }

    /// After a unique violation on attempt `attempt`: `Err` with the conflict if
    /// there is one, `Ok` if a concurrent append of the same ops won a race (the
    /// caller runs the statement again).
    async fn after_unique_violation(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        ops: &[OpRecord],
        attempt: usize,
    ) -> Result<(), StoreError> {
        if let Some(conflict) = self.explain_conflict(client, ops).await? {
            return Err(conflict);
        }
        warn!(
            attempt,
            "append raced a concurrent append of the same ops; retrying"
        );
        Ok(())
    }

    /// After a unique violation: the conflict `MemStore` would report for `ops` against
    /// what is stored now, or `None` if there is none (a concurrent append won a race).
    async fn explain_conflict(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        ops: &[OpRecord],
    ) -> Result<Option<StoreError>, StoreError> {
        let target = self.redacted_url();
        let ids: Vec<&[u8]> = ops.iter().map(|r| r.id.as_bytes().as_slice()).collect();
        let keyed: Vec<&OpRecord> = ops.iter().filter(|r| !r.evidence).collect();
        let authors: Vec<&[u8]> = keyed
            .iter()
            .map(|r| r.author.as_bytes().as_slice())
            .collect();
        let seqs: Vec<i64> = keyed
            .iter()
            .map(|r| seq_to_sql(r.seq))
            .collect::<Result<_, _>>()?;
        let rows = client
            .query(&self.sql().append.check, &[&ids, &authors, &seqs])
            .await
            .map_err(|e| from_pg("reading the conflicting ops", target, e))?;
        let mut stored: HashSet<OpId> = HashSet::new();
        let mut primary: HashMap<(AuthorId, u64), OpId> = HashMap::new();
        for row in &rows {
            let id = OpId(bytes32(col(row, 0, "conflict check")?, "op id")?);
            let author = AuthorId(bytes32(col(row, 1, "conflict check")?, "author")?);
            let seq = seq_from_sql(col(row, 2, "conflict check")?, "conflict check")?;
            stored.insert(id);
            if !col::<bool>(row, 3, "conflict check")? {
                primary.insert((author, seq), id);
            }
        }
        Ok(first_conflict(ops, &stored, &primary))
    }

    /// Inserts rows with no checks, no conflict handling and no notification: a
    /// baseline for benchmarks ("how fast can this server take these rows at all").
    /// Fails on any duplicate. Not part of the store's contract.
    #[doc(hidden)]
    pub async fn raw_insert_rows(&self, ops: &[OpRecord]) -> Result<u64, StoreError> {
        let columns = Columns::new(ops)?;
        let target = self.redacted_url();
        let client = Conn::get(self.pool(), "raw insert", target).await?;
        match client
            .execute(&self.sql().append.raw, &columns.params())
            .await
        {
            Ok(n) => {
                client.done();
                Ok(n)
            }
            Err(e) => {
                client.settle(&e);
                Err(from_pg("raw insert", target, e))
            }
        }
    }
}

/// The error when a batch kept hitting unique violations that no stored op explains.
fn race_persisted(target: &str) -> StoreError {
    StoreError::Backend {
        message: format!(
            "appending on {target}: unique violations persisted over {MAX_ATTEMPTS} \
             attempts without a conflicting op"
        ),
        source: None,
    }
}

/// Forgets the writer if `e` says its connection is gone (and it is still `writer`),
/// so the next write takes a new one (and takes the sleds' locks again).
fn drop_writer_if_broken(lane: &mut Lane, writer: &Arc<Writer>, e: &tokio_postgres::Error) {
    if is_connection_problem(e) {
        lane.forget(writer);
    }
}

/// `MemStore`'s conflict rule: walking the batch in order, skipping ops whose id is
/// stored or earlier in the batch, and evidence ops, the first op whose `(author,
/// seq)` is held by a stored primary op or an earlier primary op of the batch.
fn first_conflict(
    ops: &[OpRecord],
    stored: &HashSet<OpId>,
    primary: &HashMap<(AuthorId, u64), OpId>,
) -> Option<StoreError> {
    let mut seen: HashSet<OpId> = HashSet::new();
    let mut batch_primary: HashMap<(AuthorId, u64), OpId> = HashMap::new();
    for r in ops {
        if stored.contains(&r.id) || !seen.insert(r.id) || r.evidence {
            continue;
        }
        let key = (r.author, r.seq);
        if let Some(&existing) = primary.get(&key).or_else(|| batch_primary.get(&key)) {
            return Some(StoreError::Conflict {
                author: r.author,
                seq: r.seq,
                existing,
                incoming: r.id,
            });
        }
        batch_primary.insert(key, r.id);
    }
    None
}
