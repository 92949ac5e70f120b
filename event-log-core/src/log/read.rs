//! Reads of what the log holds in memory: frontiers, heads, ops for peers. Events are
//! read from the store, a page at a time (see `pages.rs`).

use bft_json_crdt::{OpId, RawOp, SignedOp, VersionVector};

use super::EventLog;
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

    /// Ops a peer with version vector `vv` lacks, in causal order, ready to send.
    pub fn export_since(&self, vv: &VersionVector) -> Vec<RawOp> {
        let st = self.state.read();
        let mut ops: Vec<&SignedOp> = st
            .replica
            .authors()
            .flat_map(|a| st.replica.ops_after(a, vv.get(a)))
            .collect();
        ops.sort_by_key(|o| (o.lamport(), o.id()));
        ops.into_iter().map(SignedOp::to_raw).collect()
    }

    /// True if the op is held.
    pub fn contains(&self, id: &OpId) -> bool {
        self.state.read().replica.contains(id)
    }

    /// One held op by id, in wire form.
    pub fn get_op(&self, id: &OpId) -> Option<RawOp> {
        self.state.read().replica.get(id).map(SignedOp::to_raw)
    }

    /// The ops reachable from `from` (following deps) that `known` says the peer
    /// lacks, in causal order. Sync uses it to deliver a branch hidden behind equal
    /// version vectors (an equivocating sled): walk back from a head the peer does
    /// not know until reaching ops it knows.
    pub fn ancestry_unknown(&self, from: &[OpId], known: impl Fn(&OpId) -> bool) -> Vec<RawOp> {
        let st = self.state.read();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<OpId> = from.to_vec();
        let mut out: Vec<&SignedOp> = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || known(&id) {
                continue;
            }
            if let Some(op) = st.replica.get(&id) {
                stack.extend(op.deps().iter().copied());
                out.push(op);
            }
        }
        out.sort_by_key(|o| (o.lamport(), o.id()));
        out.into_iter().map(SignedOp::to_raw).collect()
    }

    /// Equivocations held: sleds that signed two ops at one seq.
    pub fn equivocations(&self) -> Vec<bft_json_crdt::Equivocation> {
        self.state.read().replica.equivocations()
    }
}
