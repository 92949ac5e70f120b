//! Idempotency keys, answered by the store: an append holding keys looks them up
//! in the store's `(author, key)` index before it is queued ([`EventLog::look_up_keys`]),
//! so the log keeps no map of every key it ever wrote.
//!
//! The lookup and the queueing are not one atomic step: an append with the same key
//! may commit between them. The [`KeyRegistry`] closes that window. Every lookup
//! holds a [`KeyTicket`] from before it reads the store until its request is
//! answered; while any ticket is held, each keyed event of this sled that enters
//! the view is recorded with the registry's epoch at that moment. A request sees
//! what its lookup found plus every event recorded since its ticket was taken:
//! an event applied before the ticket was durable before the lookup read the store,
//! so the lookup found it; one applied after is in the registry. Records older than
//! the oldest ticket held are dropped, so the registry holds only what appends in
//! flight may need (bounded by the requests in flight, not by history).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::EventLog;
use super::draft::entry_key;
use crate::entry::Entry;
use crate::error::Result;
use crate::event::{LoggedEvent, SledId};
use crate::log::pages::Unheld;
use crate::state::event_of;
use crate::store::OpStore;

/// Rows read per key lookup: the first event of the sled holding the key is the
/// one that answers; later rows hold the key only if the sled equivocated.
const KEYED_ROWS: usize = 8;

/// Keyed events of this sled recorded while lookups are in progress.
pub(crate) struct KeyRegistry {
    sled: SledId,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Stamped on the next record; bumped by each record.
    epoch: u64,
    /// Tickets held, by the epoch they were taken at.
    tickets: BTreeMap<u64, usize>,
    /// Key → the first event recorded holding it, and its stamp.
    recent: HashMap<String, (LoggedEvent, u64)>,
    /// Records in stamp order, for dropping the old ones.
    order: VecDeque<(u64, String)>,
}

impl Inner {
    /// Drops the records no ticket held can need (stamped before the oldest).
    fn prune(&mut self) {
        let oldest = self.tickets.keys().next().copied().unwrap_or(u64::MAX);
        while self.order.front().is_some_and(|(stamp, _)| *stamp < oldest) {
            let (stamp, key) = self.order.pop_front().expect("checked above");
            if self.recent.get(&key).is_some_and(|(_, s)| *s == stamp) {
                self.recent.remove(&key);
            }
        }
    }
}

impl KeyRegistry {
    /// The registry of sled `sled`'s log.
    pub(crate) fn new(sled: SledId) -> Arc<Self> {
        Arc::new(KeyRegistry {
            sled,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// A ticket, taken before the store is read.
    pub(crate) fn ticket(self: &Arc<Self>) -> KeyTicket {
        let mut inner = self.inner.lock();
        let epoch = inner.epoch;
        *inner.tickets.entry(epoch).or_default() += 1;
        KeyTicket {
            registry: self.clone(),
            epoch,
        }
    }

    /// Records an event entering the view, if it is this sled's, holds a key and a
    /// ticket is held.
    pub(crate) fn record(&self, ev: &LoggedEvent) {
        if ev.sled_id != self.sled {
            return;
        }
        let Some(key) = entry_key(&ev.entry) else {
            return;
        };
        let mut inner = self.inner.lock();
        if inner.tickets.is_empty() {
            return;
        }
        let stamp = inner.epoch;
        inner.epoch += 1;
        if !inner.recent.contains_key(key) {
            inner.recent.insert(key.to_owned(), (ev.clone(), stamp));
            inner.order.push_back((stamp, key.to_owned()));
        }
    }

    /// Forgets the records of `sled`'s events at `from_event` and after (they left
    /// the view: the sled equivocated).
    pub(crate) fn excluded(&self, sled: SledId, from_event: u64) {
        if sled != self.sled {
            return;
        }
        self.inner
            .lock()
            .recent
            .retain(|_, (ev, _)| ev.event_id < from_event);
    }

    /// The event recorded holding `key` since `ticket` was taken.
    fn recorded(&self, ticket: &KeyTicket, key: &str) -> Option<LoggedEvent> {
        let inner = self.inner.lock();
        inner
            .recent
            .get(key)
            .filter(|(_, stamp)| *stamp >= ticket.epoch)
            .map(|(ev, _)| ev.clone())
    }

    /// Records held (bounded by the appends in flight).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().recent.len()
    }
}

/// Held from before a key lookup reads the store until its request is answered
/// (dropped with it).
pub(crate) struct KeyTicket {
    registry: Arc<KeyRegistry>,
    epoch: u64,
}

impl Drop for KeyTicket {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock();
        if let Some(n) = inner.tickets.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                inner.tickets.remove(&self.epoch);
            }
        }
        inner.prune();
    }
}

