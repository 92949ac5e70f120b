//! Buffering of ops whose deps are missing, duplicates, and the two-phase
//! ingest + apply_ready path.

mod common;

use std::collections::HashSet;

use bft_json_crdt::{Delivery, Limits, OpId, Outcome, Rejected, Replica, SignedOp};
use common::*;
use proptest::prelude::*;

/// A small DAG in causal order: A1 A2 A3, B1 (saw A1), B2 (saw A3), C1 (saw B2).
fn dag() -> Vec<SignedOp> {
    let a = chain(&key(0), 3);
    let b1 = op(&key(1), 1, &[&a[0]], b"b1");
    let b2 = op(&key(1), 2, &[&b1, &a[2]], b"b2");
    let c1 = op(&key(2), 1, &[&b2], b"c1");
    vec![a[0].clone(), a[1].clone(), a[2].clone(), b1, b2, c1]
}

fn applied_ids(ds: &[Delivery]) -> Vec<OpId> {
    ds.iter()
        .filter(|d| d.result == Ok(Outcome::Applied))
        .map(|d| d.id)
        .collect()
}

#[test]
fn reverse_causal_order_is_buffered_then_released() {
    let ops = dag();
    let mut r = Replica::default();
    for (n, o) in ops.iter().rev().take(ops.len() - 1).enumerate() {
        let ds = r.apply(o.clone());
        assert_eq!(ds.len(), 1);
        match &ds[0].result {
            Ok(Outcome::Buffered { missing }) => {
                assert!(!missing.is_empty());
                assert!(missing.iter().all(|m| o.deps().contains(m)));
                assert!(missing.iter().all(|m| !r.contains(m)));
            }
            other => panic!("expected Buffered, got {other:?}"),
        }
        assert_eq!(r.buffered(), n + 1);
        assert_eq!(r.len(), 0);
        assert!(r.heads().is_empty());
    }
    // the root releases everything, each reported Applied exactly once
    let ds = r.apply(ops[0].clone());
    assert_eq!(ds[0].id, ops[0].id());
    assert!(
        ds.iter().all(|d| d.result == Ok(Outcome::Applied)),
        "{ds:?}"
    );
    let got: HashSet<OpId> = applied_ids(&ds).into_iter().collect();
    assert_eq!(got.len(), ds.len());
    assert_eq!(got, ops.iter().map(|o| o.id()).collect());
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.len(), ops.len());
    // released ops come after their deps
    let pos = |id: &OpId| ds.iter().position(|d| d.id == *id).unwrap();
    for o in &ops {
        for d in o.deps() {
            assert!(pos(d) < pos(&o.id()));
        }
    }
    // same state as causal delivery
    let mut causal = Replica::default();
    apply_all(&mut causal, &ops);
    assert_eq!(snapshot(&r), snapshot(&causal));
    assert_eq!(r.heads(), vec![ops[5].id()]);
}

