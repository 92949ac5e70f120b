//! The in-memory state of an [`crate::EventLog`]: the replica and the event indexes
//! that make reads cost O(k log n) for k results.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bft_json_crdt::{Limits, Membership, Replica, SignedOp};

use crate::entry::Entry;
use crate::event::{EventId, LoggedEvent, SledId};

pub(crate) struct State {
    pub(crate) replica: Replica,
    /// Events in the view, by (sled, event_id).
    pub(crate) events: BTreeMap<(SledId, EventId), LoggedEvent>,
    /// story → its events.
    pub(crate) by_story: HashMap<String, BTreeSet<(SledId, EventId)>>,
    /// (sled, idempotency key) → the event holding it.
    keys: HashMap<(SledId, String), EventId>,
}

impl State {
    pub(crate) fn new(limits: Limits, members: Option<Membership>) -> Self {
        let replica = Replica::new(limits);
        State {
            replica: match members {
                Some(m) => replica.with_members(m),
                None => replica,
            },
            events: BTreeMap::new(),
            by_story: HashMap::new(),
            keys: HashMap::new(),
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
            if self.replica.in_view(&op) {
                let ev = event_of(&op, entry);
                if collect {
                    added.push(ev.clone());
                }
                self.index(ev);
            }
        }
        // An equivocation excludes its author from the first equivocated seq on.
        for sled in touched {
            if let Some(from) = self.replica.excluded_from(&sled) {
                let doomed: Vec<(SledId, EventId)> = self
                    .events
                    .range((sled, from - 1)..=(sled, EventId::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for k in doomed {
                    self.unindex(&k);
                }
                added.retain(|e| !(e.sled_id == sled && e.event_id >= from - 1));
                tracing::warn!(sled = %sled, seq = from, "sled equivocated; its entries from this seq on leave the view");
            }
        }
        added
    }

    /// The event of `sled` holding an idempotency key.
    pub(crate) fn keyed(&self, sled: &SledId, key: &str) -> Option<&LoggedEvent> {
        let id = self.keys.get(&(*sled, key.to_owned()))?;
        self.events.get(&(*sled, *id))
    }

    fn index(&mut self, ev: LoggedEvent) {
        let key = (ev.sled_id, ev.event_id);
        if let crate::entry::Entry::Transition(t) = &ev.entry
            && let Some(k) = &t.idempotency_key
        {
            // The first event holding a key keeps it.
            self.keys
                .entry((ev.sled_id, k.clone()))
                .or_insert(ev.event_id);
        }
        if let Some(story) = ev.story_id() {
            match self.by_story.get_mut(story) {
                Some(set) => {
                    set.insert(key);
                }
                None => {
                    self.by_story
                        .insert(story.to_owned(), BTreeSet::from([key]));
                }
            }
        }
        self.events.insert(key, ev);
    }

    fn unindex(&mut self, key: &(SledId, EventId)) {
        if let Some(ev) = self.events.remove(key)
            && let Some(story) = ev.story_id()
            && let Some(set) = self.by_story.get_mut(story)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_story.remove(story);
            }
        }
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
