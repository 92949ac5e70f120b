//! A replica: validates ops, buffers those whose deps are missing, applies the rest,
//! and exposes a deterministic view.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::ids::{AuthorId, OpId};
use crate::limits::Limits;
use crate::op::SignedOp;
use crate::rejected::{DecodeError, Rejected};
use crate::verify::verify_batch;

/// Highest seq held per author. A missing author means 0 (nothing held).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(pub BTreeMap<AuthorId, u64>);

impl VersionVector {
    /// An empty vector (holds nothing).
    pub fn new() -> Self {
        Self::default()
    }
    /// The highest seq held for `author` (0 if none).
    pub fn get(&self, author: &AuthorId) -> u64 {
        self.0.get(author).copied().unwrap_or(0)
    }
    /// Raises the entry for `author` to at least `seq`.
    pub fn raise(&mut self, author: AuthorId, seq: u64) {
        let e = self.0.entry(author).or_insert(0);
        if *e < seq {
            *e = seq;
        }
    }
    /// Sets the entry for `author`.
    pub fn set(&mut self, author: AuthorId, seq: u64) {
        if seq == 0 {
            self.0.remove(&author);
        } else {
            self.0.insert(author, seq);
        }
    }
    /// True if every entry of `other` is at most ours.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(a, s)| self.get(a) >= *s)
    }
    /// Entries, in author order.
    pub fn iter(&self) -> impl Iterator<Item = (&AuthorId, &u64)> {
        self.0.iter()
    }
    /// Number of authors with at least one op.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True if no author has an op.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What happened to one op that was not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Validated and applied (it may be equivocation evidence, see [`Replica::equivocations`]).
    Applied,
    /// Already held (applied or buffered); nothing changed.
    Duplicate,
    /// Valid so far, waiting in the buffer for these deps.
    Buffered {
        /// Deps not yet held.
        missing: Vec<OpId>,
    },
}

/// The fate of one op: its id and its outcome or rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The op (the recomputed id where known, else the claimed one).
    pub id: OpId,
    /// What happened.
    pub result: Result<Outcome, Rejected>,
}

/// An op that passed every check and whose deps are all held (or ready before it).
#[derive(Debug, Clone)]
pub struct ReadyOp {
    /// The op.
    pub op: SignedOp,
    /// True if another op with the same `(author, seq)` is already held or ready:
    /// a store must keep this one as equivocation evidence, not as the primary op.
    pub evidence: bool,
}

/// The result of [`Replica::ingest`]: ops ready to persist then [`Replica::commit`],
/// in causal order, and the fate of every input op (and of buffered ops released).
#[derive(Debug, Default)]
pub struct Ingest {
    /// Ready ops, each after all of its deps.
    pub ready: Vec<ReadyOp>,
    /// One delivery per input op, in input order, then one per op released from the
    /// buffer. A ready op's outcome is `Applied` once it is committed.
    pub deliveries: Vec<Delivery>,
}

/// Two valid ops by one author at one seq: proof that the author equivocated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Equivocation {
    /// The author.
    pub author: AuthorId,
    /// The seq held by more than one op.
    pub seq: u64,
    /// The ops at that seq, ascending.
    pub ops: Vec<OpId>,
}

/// The ops held at one `(author, seq)`: one, or several under equivocation. Most
/// seqs hold one op, so it is kept inline (no allocation per op).
enum SeqOps {
    One(OpId),
    Many(Vec<OpId>),
}

impl SeqOps {
    fn push(&mut self, id: OpId) {
        match self {
            SeqOps::One(first) => *self = SeqOps::Many(vec![*first, id]),
            SeqOps::Many(ids) => ids.push(id),
        }
    }

    fn len(&self) -> usize {
        match self {
            SeqOps::One(_) => 1,
            SeqOps::Many(ids) => ids.len(),
        }
    }

    /// The ids, ascending.
    fn sorted(&self) -> Vec<OpId> {
        match self {
            SeqOps::One(id) => vec![*id],
            SeqOps::Many(ids) => {
                let mut v = ids.clone();
                v.sort();
                v
            }
        }
    }
}

