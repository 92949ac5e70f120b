//! Shared helpers: deterministic keys, signed ops with correct deps and lamport,
//! random causal histories, replica snapshots and proptest configuration.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};

use bft_json_crdt::{
    AuthorId, Delivery, Equivocation, Limits, Op, OpId, RawOp, Rejected, Replica, SignedOp,
    SigningKey, VersionVector,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Proptest config with `default` cases, overridden by `PROPTEST_CASES` if set.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// A deterministic signing key per index.
pub fn key(i: u8) -> SigningKey {
    let mut seed = [0x5a; 32];
    seed[0] = i;
    SigningKey::from_bytes(&seed)
}

/// The author id of a key.
pub fn author(key: &SigningKey) -> AuthorId {
    AuthorId::from(&key.verifying_key())
}

/// 1 + the highest lamport among `deps`.
pub fn lamport_after(deps: &[&SignedOp]) -> u64 {
    1 + deps.iter().map(|d| d.lamport()).max().unwrap_or(0)
}

/// The unsigned draft of a correct op.
pub fn draft(key: &SigningKey, seq: u64, deps: &[&SignedOp], payload: &[u8]) -> Op {
    Op {
        author: author(key),
        seq,
        lamport: lamport_after(deps),
        deps: deps.iter().map(|d| d.id()).collect(),
        payload: payload.to_vec(),
    }
}

/// A correct op: lamport and deps derived from `deps`.
pub fn op(key: &SigningKey, seq: u64, deps: &[&SignedOp], payload: &[u8]) -> SignedOp {
    draft(key, seq, deps, payload).sign(key)
}

/// A single-author chain of `n` ops, seq 1..=n.
pub fn chain(key: &SigningKey, n: usize) -> Vec<SignedOp> {
    let mut out: Vec<SignedOp> = Vec::with_capacity(n);
    for i in 0..n {
        let deps: Vec<&SignedOp> = out.last().into_iter().collect();
        let o = op(key, i as u64 + 1, &deps, format!("op {i}").as_bytes());
        out.push(o);
    }
    out
}

/// Everything observable about a replica, for before/after and cross-replica checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub view: Vec<OpId>,
    pub vv: VersionVector,
    pub heads: Vec<OpId>,
    pub len: usize,
    pub buffered: usize,
    pub equivocations: Vec<Equivocation>,
}

pub fn snapshot(r: &Replica) -> Snapshot {
    Snapshot {
        view: r.view().map(|o| o.id()).collect(),
        vv: r.version_vector(),
        heads: r.heads(),
        len: r.len(),
        buffered: r.buffered(),
        equivocations: r.equivocations(),
    }
}

/// Feeds a wire op to a replica the way a sync layer does: decode with the replica's
/// limits (a decode rejection never reaches the replica), then apply.
pub fn feed_raw(r: &mut Replica, raw: &RawOp) -> Vec<Delivery> {
    match raw.decode(r.limits()) {
        Ok(op) => r.apply(op),
        Err(e) => vec![Delivery {
            id: e.op_id(),
            result: Err(e),
        }],
    }
}

/// Applies every op in order and asserts none is rejected.
pub fn apply_all(r: &mut Replica, ops: &[SignedOp]) {
    for o in ops {
        for d in r.apply(o.clone()) {
            assert!(d.result.is_ok(), "unexpected rejection {d:?}");
        }
    }
}

/// The only rejection in a delivery list (asserting it is the single delivery).
pub fn single_rejection(ds: Vec<Delivery>) -> Rejected {
    assert_eq!(ds.len(), 1, "expected exactly one delivery, got {ds:?}");
    let d = ds.into_iter().next().unwrap();
    match d.result {
        Err(e) => {
            assert_eq!(d.id, e.op_id());
            e
        }
        Ok(o) => panic!("expected a rejection, got {o:?}"),
    }
}

// ---------------------------------------------------------------------------
// Random causal histories

/// One step of a history: `author` makes an op that depends on its previous op
/// (on branch `branch % tips` if it forked) plus the ops picked by `picks` among
/// all ops made so far by other authors.
#[derive(Debug, Clone)]
pub struct Step {
    pub author: usize,
    pub branch: bool,
    pub picks: Vec<prop::sample::Index>,
}

/// A fork: `author` made two different ops at `seq`.
#[derive(Debug, Clone, Copy)]
pub struct Fork {
    pub author: usize,
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct History {
    pub keys: Vec<SigningKey>,
    /// Every op, in creation (hence causal) order.
    pub ops: Vec<SignedOp>,
    /// The fork that actually happened, if any.
    pub fork: Option<Fork>,
}

impl History {
    pub fn authors(&self) -> Vec<AuthorId> {
        self.keys.iter().map(author).collect()
    }

