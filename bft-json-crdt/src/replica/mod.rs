//! A replica: validates ops, buffers those whose deps are missing, applies the rest,
//! and exposes a deterministic view.

mod buffer;
mod held;
mod ingest;
mod version_vector;

pub use held::HeldOp;
pub use version_vector::VersionVector;

use held::Meta;

use buffer::Buffer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use crate::ids::{AuthorId, OpId};
use crate::limits::Limits;
use crate::membership::Membership;
use crate::op::SignedOp;
use crate::rejected::Rejected;

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

/// The result of [`Replica::ingest`]: ops ready to persist then [`Replica::apply_ready`],
/// in causal order, and the fate of every input op (and of buffered ops released).
#[derive(Debug, Default)]
pub struct Ingest {
    /// Ready ops, each after all of its deps.
    pub ready: Vec<ReadyOp>,
    /// One delivery per input op, in input order, then one per op released from the
    /// buffer. A ready op's outcome is `Applied` once it is applied.
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
    /// Evidence ops held (ops beyond the first at their seq).
    evidence: usize,
}

/// A replica of the op graph.
///
/// It keeps what checking later ops needs of each applied op — its author, seq,
/// lamport and a digest of its signature ([`HeldOp`]) — not the op itself: the ops
/// live in the caller's store, and one read back is matched against what was
/// verified with [`HeldOp::matches`].
///
/// Validation order, cheapest first (each check uses only the op and its causal past,
/// so every correct replica decides alike): limits and decoding (done by
/// [`crate::RawOp::decode`]) → id → duplicate → membership → author key and
/// signature → missing deps (buffer, bounded in all, per author and in time) → prev
/// link and lamport → evidence quota.
///
/// The view holds every applied op except those of an equivocating author from the
/// first equivocated seq on, ordered by `(lamport, id)`: a linear extension of
/// causality that is the same on every replica holding the same ops.
///
/// No input makes the work of one call superlinear in its size: an equivocation
/// below the current exclusion point only visits the ops between the two points.
pub struct Replica {
    limits: Limits,
    members: Option<Membership>,
    ops: HashMap<OpId, Meta>,
    authors: HashMap<AuthorId, AuthorState>,
    heads: BTreeSet<OpId>,
    buffer: Buffer,
    /// `(author, seq)` held by more than one op.
    equivocated: BTreeSet<(AuthorId, u64)>,
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
            members: None,
            ops: HashMap::new(),
            authors: HashMap::new(),
            heads: BTreeSet::new(),
            buffer: Buffer::default(),
            equivocated: BTreeSet::new(),
            unblocked: Vec::new(),
        }
    }

    /// The same replica, accepting ops only from `members` (see [`Membership`]).
    /// Ops already held are kept.
    pub fn with_members(mut self, members: Membership) -> Self {
        self.members = Some(members);
        self
    }

    /// The membership in force, if any (without one, every valid key may author).
    pub fn members(&self) -> Option<&Membership> {
        self.members.as_ref()
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
        self.apply_ready(ingest.ready);
        ingest.deliveries
    }

    /// Applies ops returned by [`Replica::ingest`] (or ops the caller itself created
    /// and signed), in the given order. Each op's deps must be held or earlier in
    /// `ready`.
    pub fn apply_ready(&mut self, ready: Vec<ReadyOp>) {
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
        // Inserted directly while it waited in the buffer: it no longer waits.
        self.buffer.remove(&id);
        // Buffered ops that waited only for this one can now be checked and applied;
        // ops made ready by `ingest` were released there already.
        let freed = self.buffer.release(id);
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
        if equivocated {
            state.evidence += 1;
            self.equivocated.insert((author, seq));
        }
        if equivocated && state.excluded_from.is_none_or(|s| seq < s) {
            // The view is the held ops below each author's exclusion point: moving
            // the point is all an equivocation changes, whatever its seq.
            state.excluded_from = Some(seq);
        }
        self.ops.insert(id, Meta::of(&op));
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

    /// What is kept of an applied op, by id.
    pub fn get(&self, id: &OpId) -> Option<HeldOp> {
        self.ops.get(id).map(|m| m.held(*id))
    }

    /// Number of applied ops (view and evidence).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if no op is applied.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The op at an author's highest applied seq (the lowest id if it equivocated
    /// there).
    pub fn tip(&self, author: &AuthorId) -> Option<HeldOp> {
        let (_, ids) = self.authors.get(author)?.by_seq.last_key_value()?;
        ids.sorted().first().and_then(|id| self.get(id))
    }

    /// The deps a buffered op still waits for (empty if it is not buffered).
    pub fn missing_deps(&self, id: &OpId) -> Vec<OpId> {
        self.buffer.missing(id)
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

    /// The view: applied ops minus excluded ones, in `(lamport, id)` order. It is
    /// computed (O(n log n) in the ops held): callers reading the view of a large
    /// replica read their store's `(lamport, id)` index and [`Replica::in_view`].
    pub fn view(&self) -> impl Iterator<Item = HeldOp> + '_ {
        let mut view: Vec<HeldOp> = self
            .ops
            .iter()
            .filter(|(_, m)| !self.is_excluded(&m.author, m.seq))
            .map(|(id, m)| m.held(*id))
            .collect();
        view.sort_unstable_by_key(|o| (o.lamport(), o.id()));
        view.into_iter()
    }

    /// Number of ops in the view: per author, the ops held below its exclusion point
    /// (O(authors), plus the seqs held by authors that equivocated).
    pub fn view_len(&self) -> usize {
        self.authors
            .values()
            .map(|s| match s.excluded_from {
                // Without an equivocation every seq holds one op.
                None => s.by_seq.len(),
                // Below the exclusion point no seq holds more than one op.
                Some(from) => s.by_seq.range(..from).count(),
            })
            .sum()
    }

    /// True if the op is in the view (applied and not excluded).
    pub fn in_view(&self, id: &OpId) -> bool {
        self.ops
            .get(id)
            .is_some_and(|m| !self.is_excluded(&m.author, m.seq))
    }

    fn is_excluded(&self, author: &AuthorId, seq: u64) -> bool {
        self.excluded_from(author).is_some_and(|from| seq >= from)
    }

    /// The seq from which an author's ops are excluded, if it equivocated.
    pub fn excluded_from(&self, author: &AuthorId) -> Option<u64> {
        self.authors.get(author).and_then(|s| s.excluded_from)
    }

    /// Every equivocation held, sorted.
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.equivocated
            .iter()
            .filter_map(|&(author, seq)| {
                let ids = self.authors.get(&author)?.by_seq.get(&seq)?;
                Some(Equivocation {
                    author,
                    seq,
                    ops: ids.sorted(),
                })
            })
            .collect()
    }

    /// All applied ops of one author with seq above `after`, ascending by seq
    /// (equivocating ops at one seq ascending by id).
    pub fn ops_after(&self, author: &AuthorId, after: u64) -> Vec<HeldOp> {
        let Some(state) = self.authors.get(author) else {
            return Vec::new();
        };
        state
            .by_seq
            .range((Bound::Excluded(after), Bound::Unbounded))
            .flat_map(|(_, ids)| ids.sorted())
            .filter_map(|id| self.get(&id))
            .collect()
    }

    /// Authors with at least one applied op.
    pub fn authors(&self) -> impl Iterator<Item = &AuthorId> + '_ {
        self.authors.keys()
    }
}
