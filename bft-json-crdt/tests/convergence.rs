//! Convergence: replicas that receive the same ops in any order, with duplicates, one
//! by one or in batches, end in the same state — also when an author equivocates.

mod common;

use bft_json_crdt::{AuthorId, Replica};
use common::*;
use proptest::prelude::*;

const REPLICAS: u64 = 3;

fn replicas(h: &History, seed: u64) -> Vec<Replica> {
    (0..REPLICAS)
        .map(|i| deliver(&h.ops, seed.wrapping_add(i.wrapping_mul(0x1000_0001))))
        .collect()
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn honest_histories_converge(h in history_strategy(24), seed in any::<u64>()) {
        let rs = replicas(&h, seed);
        let first = snapshot(&rs[0]);
        for r in &rs[1..] {
            prop_assert_eq!(&snapshot(r), &first);
        }
        prop_assert_eq!(&first.view, &h.expected_view());
        prop_assert!(first.equivocations.is_empty());
        prop_assert_eq!(first.view.len(), h.ops.len());
        // the version vector counts each author's ops
        for a in h.authors() {
            let n = h.ops.iter().filter(|o| o.author() == a).count() as u64;
            prop_assert_eq!(first.vv.get(&a), n);
        }
        // heads: exactly the ops nobody depends on
        let mut heads: Vec<_> = h
            .ops
            .iter()
            .filter(|o| !h.ops.iter().any(|p| p.deps().contains(&o.id())))
            .map(|o| o.id())
            .collect();
        heads.sort();
        prop_assert_eq!(&first.heads, &heads);
    }

    #[test]
    fn equivocating_histories_converge(h in forked_history_strategy(24), seed in any::<u64>()) {
        let fork = h.fork.expect("forked history");
        let equivocator: AuthorId = author(&h.keys[fork.author]);
        let rs = replicas(&h, seed);
        let first = snapshot(&rs[0]);
        for r in &rs[1..] {
            prop_assert_eq!(&snapshot(r), &first);
            prop_assert_eq!(r.excluded_from(&equivocator), Some(fork.seq));
        }
        // the equivocator's ops from the forked seq on are out of the view; every
        // other op (other authors' included, even those built on either branch) is in
        prop_assert_eq!(&first.view, &h.expected_view());
        for o in &h.ops {
            let excluded = o.author() == equivocator && o.seq() >= fork.seq;
            prop_assert_eq!(rs[0].in_view(&o.id()), !excluded);
            prop_assert!(rs[0].contains(&o.id()), "evidence is kept");
        }
        // the fork is reported (and maybe more equivocations above it, if both
        // branches went on), identically everywhere
        let eq = &first.equivocations;
        prop_assert!(!eq.is_empty());
        prop_assert_eq!(eq[0].author, equivocator);
        prop_assert_eq!(eq[0].seq, fork.seq);
        prop_assert_eq!(eq[0].ops.len(), 2);
        prop_assert!(eq.iter().all(|e| e.author == equivocator && e.seq >= fork.seq));
        prop_assert!(eq.iter().all(|e| e.ops.windows(2).all(|w| w[0] < w[1])));
        // the version vector cannot tell the branches apart; the heads can
        prop_assert_eq!(first.vv.get(&equivocator), h.ops.iter().filter(|o| o.author() == equivocator).map(|o| o.seq()).max().unwrap());
    }
}

/// The fork seen in both arrival orders, and descendants built on each branch by the
/// equivocator and by an honest author.
#[test]
fn equivocation_is_order_independent() {
    let (e, h) = (key(0), key(1));
    let e1 = op(&e, 1, &[], b"e1");
    let x2 = op(&e, 2, &[&e1], b"x2");
    let y2 = op(&e, 2, &[&e1], b"y2");
    let x3 = op(&e, 3, &[&x2], b"x3");
    let h1 = op(&h, 1, &[&y2], b"h1 saw y2");
    let h2 = op(&h, 2, &[&h1, &x3], b"h2 saw x3");
    let all = [
        e1.clone(),
        x2.clone(),
        y2.clone(),
        x3.clone(),
        h1.clone(),
        h2.clone(),
    ];
    let orders: [&[usize]; 4] = [
        &[0, 1, 2, 3, 4, 5],
        &[0, 2, 4, 1, 3, 5],
        &[5, 4, 3, 2, 1, 0],
        &[0, 1, 3, 5, 4, 2],
    ];
    let mut snaps = Vec::new();
    for order in orders {
        let mut r = Replica::default();
        let mut evidence = 0;
        for &i in order {
            let ing = r.ingest(vec![all[i].clone()]);
            assert!(ing.deliveries.iter().all(|d| d.result.is_ok()));
            evidence += ing.ready.iter().filter(|ro| ro.evidence).count();
            r.apply_ready(ing.ready);
        }
        assert_eq!(evidence, 1, "exactly one of x2, y2 is marked evidence");
        assert_eq!(r.excluded_from(&author(&e)), Some(2));
        let view: Vec<_> = r.view().map(|o| o.id()).collect();
        assert_eq!(view, vec![e1.id(), h1.id(), h2.id()]);
        snaps.push(snapshot(&r));
    }
    assert!(snaps.windows(2).all(|w| w[0] == w[1]));
    let s = &snaps[0];
    assert_eq!(s.equivocations.len(), 1);
    let mut both = vec![x2.id(), y2.id()];
    both.sort();
    assert_eq!(s.equivocations[0].ops, both);
    assert_eq!(s.heads, vec![h2.id()]);
    assert_eq!(s.len, 6);
}

/// A second, lower equivocation moves the exclusion down, whatever came first.
#[test]
fn lower_equivocation_wins() {
    let e = key(0);
    let e1 = op(&e, 1, &[], b"e1");
    let e1b = op(&e, 1, &[], b"e1 twin");
    let e2 = op(&e, 2, &[&e1], b"e2");
    let e3 = op(&e, 3, &[&e2], b"e3");
    let e3b = op(&e, 3, &[&e2], b"e3 twin");
    let mut r1 = Replica::default();
    apply_all(&mut r1, &[e1.clone(), e2.clone(), e3.clone(), e3b.clone()]);
    assert_eq!(r1.excluded_from(&author(&e)), Some(3));
    assert_eq!(r1.view_len(), 2);
    apply_all(&mut r1, std::slice::from_ref(&e1b));
    assert_eq!(r1.excluded_from(&author(&e)), Some(1));
    assert_eq!(r1.view_len(), 0);
    let mut r2 = Replica::default();
    apply_all(&mut r2, &[e1b, e1, e2, e3b, e3]);
    assert_eq!(snapshot(&r1), snapshot(&r2));
    assert_eq!(r2.equivocations().len(), 2);
}
