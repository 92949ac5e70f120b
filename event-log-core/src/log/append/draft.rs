//! Admitting requests: taking them from the queue, resolving their idempotency
//! keys, and linking them into this sled's chain (seqs, deps, lamports, ids).

use std::collections::HashSet;

use bft_json_crdt::{Draft, Op, OpId};

use super::signing::Signing;
use super::waiters::Waiters;
use super::{EventLog, Pending};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::event::LoggedEvent;
use crate::store::OpStore;

/// The last op linked into this sled's chain: what the next op continues.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tip {
    seq: u64,
    id: OpId,
    lamport: u64,
}

impl<S: OpStore> EventLog<S> {
    /// Links `list` into the chain after `tip` (after the last committed op when
    /// `None`: nothing is prepared or in flight), moves `tip` on, and signs the
    /// drafts here (`inline`) or on rayon's pool.
    pub(super) fn start_signing<'a>(
        &'a self,
        list: Vec<Pending>,
        tip: &mut Option<Tip>,
        inline: bool,
    ) -> Signing<'a> {
        let (drafts, entries, new_tip) = self.draft_batch(&list, *tip);
        *tip = Some(new_tip);
        let callers = Waiters::requeue_on_drop(list, &self.queue);
        Signing::start(callers, drafts, entries, &self.key, inline)
    }

    /// Takes queued requests holding at most `room` entries (at least one request
    /// when `room` > 0, however large).
    pub(super) fn take_batch(&self, room: usize, keys: &mut HashSet<String>) -> Vec<Pending> {
        if room == 0 {
            return Vec::new();
        }
        let mut q = self.queue.lock();
        let mut taken = Vec::new();
        let mut left = Vec::new();
        let mut n = 0;
        let mut full = false;
        for p in q.drain(..) {
            if p.reply.is_canceled() && !p.detached {
                // Its caller gave up before any writer took it: withdrawn.
                continue;
            }
            // First come, first taken: once one does not fit, the rest wait too.
            full = full || (!taken.is_empty() && n + p.entries.len() > room);
            if full {
                left.push(p);
                continue;
            }
            match self.resolve_keys(&p, keys) {
                Keys::Fresh => {
                    for k in p.entries.iter().filter_map(entry_key) {
                        keys.insert(k.to_owned());
                    }
                    n += p.entries.len();
                    taken.push(p);
                }
                // The same key is being written for another request: wait for its
                // outcome (the next leader finds it committed).
                Keys::InFlight => left.push(p),
                Keys::Answered(reply) => {
                    let _ = p.reply.send(reply);
                }
            }
        }
        *q = left;
        taken
    }

    /// Whether a request's idempotency keys are new, being written, or already
    /// answer it.
    fn resolve_keys(&self, p: &Pending, in_flight: &HashSet<String>) -> Keys {
        if !p.entries.iter().any(|e| entry_key(e).is_some()) {
            return Keys::Fresh;
        }
        if p.entries
            .iter()
            .filter_map(entry_key)
            .any(|k| in_flight.contains(k))
        {
            return Keys::InFlight;
        }
        let Some(lookup) = &p.keys else {
            return Keys::Fresh;
        };
        let mut existing = Vec::new();
        for e in &p.entries {
            let Some(k) = entry_key(e) else { continue };
            match lookup.holder(k) {
                Some(held) if same_transition(&held.entry, e) => existing.push(held),
                Some(held) => {
                    return Keys::Answered(Err(Error::IdempotencyKeyReused {
                        key: k.to_owned(),
                        existing: held.event_id,
                    }));
                }
                None if existing.is_empty() => return Keys::Fresh,
                None => {
                    return Keys::Answered(Err(Error::IdempotencyKeyReused {
                        key: k.to_owned(),
                        existing: existing[0].event_id,
                    }));
                }
            }
        }
        if existing.len() == p.entries.len() {
            Keys::Answered(Ok(existing))
        } else if existing.is_empty() {
            Keys::Fresh
        } else {
            // Part of the call was written before under these keys, part not: a
            // retry must repeat the call as it was.
            Keys::Answered(Err(Error::IdempotencyKeyReused {
                key: p
                    .entries
                    .iter()
                    .find_map(entry_key)
                    .unwrap_or_default()
                    .to_owned(),
                existing: existing[0].event_id,
            }))
        }
    }

    /// Links the batch's ops (seqs, deps, lamports, ids), reading the state under its
    /// lock; the costly signing happens after the lock is released.
    ///
    /// With `after` (the last op linked before, whose group is still being signed or
    /// written), the batch continues that op's chain and depends on nothing else.
    /// Returns the drafts, their entries and the new tip of the chain.
    fn draft_batch(&self, batch: &[Pending], after: Option<Tip>) -> (Vec<Draft>, Vec<Entry>, Tip) {
        let (mut seq, mut prev, mut heads) = match after {
            Some(tip) => (tip.seq, Some((tip.id, tip.lamport)), Vec::new()),
            None => {
                let st = self.state.read();
                let replica = &st.replica;
                let seq = replica.max_seq(&self.sled_id());
                let prev: Option<(OpId, u64)> =
                    replica.tip(&self.sled_id()).map(|o| (o.id(), o.lamport()));
                // Other sleds' heads we know, newest first, bounded.
                let mut heads: Vec<(u64, OpId)> = replica
                    .heads()
                    .into_iter()
                    .filter_map(|h| replica.get(&h))
                    .filter(|o| o.author() != self.sled_id())
                    .map(|o| (o.lamport(), o.id()))
                    .collect();
                heads.sort_unstable_by(|a, b| b.cmp(a));
                heads.truncate(self.config.max_extra_deps);
                (seq, prev, heads)
            }
        };
        let mut drafts: Vec<Draft> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for p in batch {
            for (entry, payload) in p.entries.iter().zip(&p.payloads) {
                seq += 1;
                let mut deps: Vec<OpId> = Vec::with_capacity(1 + heads.len());
                let mut max_lamport = 0;
                if let Some((id, l)) = prev {
                    deps.push(id);
                    max_lamport = l;
                }
                for (l, id) in heads.drain(..) {
                    deps.push(id);
                    max_lamport = max_lamport.max(l);
                }
                let draft = Op {
                    author: self.sled_id(),
                    seq,
                    lamport: max_lamport + 1,
                    deps,
                    payload: payload.clone(),
                }
                .draft(&self.key);
                // Ids do not cover signatures: link the chain first, sign in parallel.
                prev = Some((draft.id(), draft.lamport()));
                drafts.push(draft);
                entries.push(entry.clone());
            }
        }
        let (id, lamport) = prev.expect("a batch holds at least one entry");
        (drafts, entries, Tip { seq, id, lamport })
    }
}

/// What a request's idempotency keys say about it.
enum Keys {
    /// No key of it was used: write it.
    Fresh,
    /// A key of it is being written for another request.
    InFlight,
    /// Answered from what is stored.
    Answered(Result<Vec<LoggedEvent>>),
}

/// The idempotency key of an entry, if it has one.
pub(super) fn entry_key(e: &Entry) -> Option<&str> {
    match e {
        Entry::Transition(t) => t.idempotency_key.as_deref(),
        _ => None,
    }
}

/// A retry carries the same transition; only its timestamp may differ.
fn same_transition(held: &Entry, retry: &Entry) -> bool {
    match (held, retry) {
        (Entry::Transition(a), Entry::Transition(b)) => {
            a.story_id == b.story_id
                && a.from_stage == b.from_stage
                && a.to_stage == b.to_stage
                && a.pipeline_event == b.pipeline_event
        }
        _ => false,
    }
}
