//! Every rejection reason, fed to a replica: the exact reason, and nothing changed.

mod common;

use bft_json_crdt::{
    AuthorId, DecodeError, Limits, Op, RawOp, Rejected, Replica, SignedOp, VerifyingKey,
};
use common::*;

/// A replica holding a little history: A's chain of 2 and B's op 1 (which saw A's 1).
fn populated(limits: Limits) -> (Replica, Vec<SignedOp>) {
    let a = chain(&key(0), 2);
    let b1 = op(&key(1), 1, &[&a[0]], b"b1");
    let mut r = Replica::new(limits);
    let ops = vec![a[0].clone(), a[1].clone(), b1];
    apply_all(&mut r, &ops);
    // and one op waiting in the buffer, so buffer accounting is covered too
    let orphan_parent = op(&key(2), 1, &[], b"never delivered");
    let orphan = op(&key(2), 2, &[&orphan_parent], b"orphan");
    assert!(matches!(
        r.apply(orphan)[0].result,
        Ok(bft_json_crdt::Outcome::Buffered { .. })
    ));
    assert_eq!(r.buffered(), 1);
    (r, ops)
}

/// Feeds `raw` and returns the rejection, asserting the replica is unchanged.
fn reject_raw(r: &mut Replica, raw: &RawOp) -> Rejected {
    let before = snapshot(r);
    let e = single_rejection(feed_raw(r, raw));
    assert_eq!(snapshot(r), before, "replica changed by a rejected op");
    e
}

fn reject(r: &mut Replica, op: &SignedOp) -> Rejected {
    let e = reject_raw(r, &op.to_raw());
    // the batch path refuses it alike, and changes nothing either
    let before = snapshot(r);
    let ing = r.ingest(vec![op.clone()]);
    assert!(ing.ready.is_empty());
    assert_eq!(ing.deliveries.len(), 1);
    assert_eq!(ing.deliveries[0].result, Err(e.clone()));
    r.apply_ready(ing.ready);
    assert_eq!(snapshot(r), before);
    e
}

#[test]
fn malformed_truncated_bytes() {
    let (mut r, ops) = populated(Limits::default());
    let good = op(&key(0), 3, &[&ops[1], &ops[2]], b"x");
    let raw = RawOp {
        id: good.id(),
        bytes: good.bytes()[..good.bytes().len() - 1].to_vec(),
    };
    match reject_raw(&mut r, &raw) {
        Rejected::Malformed {
            claimed,
            error: DecodeError::Truncated {
                field: "signature", ..
            },
        } => assert_eq!(claimed, good.id()),
        e => panic!("unexpected {e:?}"),
    }
    // and the good op still applies afterwards
    apply_all(&mut r, &[good]);
}

#[test]
fn over_limits() {
    let limits = Limits {
        max_payload: 8,
        ..Limits::default()
    };
    let (mut r, ops) = populated(limits);
    let big = op(&key(0), 3, &[&ops[1]], b"way too large");
    let e = reject(&mut r, &big);
    assert_eq!(e.reason(), "over_limits");
    assert_eq!(e.op_id(), big.id());
    assert!(matches!(
        e,
        Rejected::OverLimits {
            error: DecodeError::TooLarge {
                what: "payload",
                ..
            },
            ..
        }
    ));
}

/// Regression: a `SignedOp` built locally (not decoded) bypassed the replica's limits.
#[test]
fn over_limits_on_a_locally_built_op() {
    let limits = Limits {
        max_payload: 8,
        max_deps: 1,
        ..Limits::default()
    };
    let (mut r, ops) = populated(limits);
    let before = snapshot(&r);
    let big = op(&key(0), 3, &[&ops[1]], b"way too large");
    let e = single_rejection(r.apply(big));
    assert!(matches!(
        e,
        Rejected::OverLimits {
            error: DecodeError::TooLarge {
                what: "payload",
                limit: 8,
                actual: 13
            },
            ..
        }
    ));
    let many = op(&key(0), 3, &[&ops[1], &ops[2]], b"");
    let e = single_rejection(r.apply(many));
    assert!(matches!(
        e,
        Rejected::OverLimits {
            error: DecodeError::TooLarge {
                what: "deps",
                limit: 1,
                actual: 2
            },
            ..
        }
    ));
    assert_eq!(snapshot(&r), before);
}

