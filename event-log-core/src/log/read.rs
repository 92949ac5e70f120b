//! Reads of what the log holds in memory (frontiers, heads) and of ops for peers,
//! read from the store and checked. Events are read from the store, a page at a
//! time (see `pages.rs`).

use bft_json_crdt::{OpId, RawOp, SignedOp, VersionVector};

use super::EventLog;
use super::pages::{Unheld, check_row};
use crate::error::{Error, Result};
use crate::event::SledId;
use crate::store::OpStore;

impl<S: OpStore> EventLog<S> {
    /// Highest seq held per sled (ops, including excluded ones): the cursor just
    /// past every event held (a sled's highest seq is its next event id), for
    /// [`EventLog::read_since`], subscriptions and sync.
    pub fn version_vector(&self) -> VersionVector {
        self.state.read().replica.version_vector()
    }

    /// The hash frontier: ops no held op depends on.
    pub fn heads(&self) -> Vec<OpId> {
        self.state.read().replica.heads()
    }

    /// Number of visible events, from the frontiers (O(sleds), no read).
    pub fn visible_len(&self) -> usize {
        self.visible_per_sled()
            .iter()
            .map(|(_, n)| usize::try_from(*n).unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add)
    }

    /// Visible events per sled: each sled's events are contiguous from 0, up to its
    /// highest seq or, for a sled that equivocated, up to its fork. O(sleds).
    pub fn visible_per_sled(&self) -> Vec<(SledId, u64)> {
        let st = self.state.read();
        let mut out: Vec<(SledId, u64)> = st
            .replica
            .authors()
            .map(|a| {
                let held = st.replica.max_seq(a);
                let visible = st
                    .replica
                    .excluded_from(a)
                    .map_or(held, |from| held.min(from - 1));
                (*a, visible)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Ops a peer with version vector `vv` lacks, in causal order, ready to send:
    /// read from the store a page at a time and each checked against what this log
    /// verified (rows another writer added that this log does not hold yet are left
    /// out). Only what the peer lacks is held in memory, all of it at once.
    pub async fn export_since(&self, vv: &VersionVector) -> Result<Vec<RawOp>> {
        let page = self.config.replay_page.max(1);
        let mut cursor = vv.clone();
        let mut ops: Vec<SignedOp> = Vec::new();
        loop {
            let rows = self.store.since(&cursor, page).await?;
            for r in &rows {
                cursor.raise(r.author, r.seq);
            }
            let (held, _) = self.authenticate(&rows, Unheld::Skip)?;
            ops.extend(held.into_iter().map(|h| h.op));
            if rows.len() < page {
                break;
            }
        }
        ops.sort_by_key(|o| (o.lamport(), o.id()));
        Ok(ops.iter().map(SignedOp::to_raw).collect())
    }

    /// True if the op is held.
    pub fn contains(&self, id: &OpId) -> bool {
        self.state.read().replica.contains(id)
    }

    /// One held op by id, in wire form, read from the store and checked against what
    /// this log verified. `None` if this log does not hold it; a damaged row (or one
    /// the store lost) is an error naming it.
    pub async fn get_op(&self, id: &OpId) -> Result<Option<RawOp>> {
        Ok(self.held_op(id).await?.map(|op| op.to_raw()))
    }

    async fn held_op(&self, id: &OpId) -> Result<Option<SignedOp>> {
        if !self.contains(id) {
            return Ok(None);
        }
        let Some(row) = self.store.get(id).await? else {
            return Err(Error::OpNotInStore { id: *id });
        };
        let checked = check_row(&self.state.read(), &row, &self.config);
        match checked {
            Ok(held) => Ok(held.map(|h| h.op)),
            Err(row) => {
                self.damage.lock().add((*row).clone());
                Err(Error::DamagedRead { row })
            }
        }
    }

    /// The ops reachable from `from` (following deps) that `known` says the peer
    /// lacks, in causal order. Sync uses it to deliver a branch hidden behind equal
    /// version vectors (an equivocating sled): walk back from a head the peer does
    /// not know until reaching ops it knows. Each op is read from the store (one
    /// read per op: the branches walked are those hidden by an equivocation).
    pub async fn ancestry_unknown(
        &self,
        from: &[OpId],
        known: impl Fn(&OpId) -> bool,
    ) -> Result<Vec<RawOp>> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<OpId> = from.to_vec();
        let mut out: Vec<SignedOp> = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || known(&id) {
                continue;
            }
            if let Some(op) = self.held_op(&id).await? {
                stack.extend(op.deps().iter().copied());
                out.push(op);
            }
        }
        out.sort_by_key(|o| (o.lamport(), o.id()));
        Ok(out.iter().map(SignedOp::to_raw).collect())
    }

    /// Equivocations held: sleds that signed two ops at one seq.
    pub fn equivocations(&self) -> Vec<bft_json_crdt::Equivocation> {
        self.state.read().replica.equivocations()
    }
}
