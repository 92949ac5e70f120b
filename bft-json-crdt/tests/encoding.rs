//! Canonical encoding: round trips, refusal of non-canonical or damaged bytes, limits,
//! and no panic on arbitrary input.

mod common;

use bft_json_crdt::encoding::{self, FIXED_LEN, SIG_LEN, VERSION};
use bft_json_crdt::{DecodeError, Limits, Op, OpId, RawOp, Rejected, SignedOp};
use common::*;
use proptest::prelude::*;

fn sample() -> (Vec<SignedOp>, SignedOp) {
    let a = chain(&key(0), 2);
    let b = chain(&key(1), 1);
    let o = op(&key(0), 3, &[&a[1], &b[0]], b"{\"k\":\"v\"}");
    (vec![a[0].clone(), a[1].clone(), b[0].clone()], o)
}

#[test]
fn sign_bytes_from_bytes_round_trips_every_field() {
    let (_, o) = sample();
    let back = SignedOp::from_bytes(o.bytes(), &Limits::default()).unwrap();
    assert_eq!(back.id(), o.id());
    assert_eq!(back.author(), o.author());
    assert_eq!(back.author(), author(&key(0)));
    assert_eq!(back.seq(), 3);
    assert_eq!(back.lamport(), o.lamport());
    assert_eq!(back.deps(), o.deps());
    assert_eq!(back.deps().len(), 2);
    assert!(back.deps().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(back.payload(), b"{\"k\":\"v\"}");
    assert_eq!(back.signature(), o.signature());
    assert_eq!(back.bytes(), o.bytes());
    assert_eq!(back, o);
    // the id is the hash of the unsigned part
    let unsigned = &o.bytes()[..o.bytes().len() - SIG_LEN];
    assert_eq!(encoding::hash_unsigned(unsigned), o.id());
    assert_eq!(o.bytes()[0], VERSION);
    assert_eq!(o.bytes().len(), FIXED_LEN + 32 * 2 + o.payload().len());
    // and the wire form
    let raw = o.to_raw();
    assert_eq!(raw.id, o.id());
    assert_eq!(raw.decode(&Limits::default()).unwrap(), o);
    assert_eq!(RawOp::from(&o), raw);
}

#[test]
fn empty_payload_and_no_deps_round_trip() {
    let o = op(&key(3), 1, &[], b"");
    assert_eq!(o.bytes().len(), FIXED_LEN);
    let back = SignedOp::from_bytes(o.bytes(), &Limits::default()).unwrap();
    assert_eq!(back, o);
    assert!(back.payload().is_empty());
    assert!(back.deps().is_empty());
}

#[test]
fn sign_sorts_and_dedups_deps_and_sets_author() {
    let (prev, _) = sample();
    let mut deps = vec![prev[2].id(), prev[1].id(), prev[2].id()];
    deps.reverse();
    let o = Op {
        author: bft_json_crdt::AuthorId([0; 32]),
        seq: 3,
        lamport: 3,
        deps,
        payload: vec![],
    }
    .sign(&key(0));
    assert_eq!(o.author(), author(&key(0)));
    let mut want = [prev[1].id(), prev[2].id()];
    want.sort();
    assert_eq!(o.deps(), &want[..]);
}

#[test]
fn wrong_claimed_id_is_bad_id() {
    let (_, o) = sample();
    let mut raw = o.to_raw();
    raw.id.0[7] ^= 1;
    assert_eq!(
        raw.decode(&Limits::default()),
        Err(Rejected::BadId {
            claimed: raw.id,
            actual: o.id()
        })
    );
}

/// Offset of the deps array in an encoding.
const DEPS_AT: usize = 1 + 32 + 8 + 8 + 4;

#[test]
fn unsorted_deps_are_refused() {
    let (_, o) = sample();
    let mut bytes = o.bytes().to_vec();
    let (a, b) = (DEPS_AT, DEPS_AT + 32);
    let first: Vec<u8> = bytes[a..b].to_vec();
    let second: Vec<u8> = bytes[b..b + 32].to_vec();
    bytes[a..b].copy_from_slice(&second);
    bytes[b..b + 32].copy_from_slice(&first);
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::NonCanonicalDeps)
    );
    let raw = RawOp { id: o.id(), bytes };
    assert!(matches!(
        raw.decode(&Limits::default()),
        Err(Rejected::Malformed {
            error: DecodeError::NonCanonicalDeps,
            ..
        })
    ));
}

