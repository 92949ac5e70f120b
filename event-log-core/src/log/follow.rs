//! Following the store: apply ops that other writers (other sleds sharing the store,
//! or another process) put there.

use bft_json_crdt::{Outcome, RawOp};

use super::EventLog;
use super::open::parse_entry;
use crate::error::Result;
use crate::store::{OpRecord, OpStore};

/// What one [`EventLog::catch_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Ops read from the store and applied.
    pub applied: usize,
    /// Ops read but waiting for deps not yet visible (applied by a later call).
    pub buffered: usize,
    /// Ops refused (damaged or forged rows); each is logged with its reason.
    pub rejected: usize,
}

impl<S: OpStore> EventLog<S> {
    /// Reads the ops the store holds beyond this log's version vector — written by
    /// other sleds sharing the store, or by another process — validates them like a
    /// merge, applies them and pushes their events to listeners. Nothing is written:
    /// the ops are already durable in the store.
    ///
    /// Call it when the store signals new ops (PostgreSQL `NOTIFY`) and periodically as
    /// a fallback; a missed signal loses nothing, the next call catches up.
    pub async fn catch_up(&self) -> Result<CatchUp> {
        let mut total = CatchUp::default();
        loop {
            let vv = self.version_vector();
            let page = self
                .store
                .since(&vv, self.config.replay_page.max(1))
                .await?;
            if page.is_empty() {
                return Ok(total);
            }
            let _w = self.lock_writer().await;
            let mut ops = Vec::with_capacity(page.len());
            for rec in &page {
                let raw = RawOp {
                    id: rec.id,
                    bytes: rec.bytes.clone(),
                };
                match raw.decode(&self.config.limits) {
                    Ok(op) if parse_entry(&op).is_ok() => ops.push(op),
                    Ok(op) => {
                        total.rejected += 1;
                        tracing::warn!(op = %op.id(), "store holds an op with an invalid entry");
                    }
                    Err(reason) => {
                        total.rejected += 1;
                        tracing::warn!(op = %rec.id, %reason, "store holds a damaged op");
                    }
                }
            }
            let ingest = self.state.write().replica.ingest(ops);
            let mut progressed = false;
            for d in &ingest.deliveries {
                match &d.result {
                    Ok(Outcome::Applied) => {
                        total.applied += 1;
                        progressed = true;
                    }
                    Ok(Outcome::Buffered { .. }) => total.buffered += 1,
                    Ok(Outcome::Duplicate) => {}
                    Err(reason) => {
                        total.rejected += 1;
                        tracing::warn!(op = %d.id, %reason, "store holds an op that fails validation");
                    }
                }
            }
            // Ops released from the buffer came from an earlier merge, not from the
            // store: persist them before applying (the rest are already stored).
            let in_page: std::collections::HashSet<_> = page.iter().map(|r| r.id).collect();
            let released: Vec<OpRecord> = ingest
                .ready
                .iter()
                .filter(|r| !in_page.contains(&r.op.id()))
                .map(|r| OpRecord::new(&r.op, r.evidence))
                .collect();
            if !released.is_empty() {
                self.store.append(&released).await?;
            }
            let mut ready = Vec::with_capacity(ingest.ready.len());
            for r in ingest.ready {
                let entry = parse_entry(&r.op)?;
                ready.push((r.op, entry));
            }
            let events = self.state.write().commit(ready);
            self.notify(&events);
            if !progressed || self.version_vector() == vv {
                // Everything left is buffered or refused: stop rather than spin.
                return Ok(total);
            }
        }
    }
}