#[derive(Default)]
struct AuthorState {
    /// seq → ops held at that seq (more than one only under equivocation).
    by_seq: BTreeMap<u64, SeqOps>,
    /// From this seq on, the author's ops are excluded from the view.
    excluded_from: Option<u64>,
}

struct Buffered {
    op: SignedOp,
    missing: HashSet<OpId>,
}

/// A replica of the op graph.
///
/// Validation order, cheapest first (each check uses only the op and its causal past,
/// so every correct replica decides alike): limits and decoding (done by
/// [`crate::RawOp::decode`]) → id → duplicate → author key and signature → missing deps
/// (buffer, bounded) → prev link and lamport.
///
/// The view holds every applied op except those of an equivocating author from the
/// first equivocated seq on, ordered by `(lamport, id)`: a linear extension of
/// causality that is the same on every replica holding the same ops.
pub struct Replica {
    limits: Limits,
    ops: HashMap<OpId, SignedOp>,
    authors: HashMap<AuthorId, AuthorState>,
    view: BTreeSet<(u64, OpId)>,
    heads: BTreeSet<OpId>,
    buffer: HashMap<OpId, Buffered>,
    /// missing dep → buffered ops waiting for it.
    waiting: HashMap<OpId, Vec<OpId>>,
    /// Buffered ops whose last missing dep arrived through [`Replica::insert`] (a local
    /// op, not an ingested one); see [`Replica::take_unblocked`].
    unblocked: Vec<SignedOp>,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Replica {
    /// An empty replica with these limits.
    pub fn new(limits: Limits) -> Self {
        Replica {
            limits,
            ops: HashMap::new(),
            authors: HashMap::new(),
            view: BTreeSet::new(),
            heads: BTreeSet::new(),
            buffer: HashMap::new(),
            waiting: HashMap::new(),
            unblocked: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates and applies one op, releasing buffered ops it unblocks.
    ///
    /// Returns the op's delivery first, then one per released op.
    pub fn apply(&mut self, op: SignedOp) -> Vec<Delivery> {
        let ingest = self.ingest(vec![op]);
        self.commit(ingest.ready);
        ingest.deliveries
    }

    /// Validates many ops at once (batch signature verification) without applying
    /// them: returns the ops that are ready, in causal order, for the caller to persist
    /// and then [`Replica::commit`]. Ops whose deps are missing go to the buffer;
    /// buffered ops unblocked by this batch are released into `ready`.
    ///
    /// Deliveries come in input order; ops are resolved in `(lamport, id)` order, so
    /// an op whose deps are elsewhere in the batch never needs the buffer. A copy of
    /// an op is a `Duplicate` unless it is the first valid copy; an exact copy of a
    /// refused op gets the same rejection.
    ///
    /// Between `ingest` and `commit` the caller must not ingest other ops. If the
    /// caller never commits (say the store failed), the ready ops are simply lost from
    /// this replica, and a peer sends them again.
    pub fn ingest(&mut self, ops: Vec<SignedOp>) -> Ingest {
        let mut out = Ingest::default();
        // 1. duplicates of held or buffered ops and exact copies earlier in this batch;
        //    then the structural checks a locally built `SignedOp` may fail.
        let mut fresh: Vec<(usize, SignedOp)> = Vec::with_capacity(ops.len());
        let mut copies: HashMap<(OpId, [u8; 64]), usize> = HashMap::new();
        // (delivery of an exact copy, delivery of the first copy): a copy of a
        // refused op is refused alike, a copy of an accepted one is a duplicate.
        let mut echoes: Vec<(usize, usize)> = Vec::new();
        for op in ops {
            let id = op.id();
            let di = out.deliveries.len();
            let result = if self.ops.contains_key(&id) || self.buffer.contains_key(&id) {
                Ok(Outcome::Duplicate)
            } else if let Some(&first) = copies.get(&(id, *op.signature())) {
                echoes.push((di, first));
                Ok(Outcome::Duplicate)
            } else {
                copies.insert((id, *op.signature()), di);
                match self.check_shape(&op) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        fresh.push((di, op));
                        Ok(Outcome::Applied)
                    }
                }
            };
            out.deliveries.push(Delivery { id, result });
        }
        // 2. signatures, batched; only then duplicates by id, so that a copy with a bad
        //    signature earlier in the batch cannot hide a good copy of the same op.
        let refs: Vec<&SignedOp> = fresh.iter().map(|(_, op)| op).collect();
        let sig_results = verify_batch(&refs);
        let mut candidates: Vec<(usize, SignedOp)> = Vec::with_capacity(fresh.len());
        let mut valid: HashSet<OpId> = HashSet::new();
        for ((di, op), res) in fresh.into_iter().zip(sig_results) {
            match res {
                Err(e) => out.deliveries[di].result = Err(e),
                Ok(()) if !valid.insert(op.id()) => {
                    out.deliveries[di].result = Ok(Outcome::Duplicate);
                }
                Ok(()) => candidates.push((di, op)),
            }
        }
        // A valid op's deps have lower lamports: resolving in `(lamport, id)` order
        // makes ops whose deps are in this batch ready without a trip through the
        // (bounded) buffer, whatever the order of the batch.
        candidates.sort_by_key(|(_, op)| (op.lamport(), op.id()));
        // 3. causal resolution against held ops plus ops made ready in this call
        let mut ready_ids: HashMap<OpId, SignedOp> = HashMap::new();
        let mut pending_seq: HashMap<(AuthorId, u64), ()> = HashMap::new();
        let mut queue: Vec<(Option<usize>, SignedOp)> = candidates
            .into_iter()
            .map(|(d, op)| (Some(d), op))
            .collect();
        let mut qi = 0;
        while qi < queue.len() {
            let (slot, op) = queue[qi].clone();
            qi += 1;
            let missing: Vec<OpId> = op
                .deps()
                .iter()
                .filter(|d| !self.ops.contains_key(d) && !ready_ids.contains_key(d))
                .copied()
                .collect();
            if !missing.is_empty() {
                let res = self.buffer_op(op.clone(), &missing);
                let res = res.map(|()| Outcome::Buffered { missing });
                match slot {
                    Some(d) => out.deliveries[d].result = res,
                    None => out.deliveries.push(Delivery {
                        id: op.id(),
                        result: res,
                    }),
                }
                continue;
            }
            match self.check_links(&op, &ready_ids) {
                Ok(()) => {
                    let key = (op.author(), op.seq());
                    let evidence = self.held_at(&key.0, key.1) || pending_seq.contains_key(&key);
                    pending_seq.insert(key, ());
                    ready_ids.insert(op.id(), op.clone());
                    out.ready.push(ReadyOp {
                        op: op.clone(),
                        evidence,
                    });
                    if slot.is_none() {
                        out.deliveries.push(Delivery {
                            id: op.id(),
                            result: Ok(Outcome::Applied),
                        });
                    }
                    // release buffered ops that waited for this one
                    for released in self.release(op.id()) {
                        queue.push((None, released));
                    }
                }
                Err(e) => match slot {
                    Some(d) => out.deliveries[d].result = Err(e),
                    None => out.deliveries.push(Delivery {
                        id: op.id(),
                        result: Err(e),
                    }),
                },
            }
        }
        for (di, first) in echoes {
            if let Err(e) = &out.deliveries[first].result {
                out.deliveries[di].result = Err(e.clone());
            }
        }
        out
    }

    /// Checks what decoding guarantees but a `SignedOp` built with [`crate::Op::sign`]
    /// may lack: limits, and seq and lamport at least 1.
    fn check_shape(&self, op: &SignedOp) -> Result<(), Rejected> {
        let id = op.id();
        let over = |what: &'static str, limit: usize, actual: usize| Rejected::OverLimits {
            claimed: id,
            error: DecodeError::TooLarge {
                what,
                limit,
                actual,
            },
        };
        if op.deps().len() > self.limits.max_deps {
            return Err(over("deps", self.limits.max_deps, op.deps().len()));
        }
        if op.payload().len() > self.limits.max_payload {
            return Err(over("payload", self.limits.max_payload, op.payload().len()));
        }
        for (field, value) in [("seq", op.seq()), ("lamport", op.lamport())] {
            if value == 0 {
                return Err(Rejected::Malformed {
                    claimed: id,
                    error: DecodeError::ZeroField(field),
                });
            }
        }
        Ok(())
    }