#[test]
fn duplicated_deps_are_refused() {
    let (_, o) = sample();
    let mut bytes = o.bytes().to_vec();
    let first: Vec<u8> = bytes[DEPS_AT..DEPS_AT + 32].to_vec();
    bytes[DEPS_AT + 32..DEPS_AT + 64].copy_from_slice(&first);
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::NonCanonicalDeps)
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let (_, o) = sample();
    let mut bytes = o.bytes().to_vec();
    bytes.push(0);
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn wrong_version_and_zero_fields_are_refused() {
    let (_, o) = sample();
    let mut bytes = o.bytes().to_vec();
    bytes[0] = 2;
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let mut bytes = o.bytes().to_vec();
    bytes[33..41].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::ZeroField("seq"))
    );
    let mut bytes = o.bytes().to_vec();
    bytes[41..49].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(
        SignedOp::from_bytes(&bytes, &Limits::default()),
        Err(DecodeError::ZeroField("lamport"))
    );
    assert!(matches!(
        SignedOp::from_bytes(&[], &Limits::default()),
        Err(DecodeError::Truncated { at: 0, len: 0, .. })
    ));
}

#[test]
fn over_limit_payload_is_over_limits() {
    let o = op(&key(0), 1, &[], &[7u8; 11]);
    let limits = Limits {
        max_payload: 10,
        ..Limits::default()
    };
    match o.to_raw().decode(&limits) {
        Err(Rejected::OverLimits {
            claimed,
            error:
                DecodeError::TooLarge {
                    what: "payload",
                    limit: 10,
                    actual: 11,
                },
        }) => assert_eq!(claimed, o.id()),
        other => panic!("unexpected {other:?}"),
    }
    // exactly at the limit is fine
    let o = op(&key(0), 1, &[], &[7u8; 10]);
    assert!(o.to_raw().decode(&limits).is_ok());
}

#[test]
fn over_limit_deps_is_over_limits() {
    let (_, o) = sample();
    let limits = Limits {
        max_deps: 1,
        ..Limits::default()
    };
    assert!(matches!(
        o.to_raw().decode(&limits),
        Err(Rejected::OverLimits {
            error: DecodeError::TooLarge {
                what: "deps",
                limit: 1,
                actual: 2
            },
            ..
        })
    ));
}

#[test]
fn over_limit_total_size_is_over_limits() {
    let limits = Limits {
        max_payload: 0,
        max_deps: 0,
        ..Limits::default()
    };
    let o = op(&key(0), 1, &[], b"x");
    assert!(matches!(
        o.to_raw().decode(&limits),
        Err(Rejected::OverLimits {
            error: DecodeError::TooLarge { what: "op", .. },
            ..
        })
    ));
    // a huge claimed dep count in a short input does not allocate or panic
    let mut bytes = o.bytes().to_vec();
    bytes[49..53].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(SignedOp::from_bytes(&bytes, &Limits::default()).is_err());
}

/// Regression: `max_encoded_len` overflowed (a panic in debug builds) with "unlimited"
/// limits.
#[test]
fn unlimited_limits_do_not_overflow() {
    let limits = Limits {
        max_payload: usize::MAX,
        max_deps: usize::MAX,
        max_buffered: usize::MAX,
        ..Limits::default()
    };
    assert_eq!(limits.max_encoded_len(), usize::MAX);
    let (_, o) = sample();
    assert_eq!(SignedOp::from_bytes(o.bytes(), &limits).unwrap(), o);
    // a claimed count far beyond the input is refused, not allocated
    let mut bytes = o.bytes().to_vec();
    bytes[49..53].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(SignedOp::from_bytes(&bytes, &limits).is_err());
    let o = op(&key(0), 1, &[], b"");
    let mut bytes = o.bytes().to_vec();
    bytes[53..57].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        SignedOp::from_bytes(&bytes, &limits),
        Err(DecodeError::Truncated {
            field: "payload",
            ..
        })
    ));
}