    /// The view every correct replica holding all ops must show: all ops except the
    /// forking author's from the forked seq on, sorted by (lamport, id).
    pub fn expected_view(&self) -> Vec<OpId> {
        let excluded = self.fork.map(|f| (author(&self.keys[f.author]), f.seq));
        let mut v: Vec<(u64, OpId)> = self
            .ops
            .iter()
            .filter(|o| excluded.is_none_or(|(a, s)| !(o.author() == a && o.seq() >= s)))
            .map(|o| (o.lamport(), o.id()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }
}

/// Builds a history from steps. With `fork_at = Some(i)`, the op of step `i` gets a
/// twin (same seq, prev and other deps, different payload): its author equivocates,
/// and from then on that author's steps extend either branch (`Step::branch`).
pub fn build_history(n_authors: usize, steps: &[Step], fork_at: Option<usize>) -> History {
    let keys: Vec<SigningKey> = (0..n_authors).map(|i| key(i as u8)).collect();
    let mut ops: Vec<SignedOp> = Vec::new();
    // per author: tips (1, or 2 after a fork), each (last op index, seq)
    let mut tips: Vec<Vec<Option<usize>>> = vec![vec![None]; n_authors];
    let mut seqs: Vec<Vec<u64>> = vec![vec![0]; n_authors];
    let mut forked = None;
    for (n, step) in steps.iter().enumerate() {
        let a = step.author % n_authors;
        let b = if step.branch { tips[a].len() - 1 } else { 0 };
        let seq = seqs[a][b] + 1;
        let others: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].author() != author(&keys[a]))
            .collect();
        let mut picked: BTreeSet<usize> = BTreeSet::new();
        if !others.is_empty() {
            for p in &step.picks {
                picked.insert(others[p.index(others.len())]);
            }
        }
        let mut deps: Vec<&SignedOp> = picked.iter().map(|&i| &ops[i]).collect();
        if let Some(prev) = tips[a][b] {
            deps.push(&ops[prev]);
        }
        let o = op(&keys[a], seq, &deps, format!("step {n}").as_bytes());
        let twin = (fork_at == Some(n))
            .then(|| op(&keys[a], seq, &deps, format!("twin of step {n}").as_bytes()));
        ops.push(o);
        tips[a][b] = Some(ops.len() - 1);
        seqs[a][b] = seq;
        if let Some(t) = twin {
            ops.push(t);
            tips[a].push(Some(ops.len() - 1));
            seqs[a].push(seq);
            forked = Some(Fork { author: a, seq });
        }
    }
    History {
        keys,
        ops,
        fork: forked,
    }
}

pub fn step_strategy() -> impl Strategy<Value = Step> {
    (
        0usize..4,
        any::<bool>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    )
        .prop_map(|(author, branch, picks)| Step {
            author,
            branch,
            picks,
        })
}

/// 2–4 authors and up to `max_steps` steps.
pub fn history_strategy(max_steps: usize) -> impl Strategy<Value = History> {
    (
        2usize..=4,
        prop::collection::vec(step_strategy(), 1..=max_steps),
    )
        .prop_map(|(n, steps)| build_history(n, &steps, None))
}

/// Like [`history_strategy`], but the op of one random step gets a twin: its author
/// equivocates.
pub fn forked_history_strategy(max_steps: usize) -> impl Strategy<Value = History> {
    (
        2usize..=4,
        any::<prop::sample::Index>(),
        prop::collection::vec(step_strategy(), 1..=max_steps),
    )
        .prop_map(|(n, at, steps)| {
            let at = at.index(steps.len());
            build_history(n, &steps, Some(at))
        })
}

// ---------------------------------------------------------------------------
// A tiny deterministic PRNG for delivery schedules (splitmix64).

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Delivers `ops` to a fresh replica in a random permutation with random duplicates,
/// one by one with `apply` or in random chunks with `ingest` + `apply_ready`.
/// Asserts that nothing is rejected and that every op ends up held.
pub fn deliver(ops: &[SignedOp], seed: u64) -> Replica {
    let mut rng = Rng(seed);
    let mut schedule: Vec<SignedOp> = ops.to_vec();
    for o in ops {
        if rng.below(4) == 0 {
            schedule.push(o.clone());
        }
    }
    rng.shuffle(&mut schedule);
    let mut r = Replica::new(Limits::default());
    let mode = rng.below(3); // 0: apply, 1: ingest chunks, 2: mixed
    let mut i = 0;
    let mut outcomes: HashMap<OpId, usize> = HashMap::new();
    while i < schedule.len() {
        let use_ingest = match mode {
            0 => false,
            1 => true,
            _ => rng.below(2) == 0,
        };
        let deliveries = if use_ingest {
            let n = 1 + rng.below(8);
            let chunk: Vec<SignedOp> = schedule[i..(i + n).min(schedule.len())].to_vec();
            i += chunk.len();
            let ing = r.ingest(chunk);
            r.apply_ready(ing.ready);
            ing.deliveries
        } else {
            i += 1;
            r.apply(schedule[i - 1].clone())
        };
        for d in deliveries {
            match d.result {
                Ok(bft_json_crdt::Outcome::Applied) => *outcomes.entry(d.id).or_default() += 1,
                Ok(_) => {}
                Err(e) => panic!("valid op rejected: {e}"),
            }
        }
    }
    assert_eq!(r.buffered(), 0, "ops left in the buffer");
    assert_eq!(r.len(), ops.len(), "not every op is held");
    for o in ops {
        assert_eq!(
            outcomes.get(&o.id()),
            Some(&1),
            "op not reported Applied exactly once"
        );
    }
    r
}