/// Regression: an op with seq 0 built with `Op::sign` made `apply` panic (underflow in
/// the prev-link check); it is now refused as malformed.
#[test]
fn zero_seq_or_lamport_on_a_locally_built_op() {
    let (mut r, ops) = populated(Limits::default());
    for (seq, lamport, field) in [(0, 1, "seq"), (0, 3, "seq"), (1, 0, "lamport")] {
        let deps = if lamport == 3 {
            vec![ops[1].id()]
        } else {
            vec![]
        };
        let bad = Op {
            author: author(&key(0)),
            seq,
            lamport,
            deps,
            payload: vec![],
        }
        .sign(&key(0));
        let before = snapshot(&r);
        let e = single_rejection(r.apply(bad.clone()));
        assert_eq!(
            e,
            Rejected::Malformed {
                claimed: bad.id(),
                error: DecodeError::ZeroField(field)
            }
        );
        assert_eq!(snapshot(&r), before);
        // and the bytes do not decode either
        assert!(SignedOp::from_bytes(bad.bytes(), &Limits::default()).is_err());
    }
}

#[test]
fn bad_id() {
    let (mut r, ops) = populated(Limits::default());
    let good = op(&key(0), 3, &[&ops[1]], b"x");
    let mut raw = good.to_raw();
    raw.id = ops[0].id(); // claims to be another, held, op
    assert_eq!(
        reject_raw(&mut r, &raw),
        Rejected::BadId {
            claimed: ops[0].id(),
            actual: good.id()
        }
    );
}

fn forged(author_bytes: [u8; 32], deps: &[&SignedOp]) -> SignedOp {
    let mut d = draft(&key(9), 1, deps, b"forged");
    d.author = AuthorId(author_bytes);
    // with the identity point as key, (R = identity, s = 0) "verifies" cofactorless
    let mut sig = [0u8; 64];
    sig[0] = 1;
    d.with_signature(sig)
}

#[test]
fn forged_author_small_order_points() {
    let (mut r, ops) = populated(Limits::default());
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // (0, -1), of order 2: y = p - 1
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f;
    for bytes in [identity, order2] {
        let f = forged(bytes, &[&ops[2]]);
        // the id is recomputed over the forged author
        assert_eq!(f.to_raw().decode(&Limits::default()).unwrap().id(), f.id());
        assert_eq!(
            reject(&mut r, &f),
            Rejected::ForgedAuthor {
                id: f.id(),
                author: AuthorId(bytes)
            }
        );
    }
}

#[test]
fn forged_author_not_a_curve_point() {
    let (mut r, _) = populated(Limits::default());
    let bytes = (2u8..=255)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .expect("some y is not on the curve");
    let f = forged(bytes, &[]);
    assert_eq!(
        reject(&mut r, &f),
        Rejected::ForgedAuthor {
            id: f.id(),
            author: AuthorId(bytes)
        }
    );
}

#[test]
fn bad_signature_of_another_message() {
    let (mut r, ops) = populated(Limits::default());
    let good = op(&key(0), 3, &[&ops[1]], b"x");
    // A's genuine signature, but over another op's id
    let bad = draft(&key(0), 3, &[&ops[1]], b"x").with_signature(*ops[1].signature());
    assert_eq!(bad.id(), good.id());
    assert_eq!(
        reject(&mut r, &bad),
        Rejected::BadSignature {
            id: good.id(),
            author: author(&key(0))
        }
    );
    // and someone else's signature over the right id
    use ed25519_dalek::Signer;
    let sig = key(1).sign(good.id().as_bytes()).to_bytes();
    let bad = draft(&key(0), 3, &[&ops[1]], b"x").with_signature(sig);
    assert_eq!(reject(&mut r, &bad).reason(), "bad_signature");
    apply_all(&mut r, &[good]);
}

#[test]
fn bad_signature_flipped_bit() {
    let (mut r, ops) = populated(Limits::default());
    let good = op(&key(1), 2, &[&ops[2], &ops[1]], b"y");
    for bit in [0usize, 100, 255, 256, 300, 511] {
        let mut sig = *good.signature();
        sig[bit / 8] ^= 1 << (bit % 8);
        let bad = draft(&key(1), 2, &[&ops[2], &ops[1]], b"y").with_signature(sig);
        assert_eq!(bad.id(), good.id());
        assert_eq!(
            reject(&mut r, &bad),
            Rejected::BadSignature {
                id: good.id(),
                author: author(&key(1))
            }
        );
    }
    apply_all(&mut r, &[good]);
}

