//! Reads: all events, since a cursor, by story, the causal timeline, ops for peers.

use bft_json_crdt::{OpId, RawOp, SignedOp, VersionVector};

use super::EventLog;
use crate::event::{EventId, LoggedEvent, SledId};
use crate::store::OpStore;

impl<S: OpStore> EventLog<S> {
    /// Every visible event, sorted by `(sled_id, event_id)`.
    pub fn events(&self) -> Vec<LoggedEvent> {
        self.state.read().events.values().cloned().collect()
    }

    /// Number of visible events.
    pub fn len(&self) -> usize {
        self.state.read().events.len()
    }

    /// True if no event is visible.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One event by sled and event id.
    pub fn event(&self, sled: &SledId, event_id: EventId) -> Option<LoggedEvent> {
        self.state.read().events.get(&(*sled, event_id)).cloned()
    }

    /// Events after a cursor, sorted by `(sled_id, event_id)`.
    ///
    /// The cursor maps a sled to the next event id the reader wants (a sled not in
    /// it starts at 0); [`EventLog::version_vector`] gives the cursor after every current
    /// event. Costs O(s log n + k) for s sleds and k results.
    pub fn events_since(&self, cursor: &VersionVector) -> Vec<LoggedEvent> {
        let st = self.state.read();
        let mut out = Vec::new();
        for sled in st.replica.authors() {
            let from = cursor.get(sled);
            out.extend(
                st.events
                    .range((*sled, from)..=(*sled, EventId::MAX))
                    .map(|(_, e)| e.clone()),
            );
        }
        out.sort_by_key(|e| (e.sled_id, e.event_id));
        out
    }

    /// Highest seq held per sled (ops, including excluded ones): the cursor just
    /// past every event held (a sled's highest seq is its next event id), for
    /// [`EventLog::events_since`], subscriptions and sync.
    pub fn version_vector(&self) -> VersionVector {
        self.state.read().replica.version_vector()
    }

    /// The hash frontier: ops no held op depends on.
    pub fn heads(&self) -> Vec<OpId> {
        self.state.read().replica.heads()
    }

    /// Events of one story, sorted by `(sled_id, event_id)`.
    pub fn story_events(&self, story_id: &str) -> Vec<LoggedEvent> {
        let st = self.state.read();
        st.by_story
            .get(story_id)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| st.events.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Events of one sled, in event id order.
    pub fn sled_events(&self, sled: &SledId) -> Vec<LoggedEvent> {
        let st = self.state.read();
        st.events
            .range((*sled, 0)..=(*sled, EventId::MAX))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every visible event in causal order: by `(lamport, op id)`, the same on every
    /// replica holding the same ops, and each event after everything it depends on.
    pub fn timeline(&self) -> Vec<LoggedEvent> {
        let st = self.state.read();
        st.replica
            .view()
            .filter_map(|op| st.events.get(&(op.author(), op.seq() - 1)).cloned())
            .collect()
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