    fn held_at(&self, author: &AuthorId, seq: u64) -> bool {
        self.authors
            .get(author)
            .is_some_and(|a| a.by_seq.contains_key(&seq))
    }

    fn lookup<'a>(&'a self, id: &OpId, extra: &'a HashMap<OpId, SignedOp>) -> Option<&'a SignedOp> {
        self.ops.get(id).or_else(|| extra.get(id))
    }

    fn check_links(&self, op: &SignedOp, extra: &HashMap<OpId, SignedOp>) -> Result<(), Rejected> {
        let mut max_lamport = 0u64;
        let mut same_author: Vec<u64> = Vec::new();
        for d in op.deps() {
            // callers only check ops whose deps are all present
            let Some(dep) = self.lookup(d, extra) else {
                continue;
            };
            max_lamport = max_lamport.max(dep.lamport());
            if dep.author() == op.author() {
                same_author.push(dep.seq());
            }
        }
        let bad = |detail: String| Rejected::BadPrevLink {
            id: op.id(),
            author: op.author(),
            seq: op.seq(),
            detail,
        };
        match (op.seq(), same_author.as_slice()) {
            (1, []) => {}
            (1, _) => {
                return Err(bad(
                    "seq 1 must not depend on an op of its own author".into()
                ));
            }
            (s, [prev]) if prev.checked_add(1) == Some(s) => {}
            (s, []) => {
                return Err(bad(format!(
                    "seq {s} must depend on its author's op at seq {}",
                    s.saturating_sub(1)
                )));
            }
            (s, found) => {
                return Err(bad(format!(
                    "seq {s} must depend on exactly one op of its author, at seq {}; found seqs {found:?}",
                    s.saturating_sub(1)
                )));
            }
        }
        let expected = max_lamport.saturating_add(1);
        if op.lamport() != expected {
            return Err(Rejected::WrongLamport {
                id: op.id(),
                expected,
                actual: op.lamport(),
            });
        }
        Ok(())
    }