#[test]
fn duplicates_held_buffered_and_in_batch() {
    let ops = dag();
    let mut r = Replica::default();
    apply_all(&mut r, &ops[..2]);
    // held
    let before = snapshot(&r);
    assert_eq!(
        r.apply(ops[0].clone()),
        vec![Delivery {
            id: ops[0].id(),
            result: Ok(Outcome::Duplicate)
        }]
    );
    assert_eq!(snapshot(&r), before);
    // buffered (B2 waits for A3)
    assert!(matches!(
        r.apply(ops[4].clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    let before = snapshot(&r);
    assert_eq!(r.apply(ops[4].clone())[0].result, Ok(Outcome::Duplicate));
    assert_eq!(snapshot(&r), before);
    // twice in one batch
    let ing = r.ingest(vec![ops[2].clone(), ops[2].clone(), ops[1].clone()]);
    assert_eq!(ing.deliveries[0].result, Ok(Outcome::Applied));
    assert_eq!(ing.deliveries[1].result, Ok(Outcome::Duplicate));
    assert_eq!(ing.deliveries[2].result, Ok(Outcome::Duplicate));
    // A3 released B1? no: B2 also needs B1, still missing
    assert_eq!(ing.ready.len(), 1);
    r.apply_ready(ing.ready);
    assert_eq!(r.buffered(), 1);
    let ds = r.apply(ops[3].clone());
    assert_eq!(applied_ids(&ds), vec![ops[3].id(), ops[4].id()]);
}

#[test]
fn ingest_reports_released_ops_and_ready_is_causal() {
    let ops = dag();
    let mut r = Replica::default();
    let ing = r.ingest(ops[1..].to_vec());
    // nothing is ready without A1; all of them wait
    assert!(ing.ready.is_empty());
    assert_eq!(r.buffered(), ops.len() - 1);
    let ing = r.ingest(vec![ops[0].clone()]);
    assert_eq!(ing.deliveries.len(), ops.len());
    assert_eq!(ing.ready.len(), ops.len());
    let mut seen: HashSet<OpId> = HashSet::new();
    for ro in &ing.ready {
        assert!(!ro.evidence);
        assert!(ro.op.deps().iter().all(|d| seen.contains(d)));
        seen.insert(ro.op.id());
    }
    // not applied until apply_ready
    assert_eq!(r.len(), 0);
    r.apply_ready(ing.ready);
    assert_eq!(r.len(), ops.len());
    assert_eq!(r.buffered(), 0);
}

/// Regression: a batch in reverse causal order went through the buffer and could hit
/// `BufferFull` although every dep was in the batch; ops are now resolved in
/// `(lamport, id)` order.
#[test]
fn a_reversed_batch_needs_no_buffer() {
    let ops = dag();
    let mut r = Replica::new(Limits {
        max_buffered: 0,
        ..Limits::default()
    });
    let reversed: Vec<SignedOp> = ops.iter().rev().cloned().collect();
    let ing = r.ingest(reversed.clone());
    assert_eq!(ing.deliveries.len(), ops.len());
    for (d, o) in ing.deliveries.iter().zip(&reversed) {
        assert_eq!(d.id, o.id(), "deliveries are in input order");
        assert_eq!(d.result, Ok(Outcome::Applied));
    }
    r.apply_ready(ing.ready);
    let mut causal = Replica::default();
    apply_all(&mut causal, &ops);
    assert_eq!(snapshot(&r), snapshot(&causal));
}

/// Regression: a copy with a bad signature earlier in a batch made the good copy of
/// the same op a "Duplicate", so the op was dropped while reported as held.
#[test]
fn a_bad_copy_does_not_hide_a_good_one_in_a_batch() {
    let ops = dag();
    let mut r = Replica::default();
    let mut sig = *ops[0].signature();
    sig[3] ^= 0x10;
    let bad = draft(&key(0), 1, &[], b"op 0").with_signature(sig);
    assert_eq!(bad.id(), ops[0].id());
    let ing = r.ingest(vec![bad.clone(), ops[0].clone(), ops[0].clone(), bad]);
    assert!(matches!(
        ing.deliveries[0].result,
        Err(Rejected::BadSignature { .. })
    ));
    assert_eq!(ing.deliveries[1].result, Ok(Outcome::Applied));
    assert_eq!(ing.deliveries[2].result, Ok(Outcome::Duplicate));
    // an exact copy of a refused op is refused alike
    assert_eq!(ing.deliveries[3].result, ing.deliveries[0].result);
    r.apply_ready(ing.ready);
    assert!(r.contains(&ops[0].id()));
    // and a bad copy of a held op is a duplicate: nothing changes
    assert_eq!(r.len(), 1);
}

/// Regression: `insert` of an op that waited in the buffer left it there (counted in
/// `buffered()` for ever and released again later).
#[test]
fn insert_of_a_buffered_op_removes_it_from_the_buffer() {
    let ops = dag();
    let mut r = Replica::default();
    assert!(matches!(
        r.apply(ops[1].clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    assert_eq!(r.buffered(), 1);
    r.insert(ops[0].clone());
    r.insert(ops[1].clone());
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.len(), 2);
    // a later op does not re-release it
    let ds = r.apply(ops[2].clone());
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].result, Ok(Outcome::Applied));
    assert_eq!(r.heads(), vec![ops[2].id()]);
}

/// A buffered op whose dep turns out invalid stays buffered (it can never be
/// released), and a rejected released op is reported.
#[test]
fn released_op_with_bad_links_is_reported() {
    let a = chain(&key(0), 1);
    let mut d = draft(&key(0), 2, &[&a[0]], b"bad lamport");
    d.lamport = 7;
    let bad = d.sign(&key(0));
    let mut r = Replica::default();
    assert!(matches!(
        r.apply(bad.clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    let ds = r.apply(a[0].clone());
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0].result, Ok(Outcome::Applied));
    assert_eq!(ds[1].id, bad.id());
    assert!(matches!(ds[1].result, Err(Rejected::WrongLamport { .. })));
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.len(), 1);
}

#[test]
fn ops_after_and_max_seq() {
    let ops = dag();
    let mut r = Replica::default();
    apply_all(&mut r, &ops);
    let a = author(&key(0));
    assert_eq!(r.max_seq(&a), 3);
    let ids: Vec<OpId> = r.ops_after(&a, 1).iter().map(|o| o.id()).collect();
    assert_eq!(ids, vec![ops[1].id(), ops[2].id()]);
    assert_eq!(r.ops_after(&a, 0).len(), 3);
    assert!(r.ops_after(&a, 3).is_empty());
    // Regression: `after = u64::MAX` overflowed.
    assert!(r.ops_after(&a, u64::MAX).is_empty());
    assert!(r.ops_after(&author(&key(42)), 0).is_empty());
}

proptest! {
    #![proptest_config(config(64))]

    /// ingest + apply_ready in random chunks gives the same state as apply one by one,
    /// for any delivery order.
    #[test]
    fn ingest_apply_ready_equals_apply(h in history_strategy(16), seed in any::<u64>(), chunk in 1usize..6) {
        let mut rng = Rng(seed);
        let mut order = h.ops.clone();
        rng.shuffle(&mut order);
        let mut one = Replica::default();
        for o in &order {
            for d in one.apply(o.clone()) {
                prop_assert!(d.result.is_ok());
            }
        }
        let mut two = Replica::default();
        for c in order.chunks(chunk) {
            let ing = two.ingest(c.to_vec());
            prop_assert!(ing.deliveries.iter().all(|d| d.result.is_ok()));
            two.apply_ready(ing.ready);
        }
        prop_assert_eq!(snapshot(&one), snapshot(&two));
        prop_assert_eq!(one.len(), h.ops.len());
        prop_assert_eq!(one.buffered(), 0);
    }
}

/// A buffered op whose missing dep is applied with `insert` (a local op) is handed
/// back by `take_unblocked`, and can then be ingested normally.
#[test]
fn insert_of_a_local_op_unblocks_buffered_ops() {
    use bft_json_crdt::{Op, Outcome, Replica, SigningKey};
    let local = SigningKey::from_bytes(&[31; 32]);
    let peer = SigningKey::from_bytes(&[32; 32]);
    let a = Op {
        author: Default::default(),
        seq: 1,
        lamport: 1,
        deps: vec![],
        payload: b"a".to_vec(),
    }
    .sign(&local);
    let b = Op {
        author: Default::default(),
        seq: 1,
        lamport: 2,
        deps: vec![a.id()],
        payload: b"b".to_vec(),
    }
    .sign(&peer);
    let mut r = Replica::default();
    let d = r.apply(b.clone());
    assert!(matches!(d[0].result, Ok(Outcome::Buffered { .. })), "{d:?}");
    r.insert(a.clone());
    let freed = r.take_unblocked();
    assert_eq!(freed, vec![b.clone()]);
    assert_eq!(r.buffered(), 0);
    let ingest = r.ingest(freed);
    assert_eq!(ingest.ready.len(), 1);
    r.apply_ready(ingest.ready);
    assert!(r.contains(&b.id()));
    assert!(r.take_unblocked().is_empty());
}
