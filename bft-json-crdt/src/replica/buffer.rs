//! The buffer of ops whose deps are missing: bounded in all, per author and in
//! time, and rid of ops that can never apply.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::{AuthorId, OpId};
use crate::limits::Limits;
use crate::op::SignedOp;
use crate::rejected::Rejected;

/// Most ids of permanently refused ops remembered, so that ops depending on them are
/// refused at once instead of buffered (oldest forgotten first).
const REFUSED_MEMORY: usize = 65_536;

struct Waiting {
    op: SignedOp,
    missing: HashSet<OpId>,
    since: Instant,
}

/// Ops waiting for deps, with the indexes that make every operation O(1) amortised:
/// who waits for what, how many each author holds, and the arrival order (for
/// expiry).
#[derive(Default)]
pub(super) struct Buffer {
    ops: HashMap<OpId, Waiting>,
    /// missing dep → buffered ops waiting for it.
    waiters: HashMap<OpId, HashSet<OpId>>,
    per_author: HashMap<AuthorId, usize>,
    /// Arrival order; entries of ops no longer buffered are skipped lazily.
    arrivals: VecDeque<(Instant, OpId)>,
    /// Ids of ops refused for what they are ([`Rejected::is_permanent`]).
    refused: HashSet<OpId>,
    refused_order: VecDeque<OpId>,
}

impl Buffer {
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(super) fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    /// The deps a buffered op still waits for.
    pub(super) fn missing(&self, id: &OpId) -> Vec<OpId> {
        let mut m: Vec<OpId> = self
            .ops
            .get(id)
            .map(|w| w.missing.iter().copied().collect())
            .unwrap_or_default();
        m.sort();
        m
    }

    /// A refused op among `deps`, if one is remembered.
    pub(super) fn refused_dep(&self, deps: &[OpId]) -> Option<OpId> {
        deps.iter().find(|d| self.refused.contains(d)).copied()
    }

    /// True if an op of an author other than `author` and not `excluded` waits for
    /// `id`.
    pub(super) fn needed_by_other(
        &self,
        id: &OpId,
        author: &AuthorId,
        excluded: impl Fn(&SignedOp) -> bool,
    ) -> bool {
        self.waiters.get(id).is_some_and(|ws| {
            ws.iter()
                .filter_map(|w| self.ops.get(w))
                .any(|w| w.op.author() != *author && !excluded(&w.op))
        })
    }

    /// Buffers `op` until `missing` are all held, within the limits.
    pub(super) fn add(
        &mut self,
        op: SignedOp,
        missing: &[OpId],
        limits: &Limits,
    ) -> Result<(), Rejected> {
        let id = op.id();
        if self.ops.len() >= limits.max_buffered {
            return Err(Rejected::BufferFull {
                id,
                capacity: limits.max_buffered,
            });
        }
        let author = op.author();
        let held = self.per_author.entry(author).or_insert(0);
        if *held >= limits.max_buffered_per_author {
            return Err(Rejected::AuthorBufferFull {
                id,
                author,
                quota: limits.max_buffered_per_author,
            });
        }
        *held += 1;
        for m in missing {
            self.waiters.entry(*m).or_default().insert(id);
        }
        let now = Instant::now();
        self.arrivals.push_back((now, id));
        self.ops.insert(
            id,
            Waiting {
                op,
                missing: missing.iter().copied().collect(),
                since: now,
            },
        );
        Ok(())
    }

    /// Takes `id` out of the buffer (applied by another path).
    pub(super) fn remove(&mut self, id: &OpId) -> Option<SignedOp> {
        let w = self.ops.remove(id)?;
        for m in &w.missing {
            if let Some(ws) = self.waiters.get_mut(m) {
                ws.remove(id);
                if ws.is_empty() {
                    self.waiters.remove(m);
                }
            }
        }
        if let Some(n) = self.per_author.get_mut(&w.op.author()) {
            *n -= 1;
            if *n == 0 {
                self.per_author.remove(&w.op.author());
            }
        }
        Some(w.op)
    }

    /// `dep` is now held: the ops that waited only for it leave the buffer.
    pub(super) fn release(&mut self, dep: OpId) -> Vec<SignedOp> {
        let mut out = Vec::new();
        for w in self.waiters.remove(&dep).unwrap_or_default() {
            let done = self.ops.get_mut(&w).is_some_and(|b| {
                b.missing.remove(&dep);
                b.missing.is_empty()
            });
            if done && let Some(op) = self.remove(&w) {
                out.push(op);
            }
        }
        out
    }

    /// `id` was refused for what it is: remembers it, and drops every buffered op
    /// that (transitively) waits for it, each with its refusal.
    pub(super) fn refused(&mut self, id: OpId) -> Vec<(OpId, Rejected)> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(dep) = stack.pop() {
            self.remember_refused(dep);
            for w in self.waiters.remove(&dep).unwrap_or_default() {
                if self.remove(&w).is_some() {
                    out.push((w, Rejected::DependsOnRejected { id: w, dep }));
                    stack.push(w);
                }
            }
        }
        out
    }

    fn remember_refused(&mut self, id: OpId) {
        if self.refused.insert(id) {
            self.refused_order.push_back(id);
            if self.refused_order.len() > REFUSED_MEMORY
                && let Some(old) = self.refused_order.pop_front()
            {
                self.refused.remove(&old);
            }
        }
    }

    /// Drops the ops that waited longer than `max_age`, oldest first.
    pub(super) fn expire(&mut self, max_age: Duration) -> Vec<(OpId, Rejected)> {
        let now = Instant::now();
        let mut out = Vec::new();
        while let Some(&(since, id)) = self.arrivals.front() {
            let live = self.ops.get(&id).is_some_and(|w| w.since == since);
            if live && now.duration_since(since) <= max_age {
                break;
            }
            self.arrivals.pop_front();
            if live && self.remove(&id).is_some() {
                let waited_ms = now.duration_since(since).as_millis() as u64;
                out.push((id, Rejected::Expired { id, waited_ms }));
            }
        }
        // Entries of ops that left by another path are skipped above; keep the
        // queue from growing past the buffer by many when they pile up behind a
        // live head.
        if self.arrivals.len() > 2 * self.ops.len() + 1024 {
            let ops = &self.ops;
            self.arrivals
                .retain(|(since, id)| ops.get(id).is_some_and(|w| w.since == *since));
        }
        out
    }
}