    fn buffer_op(&mut self, op: SignedOp, missing: &[OpId]) -> Result<(), Rejected> {
        if self.buffer.len() >= self.limits.max_buffered {
            return Err(Rejected::BufferFull {
                id: op.id(),
                capacity: self.limits.max_buffered,
            });
        }
        let id = op.id();
        for m in missing {
            self.waiting.entry(*m).or_default().push(id);
        }
        self.buffer.insert(
            id,
            Buffered {
                op,
                missing: missing.iter().copied().collect(),
            },
        );
        Ok(())
    }

    /// Removes `dep` from what buffered ops wait for; returns those now unblocked.
    fn release(&mut self, dep: OpId) -> Vec<SignedOp> {
        let mut out = Vec::new();
        if let Some(waiters) = self.waiting.remove(&dep) {
            for w in waiters {
                let done = match self.buffer.get_mut(&w) {
                    Some(b) => {
                        b.missing.remove(&dep);
                        b.missing.is_empty()
                    }
                    None => false,
                };
                if done && let Some(b) = self.buffer.remove(&w) {
                    out.push(b.op);
                }
            }
        }
        out
    }

    /// Applies ops returned by [`Replica::ingest`] (or ops the caller itself created
    /// and signed), in the given order. Each op's deps must be held or earlier in
    /// `ready`.
    pub fn commit(&mut self, ready: Vec<ReadyOp>) {
        for r in ready {
            self.insert(r.op);
        }
    }

