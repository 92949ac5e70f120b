//! Following the store: apply ops that other writers (other sleds sharing the store,
//! or another process) put there.
//!
//! One mechanism, [`pull`], serves open (rows committed after replay read past
//! their position) and [`EventLog::catch_up`] (a follower of a shared store). It
//! converges the way sync does, by version vectors **and** forks:
//! - `since` is paged from a cursor that moves past every op read, buffered or not,
//!   so a page whose ops all wait for another author's op further on never stalls
//!   the pass; an author whose share of the buffer fills is left for the next pass,
//!   which starts again from what is applied (each pass applies at least the op of
//!   lowest lamport not yet applied, so passes end);
//! - the store's evidence ops (a second op at a seq the follower already holds,
//!   which no `since` can show) are fetched by id.

use std::collections::{BTreeSet, HashMap};

use bft_json_crdt::{AuthorId, OpId, Outcome, Rejected, VersionVector};

use super::EventLog;
use super::decode::decode_record;
use crate::damage::DamagedRow;
use crate::error::Result;
use crate::store::{OpRecord, OpStore, Position};

/// What one [`EventLog::catch_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Ops read from the store and applied.
    pub applied: usize,
    /// Ops read but waiting for deps not yet visible (applied by a later call).
    pub buffered: usize,
    /// Ops refused (damaged or forged rows); each is logged with its reason and
    /// listed by [`EventLog::damage`].
    pub rejected: usize,
}

/// What feeding one batch of rows did.
#[derive(Debug, Default)]
pub(crate) struct Fed {
    pub(crate) outcome: CatchUp,
    /// Authors whose share of the buffer filled: read them again next pass.
    pub(crate) full: BTreeSet<AuthorId>,
}

impl Fed {
    /// Counts one delivery.
    pub(crate) fn count(&mut self, author: Option<AuthorId>, result: &Result<Outcome, Rejected>) {
        match result {
            Ok(Outcome::Applied) => self.outcome.applied += 1,
            Ok(Outcome::Buffered { .. }) => self.outcome.buffered += 1,
            Ok(Outcome::Duplicate) => {}
            Err(Rejected::AuthorBufferFull { author, .. }) => {
                self.full.insert(*author);
            }
            Err(Rejected::BufferFull { .. }) => {
                if let Some(a) = author {
                    self.full.insert(a);
                }
            }
            Err(_) => self.outcome.rejected += 1,
        }
    }
}

/// Where [`pull`] delivers what it reads.
pub(crate) trait Sink {
    /// Highest applied seq per author.
    fn applied(&self) -> VersionVector;
    /// True if the op is applied, or known damaged (not worth reading again).
    fn settled(&self, id: &OpId) -> bool;
    /// Validates and applies stored rows (positions unknown).
    async fn feed(&mut self, rows: Vec<OpRecord>) -> Result<Fed>;
}

/// The cursor of one pass over `since`: past every op read, buffered or not.
struct SincePager {
    cursor: VersionVector,
    skipped: BTreeSet<AuthorId>,
}

impl SincePager {
    fn request(&self) -> VersionVector {
        let mut vv = self.cursor.clone();
        for a in &self.skipped {
            // Nothing is above u64::MAX: the author is left out of this pass.
            vv.set(*a, u64::MAX);
        }
        vv
    }

    fn advance(&mut self, page: &[OpRecord]) {
        for r in page {
            self.cursor.raise(r.author, r.seq);
        }
    }
}