fn valid_encodings() -> Vec<SignedOp> {
    let (mut v, o) = sample();
    v.push(o);
    v.push(op(&key(2), 1, &[], b""));
    v
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), id in any::<[u8; 32]>()) {
        let limits = Limits::default();
        let _ = SignedOp::from_bytes(&bytes, &limits);
        let raw = RawOp { id: OpId(id), bytes: bytes.clone() };
        match raw.decode(&limits) {
            Ok(o) => prop_assert_eq!(o.id(), OpId(id)),
            Err(e) => {
                let typed = matches!(
                    e,
                    Rejected::Malformed { .. } | Rejected::OverLimits { .. } | Rejected::BadId { .. }
                );
                prop_assert!(typed);
            }
        }
    }

    #[test]
    fn plausible_headers_never_panic(
        seq in any::<u64>(), lamport in any::<u64>(), n_deps in any::<u32>(), len in any::<u32>(),
        tail in prop::collection::vec(any::<u8>(), 0..200),
        small in any::<bool>(),
    ) {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(author(&key(0)).as_bytes());
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&lamport.to_be_bytes());
        let n_deps = if small { n_deps % 4 } else { n_deps };
        let len = if small { len % 64 } else { len };
        bytes.extend_from_slice(&n_deps.to_be_bytes());
        bytes.extend_from_slice(&tail[..tail.len().min(32 * n_deps as usize)]);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&tail);
        let _ = SignedOp::from_bytes(&bytes, &Limits::default());
        let mut r = bft_json_crdt::Replica::default();
        if let Ok(o) = SignedOp::from_bytes(&bytes, &Limits::default()) {
            let before = snapshot(&r);
            let ds = r.apply(o);
            prop_assert!(ds[0].result.is_err());
            prop_assert_eq!(snapshot(&r), before);
        }
    }

    #[test]
    fn truncations_are_refused(which in 0usize..5, cut in any::<prop::sample::Index>()) {
        let o = &valid_encodings()[which];
        let n = cut.index(o.bytes().len());
        let res = SignedOp::from_bytes(&o.bytes()[..n], &Limits::default());
        prop_assert!(matches!(res, Err(DecodeError::Truncated { .. })), "{:?}", res);
        let raw = RawOp { id: o.id(), bytes: o.bytes()[..n].to_vec() };
        let is_malformed = matches!(raw.decode(&Limits::default()), Err(Rejected::Malformed { .. }));
        prop_assert!(is_malformed);
    }

    #[test]
    fn bit_flips_are_refused_or_change_the_op(which in 0usize..5, bit in any::<prop::sample::Index>()) {
        let o = &valid_encodings()[which];
        let mut bytes = o.bytes().to_vec();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let in_sig = bit / 8 >= bytes.len() - SIG_LEN;
        let raw = RawOp { id: o.id(), bytes: bytes.clone() };
        match raw.decode(&Limits::default()) {
            Ok(d) => {
                // only a flip in the signature keeps the id; the signature then fails
                prop_assert!(in_sig);
                prop_assert_eq!(d.id(), o.id());
                prop_assert_ne!(d.signature(), o.signature());
                let mut r = bft_json_crdt::Replica::default();
                let before = snapshot(&r);
                let e = single_rejection(r.apply(d));
                let is_bad_sig = matches!(e, Rejected::BadSignature { .. });
                prop_assert!(is_bad_sig, "{:?}", e);
                prop_assert_eq!(snapshot(&r), before);
            }
            Err(e) => {
                prop_assert!(!in_sig);
                let typed = matches!(
                    e,
                    Rejected::Malformed { .. } | Rejected::OverLimits { .. } | Rejected::BadId { .. }
                );
                prop_assert!(typed);
            }
        }
        // decoding without a claimed id never panics either
        let _ = SignedOp::from_bytes(&bytes, &Limits::default());
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    (
        1u64..1_000,
        1u64..1_000,
        proptest::collection::vec(any::<[u8; 32]>(), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(seq, lamport, deps, payload)| Op {
            author: bft_json_crdt::AuthorId([0; 32]),
            seq,
            lamport,
            deps: deps.into_iter().map(OpId).collect(),
            payload,
        })
}

proptest! {
    #![proptest_config(config(64))]
    /// The fast path (a draft linked first, signed later, by a `KeyPair`, many at a
    /// time on several cores) makes the very op `Op::sign` makes, and the draft's id
    /// is that op's id.
    #[test]
    fn drafts_and_sign_all_match_sign(ops in proptest::collection::vec(arb_op(), 0..40), k in 0u8..4) {
        let pair = bft_json_crdt::KeyPair::new(key(k));
        let want: Vec<SignedOp> = ops.iter().map(|o| o.clone().sign(&key(k))).collect();
        for (o, w) in ops.iter().zip(&want) {
            let draft = o.clone().draft(&pair);
            prop_assert_eq!(draft.id(), w.id());
            prop_assert_eq!(draft.id(), o.id_for(&author(&key(k))));
            let signed = draft.sign(&pair).expect("drafted for this key");
            prop_assert_eq!(signed.bytes(), w.bytes());
        }
        let all = Op::sign_all(ops.clone(), &pair);
        prop_assert_eq!(all.len(), want.len());
        for (a, w) in all.iter().zip(&want) {
            prop_assert_eq!(a.bytes(), w.bytes());
        }
    }

    /// A draft handed to another key than it was drafted for is refused: its id,
    /// which later drafts may name, covers its author.
    #[test]
    fn a_draft_signed_by_another_key_is_refused(o in arb_op()) {
        let mine = bft_json_crdt::KeyPair::new(key(1));
        let draft = o.draft(&mine);
        let id = draft.id();
        let err = draft.sign(&bft_json_crdt::KeyPair::new(key(2))).expect_err("another key");
        prop_assert_eq!(err.id, id);
        prop_assert_eq!(err.drafted_for, author(&key(1)));
        prop_assert_eq!(err.key, author(&key(2)));
    }
}
