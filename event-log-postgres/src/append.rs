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
//!   explained by reading the stored ops of the batch's ids and keys and applying the
//!   core's rule ([`event_log_core::backend::rules`], every store's) over the batch, so
//!   the reported `(existing, incoming)` pair is the one every store reports. If the
//!   rule finds no conflict, the violation
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
//!   holds the sled's advisory lock; see [`crate::inner`].

use std::collections::{HashMap, HashSet};

use bft_json_crdt::{AuthorId, OpId};
use deadpool_postgres::ClientWrapper;
use event_log_core::backend::rules::plan_append;
use event_log_core::{OpRecord, StoreError};
use tokio_postgres::types::ToSql;
use tracing::{debug, warn};

use crate::codec::{Columns, author, col, op_id, seq_from_sql, seq_to_sql};
use crate::conn::Conn;
use crate::error::{from_pg, is_unique_violation};
use crate::inner::Inner;

/// How many times a batch is re-run after a unique violation that turned out to be a
/// concurrent append of the same ops.
const MAX_ATTEMPTS: usize = 5;

/// `OpStore::append`: on a pooled connection, or over the writer session once a
/// sled is acquired.
pub(crate) async fn batch(inner: &Inner, ops: &[OpRecord]) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    inner.refuse_if_read_only("appending")?;
    if inner.holds_sleds() {
        // Over the writer session, so nothing is written once its lock is lost.
        return ordered(inner, None, ops).await;
    }
    let columns = Columns::new(ops)?;
    let target = inner.target();
    inner
        .bounded("appending", async {
            for attempt in 1..=MAX_ATTEMPTS {
                let client = Conn::get(&inner.pool, "appending", target).await?;
                let stmt = match client.prepare_cached(&inner.sql.append.insert).await {
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
                        let explained = after_unique_violation(inner, &client, ops, attempt).await;
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

/// `OpStore::append_after`: the batch goes over the store's writer session (the
/// "lane"). The lane is held only until the request is queued on the connection, so
/// calls are sent, and run by the server, in the order they were first polled; the
/// statement inserts only if `after` (when given) is stored. (A call re-run after a
/// unique violation that turned out to be a race goes behind calls sent meanwhile;
/// those then find their predecessor missing and write nothing, which the log
/// handles by sending them again: the guard keeps the order safe even then.)
pub(crate) async fn ordered(
    inner: &Inner,
    after: Option<&OpId>,
    ops: &[OpRecord],
) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    inner.refuse_if_read_only("appending")?;
    let columns = Columns::new(ops)?;
    let target = inner.target();
    let after_bytes: Option<&[u8]> = after.map(|a| a.as_bytes().as_slice());
    inner
        .bounded("appending", async {
            for attempt in 1..=MAX_ATTEMPTS {
                let mut lane = inner.lane.lock().await;
                let writer = inner.writer(&mut lane).await?;
                // Poisons the writer if this future is dropped before the answer is
                // read (a timeout, a cancelled caller): its connection then carries
                // an answer nobody reads, and is replaced.
                let busy = writer.busy();
                let result = {
                    let stmt = match writer
                        .client
                        .prepare_cached(&inner.sql.append.guarded)
                        .await
                    {
                        Ok(stmt) => stmt,
                        Err(e) => {
                            busy.done();
                            lane.forget_if_broken(&writer, &e);
                            return Err(from_pg("preparing append", target, e));
                        }
                    };
                    let [a, b, c, d, e, f, g, h, i, j] = columns.params();
                    let params: [&(dyn ToSql + Sync); 11] =
                        [a, b, c, d, e, f, g, h, i, j, &after_bytes];
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
                        after_unique_violation(inner, &writer.client, ops, attempt).await?;
                    }
                    Err(e) => {
                        inner.lane.lock().await.forget_if_broken(&writer, &e);
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
    inner: &Inner,
    client: &ClientWrapper,
    ops: &[OpRecord],
    attempt: usize,
) -> Result<(), StoreError> {
    if let Some(conflict) = explain_conflict(inner, client, ops).await? {
        return Err(conflict);
    }
    warn!(
        attempt,
        "append raced a concurrent append of the same ops; retrying"
    );
    Ok(())
}

/// After a unique violation: the conflict the core's rule
/// ([`event_log_core::backend::rules::plan_append`]) finds for `ops` against what is
/// stored now, or `None` if there is none (a concurrent append won a race). One
/// query reads what the rule looks up: the stored ops among the batch's ids, and the
/// primary ops at its primary ops' `(author, seq)` keys.
async fn explain_conflict(
    inner: &Inner,
    client: &ClientWrapper,
    ops: &[OpRecord],
) -> Result<Option<StoreError>, StoreError> {
    let target = inner.target();
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
        .query(&inner.sql.append.check, &[&ids, &authors, &seqs])
        .await
        .map_err(|e| from_pg("reading the conflicting ops", target, e))?;
    let mut stored: HashSet<OpId> = HashSet::new();
    let mut primary: HashMap<(AuthorId, u64), OpId> = HashMap::new();
    for row in &rows {
        let id = op_id(row, 0, "conflict check")?;
        let author = author(row, 1, "conflict check")?;
        let seq = seq_from_sql(col(row, 2, "conflict check")?, "conflict check")?;
        stored.insert(id);
        if !col::<bool>(row, 3, "conflict check")? {
            primary.insert((author, seq), id);
        }
    }
    let plan = plan_append(
        ops,
        |id| Ok::<_, StoreError>(stored.contains(id)),
        |author, seq| Ok(primary.get(&(*author, seq)).copied()),
    )?;
    Ok(plan.err())
}

/// Inserts rows with no checks, no conflict handling and no notification (see
/// `PostgresStore::raw_insert_rows`).
pub(crate) async fn raw(inner: &Inner, ops: &[OpRecord]) -> Result<u64, StoreError> {
    let columns = Columns::new(ops)?;
    let target = inner.target();
    let client = Conn::get(&inner.pool, "raw insert", target).await?;
    let result = client
        .execute(&inner.sql.append.raw, &columns.params())
        .await;
    client.finish(result, "raw insert", target)
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
