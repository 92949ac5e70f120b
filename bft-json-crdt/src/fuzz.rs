//! Fuzz entry points: the bodies of the `cargo fuzz` targets in the repository's
//! `fuzz/` directory, also run as proptest properties by `cargo test`, so that both
//! exercise the same code. Not part of the API: each function panics when the crate
//! breaks a promise on the given input, which is what a fuzzer looks for.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

use crate::encoding;
use crate::ids::{AuthorId, OpId};
use crate::keypair::KeyPair;
use crate::limits::Limits;
use crate::op::{Op, RawOp, SignedOp};
use crate::rejected::{DecodeError, Rejected};
use crate::replica::{HeldOp, Outcome, Replica};

/// Most ops one [`replica_ingest`] input builds (the replicas' signature checks
/// dominate the cost of a run).
pub const MAX_OPS: usize = 24;

/// Number of distinct authors [`replica_ingest`] signs with.
pub const AUTHORS: usize = 3;

/// Decodes `data` as a signed op with the default limits, both as
/// [`SignedOp::from_bytes`] and as a [`RawOp`] claiming an id, and checks what a
/// successful decoding promises: the encoding is canonical (re-encoding the fields
/// gives the same bytes), the id is the hash of the unsigned part, deps are strictly
/// ascending and within the limits, and only the true id is accepted as a claim.
/// Returns whether `data` decoded.
pub fn op_decode(data: &[u8]) -> bool {
    let limits = Limits::default();
    // The first 32 bytes as a claimed id for the rest, as a peer's `RawOp` would be.
    if data.len() >= 32 {
        let mut claimed = [0u8; 32];
        claimed.copy_from_slice(&data[..32]);
        let raw = RawOp {
            id: OpId(claimed),
            bytes: data[32..].to_vec(),
        };
        match raw.decode(&limits) {
            Ok(op) => assert_eq!(
                op.id(),
                raw.id,
                "accepted a claimed id that is not the op's"
            ),
            Err(Rejected::BadId { claimed, actual }) => {
                assert_ne!(claimed, actual);
                assert!(SignedOp::from_bytes(&raw.bytes, &limits).is_ok());
            }
            Err(Rejected::Malformed { error, .. }) => {
                assert!(!matches!(error, DecodeError::TooLarge { .. }), "{error:?}");
            }
            Err(Rejected::OverLimits { error, .. }) => {
                assert!(matches!(error, DecodeError::TooLarge { .. }), "{error:?}");
            }
            Err(other) => panic!("decoding refused with a non-decoding rejection: {other:?}"),
        }
    }
    let op = match SignedOp::from_bytes(data, &limits) {
        Ok(op) => op,
        Err(e) => {
            // Every error renders (Display is what logs and CLIs show).
            let _ = e.to_string();
            return false;
        }
    };
    assert_eq!(op.bytes(), data);
    assert!(op.seq() >= 1 && op.lamport() >= 1);
    assert!(op.deps().len() <= limits.max_deps);
    assert!(op.payload().len() <= limits.max_payload);
    assert!(
        op.deps().windows(2).all(|w| w[0] < w[1]),
        "deps not ascending"
    );
    let mut again = Vec::new();
    encoding::encode_unsigned(
        &mut again,
        &op.author(),
        op.seq(),
        op.lamport(),
        op.deps(),
        op.payload(),
    );
    assert_eq!(encoding::hash_unsigned(&again), op.id());
    again.extend_from_slice(op.signature());
    assert_eq!(again, data, "a second encoding of the same op was accepted");
    let unsigned = Op {
        author: op.author(),
        seq: op.seq(),
        lamport: op.lamport(),
        deps: op.deps().to_vec(),
        payload: op.payload().to_vec(),
    };
    assert_eq!(unsigned.id_for(&op.author()), op.id());
    let raw = op.to_raw();
    assert_eq!(raw.decode(&limits).as_ref(), Ok(&op));
    let mut wrong = raw.clone();
    wrong.id.0[0] ^= 1;
    assert!(matches!(wrong.decode(&limits), Err(Rejected::BadId { .. })));
    true
}

/// The fixed keys [`replica_ingest`] signs with (built once: preparing a key costs
/// more than a whole small run).
fn keys() -> &'static [KeyPair; AUTHORS] {
    static KEYS: OnceLock<[KeyPair; AUTHORS]> = OnceLock::new();
    KEYS.get_or_init(|| {
        std::array::from_fn(|i| {
            let mut seed = [0xf0; 32];
            seed[0] = i as u8;
            KeyPair::new(SigningKey::from_bytes(&seed))
        })
    })
}

/// Reads the fuzz input byte by byte; zeros once it runs out.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn id(&mut self) -> OpId {
        let mut id = [0u8; 32];
        for b in &mut id {
            *b = self.u8();
        }
        OpId(id)
    }
}

/// Signs an op by key `k`.
fn sign(k: usize, seq: u64, lamport: u64, deps: Vec<OpId>, payload: Vec<u8>) -> SignedOp {
    let key = &keys()[k];
    let op = Op {
        author: key.author(),
        seq,
        lamport,
        deps,
        payload,
    };
    op.draft(key)
        .sign(key)
        .expect("a draft made for a key signs with it")
}