/// Reads everything the store holds beyond what `sink` applied, and its forks,
/// paging by `page` ops. See the module docs.
pub(crate) async fn pull<S: OpStore, K: Sink>(
    store: &S,
    sink: &mut K,
    page: usize,
) -> Result<CatchUp> {
    let mut total = CatchUp::default();
    loop {
        let mut pager = SincePager {
            cursor: sink.applied(),
            skipped: BTreeSet::new(),
        };
        let mut applied = 0;
        loop {
            let rows = store.since(&pager.request(), page.max(1)).await?;
            if rows.is_empty() {
                break;
            }
            pager.advance(&rows);
            let fed = sink.feed(rows).await?;
            applied += fed.outcome.applied;
            merge_counts(&mut total, fed.outcome);
            pager.skipped.extend(fed.full);
        }
        if pager.skipped.is_empty() || applied == 0 {
            break;
        }
    }
    let forks: Vec<OpId> = store
        .evidence()
        .await?
        .into_iter()
        .map(|k| k.id)
        .filter(|id| !sink.settled(id))
        .collect();
    let mut rows = Vec::new();
    for id in forks {
        if let Some(r) = store.get(&id).await? {
            rows.push(r);
        }
    }
    if !rows.is_empty() {
        let fed = sink.feed(rows).await?;
        merge_counts(&mut total, fed.outcome);
    }
    Ok(total)
}

fn merge_counts(total: &mut CatchUp, more: CatchUp) {
    total.applied += more.applied;
    total.buffered += more.buffered;
    total.rejected += more.rejected;
}

/// The live log as a [`Sink`]: rows are validated like a merge, applied and
/// announced; ops released from the buffer that the store does not hold yet (they
/// came from an earlier merge) are persisted first.
struct Live<'a, S: OpStore>(&'a EventLog<S>);

impl<S: OpStore> Sink for Live<'_, S> {
    fn applied(&self) -> VersionVector {
        self.0.version_vector()
    }

    fn settled(&self, id: &OpId) -> bool {
        self.0.contains(id) || self.0.damage.lock().contains(id)
    }

    async fn feed(&mut self, rows: Vec<OpRecord>) -> Result<Fed> {
        let log = self.0;
        let mut fed = Fed::default();
        let mut ops = Vec::with_capacity(rows.len());
        for rec in &rows {
            match decode_record(rec, &log.config) {
                Ok((op, _)) => ops.push(op),
                Err(kind) => {
                    fed.outcome.rejected += 1;
                    log.damage
                        .lock()
                        .add(DamagedRow::of(Position::START, rec, kind));
                }
            }
        }
        let by_id: HashMap<OpId, &OpRecord> = rows.iter().map(|r| (r.id, r)).collect();
        let _w = log.lock_leader().await;
        let ingest = log.state.write().replica.ingest(ops);
        for d in &ingest.deliveries {
            let rec = by_id.get(&d.id).copied();
            fed.count(rec.map(|r| r.author), &d.result);
            if let Err(reason) = &d.result
                && !matches!(
                    reason,
                    Rejected::AuthorBufferFull { .. } | Rejected::BufferFull { .. }
                )
                && let Some(rec) = rec
            {
                crate::metrics::damaged(1);
                log.damage.lock().add(DamagedRow::of(
                    Position::START,
                    rec,
                    crate::damage::DamageKind::Rejected(reason.clone()),
                ));
            }
        }
        log.persist_and_apply(ingest.ready, |id| by_id.contains_key(id))
            .await?;
        Ok(fed)
    }
}

impl<S: OpStore> EventLog<S> {
    /// Reads the ops the store holds that this log lacks — written by other sleds
    /// sharing the store, or by another process — validates them like a merge,
    /// applies them and pushes their events to observers. Nothing it read is written
    /// again: those ops are already durable in the store.
    ///
    /// It converges exactly as sync does: by version vectors (however far behind
    /// the log is), and by the store's forks (a second op of a sled at a seq this
    /// log already holds). Damaged rows are skipped, reported by
    /// [`EventLog::damage`] and counted.
    ///
    /// Call it when the store signals new ops (PostgreSQL `NOTIFY`) and periodically as
    /// a fallback; a missed signal loses nothing, the next call catches up.
    pub async fn catch_up(&self) -> Result<CatchUp> {
        let page = self.config.replay_page.max(1);
        pull(&self.store, &mut Live(self), page).await
    }
}