/// What a request's key lookup found: the events the store held for its keys when
/// it was read, and the ticket that lets the request see what came after.
pub(crate) struct KeyLookup {
    ticket: KeyTicket,
    found: HashMap<String, LoggedEvent>,
}

impl KeyLookup {
    /// The event of this sled holding `key`: the first one stored, found by the
    /// lookup, or one that entered the view since.
    pub(super) fn holder(&self, key: &str) -> Option<LoggedEvent> {
        self.found
            .get(key)
            .cloned()
            .or_else(|| self.ticket.registry.recorded(&self.ticket, key))
    }
}

impl<S: OpStore> EventLog<S> {
    /// Looks up the idempotency keys of `entries` in the store (`None` if they hold
    /// none). Each row read is checked like every read (see `pages.rs`).
    pub(super) async fn look_up_keys(&self, entries: &[Entry]) -> Result<Option<KeyLookup>> {
        let mut keys: Vec<&str> = entries.iter().filter_map(entry_key).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        keys.sort_unstable();
        keys.dedup();
        // Before the store is read (see the module docs).
        let ticket = self.keys.ticket();
        let mut found = HashMap::new();
        let sled = self.sled_id();
        for key in keys {
            let rows = self.store.keyed(&sled, key, KEYED_ROWS).await?;
            let (held, _) = self.authenticate(&rows, Unheld::Skip)?;
            if let Some(first) = held.into_iter().find(|h| h.in_view) {
                found.insert(key.to_owned(), event_of(&first.op, first.entry));
            }
        }
        Ok(Some(KeyLookup { ticket, found }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, Transition};
    use bft_json_crdt::OpId;

    fn sled(n: u8) -> SledId {
        bft_json_crdt::KeyPair::new(bft_json_crdt::SigningKey::from_bytes(&[n; 32])).author()
    }

    fn event(sled: SledId, id: u64, key: &str) -> LoggedEvent {
        LoggedEvent {
            event_id: id,
            sled_id: sled,
            at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            entry: Entry::Transition(Transition::now("s", "a", "b", "E").with_idempotency_key(key)),
            op_id: OpId::default(),
            lamport: id + 1,
        }
    }

    #[test]
    fn records_only_what_a_held_ticket_may_need() {
        let me = sled(1);
        let reg = KeyRegistry::new(me);
        // No lookup in progress: nothing is kept.
        reg.record(&event(me, 0, "a"));
        assert_eq!(reg.len(), 0);
        let early = reg.ticket();
        reg.record(&event(me, 1, "b"));
        // Another sled's keys are not this sled's to answer.
        reg.record(&event(sled(2), 0, "c"));
        let late = reg.ticket();
        reg.record(&event(me, 2, "d"));
        assert_eq!(reg.len(), 2);
        // A ticket sees what came after it, not before (its lookup read that).
        assert!(reg.recorded(&early, "b").is_some());
        assert!(reg.recorded(&late, "b").is_none());
        assert_eq!(reg.recorded(&late, "d").map(|e| e.event_id), Some(2));
        // Once the early ticket is gone, what only it could need goes.
        drop(early);
        assert_eq!(reg.len(), 1);
        drop(late);
        assert_eq!(reg.len(), 0, "nothing held once no lookup is in progress");
    }

    #[test]
    fn stays_bounded_under_a_steady_stream_of_lookups() {
        let me = sled(1);
        let reg = KeyRegistry::new(me);
        let mut tickets = std::collections::VecDeque::new();
        for i in 0..10_000u64 {
            tickets.push_back(reg.ticket());
            reg.record(&event(me, i, &format!("k{i}")));
            if tickets.len() > 4 {
                tickets.pop_front();
            }
            assert!(reg.len() <= 5, "{} records held at {i}", reg.len());
        }
    }

    #[test]
    fn excluded_events_are_forgotten() {
        let me = sled(1);
        let reg = KeyRegistry::new(me);
        let t = reg.ticket();
        reg.record(&event(me, 3, "a"));
        reg.record(&event(me, 5, "b"));
        reg.excluded(me, 4);
        assert!(reg.recorded(&t, "a").is_some());
        assert!(reg.recorded(&t, "b").is_none());
    }
}