fn assert_bad_prev_link(r: &mut Replica, o: &SignedOp) {
    match reject(r, o) {
        Rejected::BadPrevLink {
            id, author: a, seq, ..
        } => {
            assert_eq!(id, o.id());
            assert_eq!(a, o.author());
            assert_eq!(seq, o.seq());
        }
        e => panic!("expected BadPrevLink, got {e:?}"),
    }
}

#[test]
fn bad_prev_link_seq_1_depending_on_own_op() {
    let (mut r, ops) = populated(Limits::default());
    let o = op(&key(0), 1, &[&ops[0]], b"again");
    assert_bad_prev_link(&mut r, &o);
}

#[test]
fn bad_prev_link_skipping_a_seq() {
    let (mut r, ops) = populated(Limits::default());
    // A holds seq 1 and 2; seq 3 depends on seq 1 only
    let o = op(&key(0), 3, &[&ops[0]], b"skip");
    assert_bad_prev_link(&mut r, &o);
    // seq 3 depending on both of its author's earlier ops
    let o = op(&key(0), 3, &[&ops[0], &ops[1]], b"both");
    assert_bad_prev_link(&mut r, &o);
}

#[test]
fn bad_prev_link_seq_2_without_own_dep() {
    let (mut r, ops) = populated(Limits::default());
    let o = op(&key(1), 2, &[], b"no deps");
    assert_bad_prev_link(&mut r, &o);
    let o = op(&key(1), 2, &[&ops[1]], b"other author only");
    assert_bad_prev_link(&mut r, &o);
}

#[test]
fn wrong_lamport() {
    let (mut r, ops) = populated(Limits::default());
    for lamport in [1, 2, 4, u64::MAX] {
        // expected: 1 + max(lamport(A2) = 2, lamport(B1) = 2) = 3
        let mut d = draft(&key(0), 3, &[&ops[1], &ops[2]], b"l");
        assert_eq!(d.lamport, 3);
        d.lamport = lamport;
        let o = d.sign(&key(0));
        assert_eq!(
            reject(&mut r, &o),
            Rejected::WrongLamport {
                id: o.id(),
                expected: 3,
                actual: lamport
            }
        );
    }
    // seq 1 with no deps must have lamport 1
    let mut d = draft(&key(5), 1, &[], b"l");
    d.lamport = 2;
    let o = d.sign(&key(5));
    assert!(matches!(
        reject(&mut r, &o),
        Rejected::WrongLamport {
            expected: 1,
            actual: 2,
            ..
        }
    ));
}

#[test]
fn buffer_full() {
    let limits = Limits {
        max_buffered: 1,
        ..Limits::default()
    };
    let mut r = Replica::new(limits);
    let c = chain(&key(0), 3);
    // c[1] waits for c[0]
    let ds = r.apply(c[1].clone());
    assert_eq!(
        ds[0].result,
        Ok(bft_json_crdt::Outcome::Buffered {
            missing: vec![c[0].id()]
        })
    );
    // c[2] waits too, but the buffer is full
    let before = snapshot(&r);
    assert_eq!(before.buffered, 1);
    let e = single_rejection(r.apply(c[2].clone()));
    assert_eq!(
        e,
        Rejected::BufferFull {
            id: c[2].id(),
            capacity: 1
        }
    );
    assert_eq!(snapshot(&r), before);
    // the rest still works: c[0] releases c[1], and c[2] can be sent again
    let ds = r.apply(c[0].clone());
    assert_eq!(ds.len(), 2);
    assert!(
        ds.iter()
            .all(|d| d.result == Ok(bft_json_crdt::Outcome::Applied))
    );
    assert_eq!(r.buffered(), 0);
    apply_all(&mut r, &[c[2].clone()]);
    assert_eq!(r.len(), 3);
}

#[test]
fn reasons_are_stable_names() {
    let id = bft_json_crdt::OpId([1; 32]);
    let e = Rejected::BufferFull { id, capacity: 3 };
    assert_eq!(e.reason(), "buffer_full");
    assert_eq!(e.op_id(), id);
    assert!(e.to_string().contains("buffer full"));
}
