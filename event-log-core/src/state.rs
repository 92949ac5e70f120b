//! The in-memory state of an [`crate::EventLog`]: the replica, and the registry
//! that keyed events entering the view are announced to (see `log/append/keys.rs`).
//! Events themselves are read from the store (see `log/pages.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use bft_json_crdt::{Limits, Membership, Replica, SignedOp};

use crate::entry::Entry;
use crate::event::{LoggedEvent, SledId};
use crate::log::KeyRegistry;

pub(crate) struct State {
    pub(crate) replica: Replica,
    /// Told of this sled's keyed events entering the view (set once the log is open).
    pub(crate) keys: Option<Arc<KeyRegistry>>,
}

impl State {
    pub(crate) fn new(limits: Limits, members: Option<Membership>) -> Self {
        let replica = Replica::new(limits);
        State {
            replica: match members {
                Some(m) => replica.with_members(m),
                None => replica,
            },
            keys: None,
        }
    }

    /// Applies ops (already validated, persisted, in causal order) and indexes the
    /// entries that enter the view. Returns the events that became visible.
    pub(crate) fn apply(&mut self, ops: Vec<(SignedOp, Entry)>) -> Vec<LoggedEvent> {
        self.apply_with(ops, true)
    }

    /// [`State::apply`] without collecting the new events (replay has no observers).
    pub(crate) fn apply_quiet(&mut self, ops: Vec<(SignedOp, Entry)>) {
        self.apply_with(ops, false);
    }

    fn apply_with(&mut self, ops: Vec<(SignedOp, Entry)>, collect: bool) -> Vec<LoggedEvent> {
        let mut added = Vec::with_capacity(if collect { ops.len() } else { 0 });
        let mut touched: HashSet<SledId> = HashSet::new();
        for (op, entry) in ops {
            if self.replica.contains(&op.id()) {
                // Already applied (e.g. caught up from a shared store before an
                // in-doubt append was completed): nothing new to index or announce.
                continue;
            }
            let before = self.replica.excluded_from(&op.author());
            self.replica.insert(op.clone());
            if self.replica.excluded_from(&op.author()) != before {
                touched.insert(op.author());
            }
            if self.replica.in_view(&op.id()) {
                let ev = event_of(&op, entry);
                if let Some(keys) = &self.keys {
                    keys.record(&ev);
                }
                if collect {
                    added.push(ev);
                }
            }
        }
        // An equivocation excludes its author from the first equivocated seq on.
        for sled in touched {
            if let Some(from) = self.replica.excluded_from(&sled) {
                if let Some(keys) = &self.keys {
                    keys.excluded(sled, from - 1);
                }
                added.retain(|e| !(e.sled_id == sled && e.event_id >= from - 1));
                tracing::warn!(sled = %sled, seq = from, "sled equivocated; its entries from this seq on leave the view");
            }
        }
        added
    }
}

/// The event an op carries.
pub(crate) fn event_of(op: &SignedOp, entry: Entry) -> LoggedEvent {
    LoggedEvent {
        event_id: op.seq() - 1,
        sled_id: op.author(),
        at: entry.at(),
        entry,
        op_id: op.id(),
        lamport: op.lamport(),
    }
}