    /// Applies one op that is known valid (created locally, or replayed from a store
    /// that only ever holds validated ops after its signatures were checked).
    pub fn insert(&mut self, op: SignedOp) {
        let id = op.id();
        if self.ops.contains_key(&id) {
            return;
        }
        // Inserted directly while it waited in the buffer: it no longer waits (its
        // entries in `waiting` are skipped by `release`).
        self.buffer.remove(&id);
        // Buffered ops that waited only for this one can now be checked and applied;
        // ops made ready by `ingest` were released there already.
        let freed = self.release(id);
        self.unblocked.extend(freed);
        for d in op.deps() {
            self.heads.remove(d);
        }
        self.heads.insert(id);
        let author = op.author();
        let seq = op.seq();
        let state = self.authors.entry(author).or_default();
        let equivocated = match state.by_seq.entry(seq) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(SeqOps::One(id));
                false
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                o.get_mut().push(id);
                true
            }
        };
        if equivocated && state.excluded_from.is_none_or(|s| seq < s) {
            state.excluded_from = Some(seq);
            let doomed: Vec<OpId> = state
                .by_seq
                .range(seq..)
                .flat_map(|(_, ids)| ids.sorted())
                .collect();
            for d in doomed {
                if let Some(o) = self.ops.get(&d) {
                    self.view.remove(&(o.lamport(), d));
                }
            }
        }
        let excluded = state.excluded_from.is_some_and(|s| seq >= s);
        if !excluded {
            self.view.insert((op.lamport(), id));
        }
        self.ops.insert(id, op);
    }

    /// Buffered ops unblocked by [`Replica::insert`] of a local op since the last call.
    /// They are not applied yet: pass them to [`Replica::ingest`] (and persist the
    /// ready ones) like newly received ops.
    pub fn take_unblocked(&mut self) -> Vec<SignedOp> {
        std::mem::take(&mut self.unblocked)
    }

    /// True if the op is held (applied).
    pub fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    /// An applied op by id.
    pub fn get(&self, id: &OpId) -> Option<&SignedOp> {
        self.ops.get(id)
    }

    /// Number of applied ops (view and evidence).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if no op is applied.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of ops waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Ids of ops that no applied op depends on (the hash frontier), ascending.
    pub fn heads(&self) -> Vec<OpId> {
        self.heads.iter().copied().collect()
    }

    /// Highest applied seq per author.
    pub fn version_vector(&self) -> VersionVector {
        let mut vv = VersionVector::new();
        for (a, s) in &self.authors {
            if let Some((&max, _)) = s.by_seq.last_key_value() {
                vv.set(*a, max);
            }
        }
        vv
    }

    /// Highest applied seq of one author (0 if none).
    pub fn max_seq(&self, author: &AuthorId) -> u64 {
        self.authors
            .get(author)
            .and_then(|s| s.by_seq.last_key_value().map(|(k, _)| *k))
            .unwrap_or(0)
    }

    /// The view: applied ops minus excluded ones, in `(lamport, id)` order.
    pub fn view(&self) -> impl Iterator<Item = &SignedOp> + '_ {
        self.view.iter().filter_map(|(_, id)| self.ops.get(id))
    }

    /// Number of ops in the view.
    pub fn view_len(&self) -> usize {
        self.view.len()
    }

    /// True if the op is in the view (applied and not excluded).
    pub fn in_view(&self, op: &SignedOp) -> bool {
        self.view.contains(&(op.lamport(), op.id()))
    }

    /// The seq from which an author's ops are excluded, if it equivocated.
    pub fn excluded_from(&self, author: &AuthorId) -> Option<u64> {
        self.authors.get(author).and_then(|s| s.excluded_from)
    }

    /// Every equivocation held, sorted.
    pub fn equivocations(&self) -> Vec<Equivocation> {
        let mut out: Vec<Equivocation> = self
            .authors
            .iter()
            .flat_map(|(a, s)| {
                s.by_seq
                    .iter()
                    .filter(|(_, ids)| ids.len() > 1)
                    .map(|(seq, ids)| Equivocation {
                        author: *a,
                        seq: *seq,
                        ops: ids.sorted(),
                    })
            })
            .collect();
        out.sort();
        out
    }

    /// All applied ops of one author with seq above `after`, ascending by seq
    /// (equivocating ops at one seq ascending by id).
    pub fn ops_after(&self, author: &AuthorId, after: u64) -> Vec<&SignedOp> {
        let Some(state) = self.authors.get(author) else {
            return Vec::new();
        };
        state
            .by_seq
            .range((Bound::Excluded(after), Bound::Unbounded))
            .flat_map(|(_, ids)| ids.sorted())
            .filter_map(|id| self.ops.get(&id))
            .collect()
    }

    /// Authors with at least one applied op.
    pub fn authors(&self) -> impl Iterator<Item = &AuthorId> + '_ {
        self.authors.keys()
    }
}
