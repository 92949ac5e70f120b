//! Merging ops from other sleds: verify, persist durably, then apply.

use std::sync::atomic::Ordering;

use bft_json_crdt::{Delivery, OpId, Outcome, RawOp, ReadyOp, Rejected, SignedOp};

use super::EventLog;
use super::decode::parse_entry;
use crate::error::{Error, Result};
use crate::store::{OpRecord, OpStore, StoreError};

/// Why a merge refused an op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeRejected {
    /// The op failed CRDT validation.
    #[error(transparent)]
    Op(#[from] Rejected),
    /// The op is valid but its payload is not a valid entry.
    #[error("op {id} carries an invalid entry: {detail}")]
    BadPayload {
        /// The op.
        id: OpId,
        /// What is wrong.
        detail: String,
    },
}

/// The fate of one op in a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeDelivery {
    /// The op id (recomputed where known, else as claimed).
    pub id: OpId,
    /// Applied, duplicate, buffered (waiting for deps) or rejected with the reason.
    pub result: std::result::Result<Outcome, MergeRejected>,
}

/// What a merge did, op by op: one delivery per input op in input order, then one per
/// previously buffered op that this merge released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Per-op outcomes.
    pub deliveries: Vec<MergeDelivery>,
}

impl MergeRejected {
    /// A short stable name of the reason, for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            MergeRejected::Op(r) => r.reason(),
            MergeRejected::BadPayload { .. } => "bad_payload",
        }
    }
}

impl MergeReport {
    fn count(&self, f: impl Fn(&MergeDelivery) -> bool) -> usize {
        self.deliveries.iter().filter(|d| f(d)).count()
    }
    /// Ops applied (persisted and visible).
    pub fn applied(&self) -> usize {
        self.count(|d| matches!(d.result, Ok(Outcome::Applied)))
    }
    /// Ops already held.
    pub fn duplicates(&self) -> usize {
        self.count(|d| matches!(d.result, Ok(Outcome::Duplicate)))
    }
    /// Ops waiting for deps.
    pub fn buffered(&self) -> usize {
        self.count(|d| matches!(d.result, Ok(Outcome::Buffered { .. })))
    }
    /// Ops refused.
    pub fn rejected(&self) -> Vec<&MergeDelivery> {
        self.deliveries
            .iter()
            .filter(|d| d.result.is_err())
            .collect()
    }
}

impl<S: OpStore> EventLog<S> {
    /// Merges ops from a peer: decodes and verifies each (batch signatures), buffers
    /// those whose deps are missing, persists the ready ones durably in causal order,
    /// then applies them and pushes their events to observers.
    ///
    /// A refused op is reported with its reason and changes nothing else. An `Err`
    /// means the store failed: nothing of this merge was applied, and the peer should
    /// send the ops again.
    pub async fn merge(&self, raw: Vec<RawOp>) -> Result<MergeReport> {
        if self.config.read_only {
            return Err(Error::ReadOnly { operation: "merge" });
        }
        let mut report = MergeReport::default();
        let mut ops: Vec<SignedOp> = Vec::with_capacity(raw.len());
        let mut slot_of: Vec<usize> = Vec::with_capacity(raw.len());
        for r in raw {
            let checked = r
                .decode(&self.config.limits)
                .map_err(MergeRejected::Op)
                .and_then(|op| match parse_entry(&op) {
                    Ok(_) => Ok(op),
                    Err(Error::BadPayload { id, detail }) => {
                        Err(MergeRejected::BadPayload { id, detail })
                    }
                    Err(e) => Err(MergeRejected::BadPayload {
                        id: op.id(),
                        detail: e.to_string(),
                    }),
                });
            match checked {
                Ok(op) => {
                    slot_of.push(report.deliveries.len());
                    report.deliveries.push(MergeDelivery {
                        id: op.id(),
                        result: Ok(Outcome::Applied),
                    });
                    ops.push(op);
                }
                Err(e) => report.deliveries.push(MergeDelivery {
                    id: match &e {
                        MergeRejected::Op(r) => r.op_id(),
                        MergeRejected::BadPayload { id, .. } => *id,
                    },
                    result: Err(e),
                }),
            }
        }
        // A conflict means another sled sharing the store stored a different op at
        // one of these `(author, seq)`: catch up (so that op is held and ours becomes
        // evidence), then try once more.
        let mut attempt = 0;
        let deliveries = loop {
            match self.merge_ready(ops.clone()).await {
                Err(Error::Store(StoreError::Conflict { .. })) if attempt == 0 => {
                    attempt += 1;
                    self.catch_up().await?;
                }
                r => break r?,
            }
        };
        for (i, d) in deliveries.into_iter().enumerate() {
            let result = d.result.map_err(MergeRejected::Op);
            match slot_of.get(i) {
                Some(&slot) => report.deliveries[slot].result = result,
                None => report.deliveries.push(MergeDelivery { id: d.id, result }),
            }
        }
        let rejected = report.rejected().len() as u64;
        self.counters
            .merged
            .fetch_add(report.applied() as u64, Ordering::Relaxed);
        crate::metrics::merged(report.applied());
        self.counters
            .rejected
            .fetch_add(rejected, Ordering::Relaxed);
        if rejected > 0 {
            let mut by = self.counters.rejected_by_reason.lock();
            for d in report.rejected() {
                if let Err(e) = &d.result {
                    *by.entry(e.reason()).or_default() += 1;
                    crate::metrics::rejected(e.reason());
                    tracing::warn!(op = %d.id, reason = %e, "merge refused op");
                }
            }
        }
        Ok(report)
    }

    /// Validates `ops` under the leader lock, persists the ready ones and applies
    /// them; returns the replica's deliveries.
    async fn merge_ready(&self, ops: Vec<SignedOp>) -> Result<Vec<Delivery>> {
        let _w = self.lock_leader().await;
        let ingest = self.state.write().replica.ingest(ops);
        self.persist_and_apply(ingest.ready, |_| false).await?;
        Ok(ingest.deliveries)
    }

    /// Persists the ready ops the store does not hold yet (`stored` says which it
    /// does), in causal order and durably, then applies them all and announces
    /// their events. A read-only log persists nothing: ops not stored are dropped
    /// (a peer sends them again).
    pub(crate) async fn persist_and_apply(
        &self,
        ready: Vec<ReadyOp>,
        stored: impl Fn(&OpId) -> bool,
    ) -> Result<()> {
        let mut ops = Vec::with_capacity(ready.len());
        let mut records = Vec::new();
        for r in ready {
            let entry = match parse_entry(&r.op) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "ready op carries an invalid entry; dropped");
                    continue;
                }
            };
            if !stored(&r.op.id()) {
                if self.config.read_only {
                    tracing::debug!(op = %r.op.id(), "read-only log: op not in the store dropped");
                    continue;
                }
                records.push(OpRecord::with_entry(&r.op, r.evidence, &entry));
            }
            ops.push((r.op, entry));
        }
        if ops.is_empty() {
            return Ok(());
        }
        if !records.is_empty() {
            self.store.append(&records).await?;
        }
        let events = self.state.write().apply(ops);
        self.notify(&events);
        Ok(())
    }
}