/// The same op with its byte at `at` changed (a forged signature, payload or field);
/// `None` if the bytes no longer decode.
fn tampered(op: &SignedOp, at: usize, xor: u8) -> Option<SignedOp> {
    let mut bytes = op.bytes().to_vec();
    let i = at % bytes.len();
    bytes[i] ^= xor.max(1);
    SignedOp::from_bytes(&bytes, &Limits::default()).ok()
}

/// Builds up to [`MAX_OPS`] ops from `data`: honest chains of [`AUTHORS`] keys,
/// ops with arbitrary seqs, lamports and deps (held, forged or unknown),
/// equivocations, exact duplicates and tampered copies. Returns the ops in delivery
/// order and where the deliveries are split into batches.
fn build(data: &[u8]) -> (Vec<SignedOp>, Vec<usize>) {
    let mut input = Bytes { data };
    let mut ops: Vec<SignedOp> = Vec::new();
    let mut cuts = Vec::new();
    // Each author's last honest op.
    let mut tips: [Option<SignedOp>; AUTHORS] = [None, None, None];
    while !input.is_empty() && ops.len() < MAX_OPS {
        let cmd = input.u8();
        let k = usize::from(input.u8()) % AUTHORS;
        let pick = |ops: &[SignedOp], b: u8| -> Option<SignedOp> {
            (!ops.is_empty()).then(|| ops[usize::from(b) % ops.len()].clone())
        };
        let op = match cmd % 8 {
            // The author's next honest op, depending on its last one and maybe another.
            0..=2 => {
                let mut deps: Vec<&SignedOp> = tips[k].iter().collect();
                let other = pick(&ops, input.u8());
                if cmd & 0x80 != 0
                    && let Some(o) = &other
                {
                    deps.push(o);
                }
                let seq = tips[k].as_ref().map_or(1, |t| t.seq() + 1);
                let lamport = 1 + deps.iter().map(|d| d.lamport()).max().unwrap_or(0);
                let ids = deps.iter().map(|d| d.id()).collect();
                let op = sign(k, seq, lamport, ids, vec![input.u8()]);
                tips[k] = Some(op.clone());
                op
            }
            // Arbitrary seq, lamport and deps: held ops and unknown ids.
            3 => {
                let seq = u64::from(input.u8() % 8) + 1;
                let lamport = u64::from(input.u8() % 16) + 1;
                let n = usize::from(input.u8() % 4);
                let mut deps = Vec::new();
                for _ in 0..n {
                    let b = input.u8();
                    match pick(&ops, b) {
                        Some(o) if b & 0x80 == 0 => deps.push(o.id()),
                        _ => deps.push(OpId([b; 32])),
                    }
                }
                sign(k, seq, lamport, deps, vec![input.u8()])
            }
            // Equivocation: another op at the seq and deps of an earlier op of `k`.
            4 => match pick(&ops, input.u8()) {
                Some(o) => {
                    let k = keys()
                        .iter()
                        .position(|key| key.author() == o.author())
                        .unwrap_or(k);
                    let mut payload = o.payload().to_vec();
                    payload.push(input.u8());
                    sign(k, o.seq(), o.lamport(), o.deps().to_vec(), payload)
                }
                None => continue,
            },
            // An exact duplicate.
            5 => match pick(&ops, input.u8()) {
                Some(o) => o,
                None => continue,
            },
            // A tampered copy: a forged signature, or altered bytes under the old one.
            6 => match pick(&ops, input.u8()) {
                Some(o) => {
                    let at = usize::from(input.u8()) * 3;
                    match tampered(&o, at, input.u8()) {
                        Some(t) => t,
                        None => continue,
                    }
                }
                None => continue,
            },
            // A dep on an id nobody holds: an orphan that can only wait.
            _ => {
                let ghost = input.id();
                let seq = u64::from(input.u8() % 4) + 1;
                sign(k, seq, 2, vec![ghost], vec![input.u8()])
            }
        };
        if cmd & 0x40 != 0 {
            cuts.push(ops.len());
        }
        ops.push(op);
    }
    (ops, cuts)
}

/// Ingests `ops` into `r` in batches split at `cuts`, checking each [`Replica::ingest`]
/// against what it documents.
fn deliver(r: &mut Replica, ops: &[SignedOp], cuts: &[usize]) {
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(ops.len());
    let mut start = 0;
    for end in bounds {
        if end <= start {
            continue;
        }
        let batch = &ops[start..end];
        start = end;
        let ingest = r.ingest(batch.to_vec());
        assert!(ingest.deliveries.len() >= batch.len());
        for (d, op) in ingest.deliveries.iter().zip(batch) {
            assert_eq!(d.id, op.id(), "deliveries out of input order");
            match &d.result {
                Ok(Outcome::Buffered { missing }) => {
                    assert!(!missing.is_empty());
                    assert!(missing.iter().all(|m| op.deps().contains(m)));
                }
                Err(e) => assert_eq!(e.op_id(), op.id(), "{e:?}"),
                Ok(_) => {}
            }
        }
        // Ready ops come in causal order: each dep held or ready before.
        let mut seen: HashSet<OpId> = HashSet::new();
        for ready in &ingest.ready {
            for d in ready.op.deps() {
                assert!(r.contains(d) || seen.contains(d), "ready before its dep");
            }
            assert!(seen.insert(ready.op.id()), "one op ready twice");
            assert!(!r.contains(&ready.op.id()), "a held op made ready again");
        }
        r.apply_ready(ingest.ready);
        let limits = *r.limits();
        assert!(r.buffered() <= limits.max_buffered, "buffer over its bound");
        check_state(r, ops);
    }
}

/// What a replica's state promises whatever it was fed (`fed`: every op it was
/// given, which holds the deps of those it applied).
fn check_state(r: &Replica, fed: &[SignedOp]) {
    assert!(r.view_len() <= r.len());
    // The view is in (lamport, id) order and holds no excluded op.
    let view: Vec<HeldOp> = r.view().collect();
    assert_eq!(view.len(), r.view_len());
    for w in view.windows(2) {
        assert!((w[0].lamport(), w[0].id()) < (w[1].lamport(), w[1].id()));
    }
    for op in &view {
        if let Some(from) = r.excluded_from(&op.author()) {
            assert!(op.seq() < from, "an excluded op is in the view");
        }
    }
    // An author is excluded from its lowest equivocated seq.
    let mut lowest: BTreeMap<AuthorId, u64> = BTreeMap::new();
    for e in r.equivocations() {
        assert!(e.ops.len() >= 2, "{e:?}");
        assert!(e.ops.windows(2).all(|w| w[0] < w[1]));
        for id in &e.ops {
            let op = r.get(id).expect("equivocating ops are held");
            assert_eq!((op.author(), op.seq()), (e.author, e.seq));
        }
        let low = lowest.entry(e.author).or_insert(e.seq);
        *low = (*low).min(e.seq);
    }
    for author in r.authors() {
        assert_eq!(r.excluded_from(author), lowest.get(author).copied());
    }
    // Heads are held and nothing held depends on them.
    let heads: BTreeSet<OpId> = r.heads().into_iter().collect();
    for h in &heads {
        assert!(r.contains(h));
    }
    for author in r.authors() {
        for held in r.ops_after(author, 0) {
            // What is kept is what was verified: one of the ops fed, signature included.
            let op = fed
                .iter()
                .find(|o| held.matches(o))
                .expect("a held op matches an op it was fed");
            assert!(r.in_view(&held.id()) == view.contains(&held));
            for d in op.deps() {
                assert!(r.contains(d), "an applied op's dep is not held");
                assert!(!heads.contains(d), "a head has a dependant");
            }
        }
    }
}

/// Feeds a [`Replica`] an adversarial op graph built from `data` and checks that it
/// keeps its promises: no panic; deliveries in input order; ready ops in causal
/// order; the buffer within its bounds (checked with small limits too); the view
/// ordered, without the ops of an equivocating author from its lowest equivocated
/// seq on; heads the frontier; and the same ops delivered one by one in reverse
/// order give the same ops held and the same view as delivery in batches.
/// Returns the number of ops applied.
pub fn replica_ingest(data: &[u8]) -> usize {
    let (ops, cuts) = build(data);
    let mut batched = Replica::new(Limits::default());
    deliver(&mut batched, &ops, &cuts);
    // The same op set, another order: the same state (default limits are far above
    // what MAX_OPS ops can fill, so no quota decides differently).
    let mut reversed: Vec<SignedOp> = ops.clone();
    reversed.reverse();
    let mut one_by_one = Replica::new(Limits::default());
    let singles: Vec<usize> = (1..reversed.len()).collect();
    deliver(&mut one_by_one, &reversed, &singles);
    let held = |r: &Replica| -> BTreeSet<OpId> {
        r.authors()
            .flat_map(|a| r.ops_after(a, 0))
            .map(|o| o.id())
            .collect()
    };
    assert_eq!(
        held(&batched),
        held(&one_by_one),
        "held ops depend on order"
    );
    let view = |r: &Replica| -> Vec<OpId> { r.view().map(|o| o.id()).collect() };
    assert_eq!(
        view(&batched),
        view(&one_by_one),
        "the view depends on order"
    );
    assert_eq!(batched.heads(), one_by_one.heads());
    assert_eq!(batched.buffered(), one_by_one.buffered());
    // Small limits: the quotas bound the buffer and the evidence kept.
    let tight = Limits {
        max_buffered: 4,
        max_buffered_per_author: 2,
        max_evidence_per_author: 1,
        ..Limits::default()
    };
    let mut small = Replica::new(tight);
    deliver(&mut small, &ops, &cuts);
    for key in keys() {
        let pending = ops
            .iter()
            .filter(|o| o.author() == key.author() && !small.missing_deps(&o.id()).is_empty())
            .map(|o| o.id())
            .collect::<HashSet<_>>()
            .len();
        assert!(
            pending <= tight.max_buffered_per_author,
            "author over its buffer quota"
        );
    }
    batched.len()
}
