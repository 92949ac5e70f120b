//! What a hostile peer cannot do to a replica: author without membership, fill the
//! buffer for everyone, keep buffered ops for ever, or grow evidence without bound.

mod common;

use std::time::Duration;

use bft_json_crdt::{Limits, Membership, Outcome, Rejected, Replica, SignedOp};
use common::*;

fn limits() -> Limits {
    Limits {
        max_buffered: 100,
        max_buffered_per_author: 10,
        max_evidence_per_author: 4,
        ..Limits::default()
    }
}

/// An op whose only dep is an op nobody has: it can only wait.
fn orphan(k: u8, salt: u64) -> SignedOp {
    let ghost = op(&key(200), 1, &[], &salt.to_be_bytes());
    op(&key(k), 1, &[&ghost], &salt.to_be_bytes())
}

/// Ops by keys outside the membership are refused, with the author named, and
/// change nothing; members' ops still apply.
#[test]
fn non_members_are_refused() {
    let members = Membership::new([author(&key(1)), author(&key(2))]);
    let mut r = Replica::new(Limits::default()).with_members(members);
    let stranger = chain(&key(9), 2);
    let before = snapshot(&r);
    let e = single_rejection(r.apply(stranger[0].clone()));
    assert_eq!(
        e,
        Rejected::NotMember {
            id: stranger[0].id(),
            author: author(&key(9))
        }
    );
    assert_eq!(e.reason(), "not_member");
    assert_eq!(snapshot(&r), before);
    // an orphan of a stranger is refused too, not buffered
    let e = single_rejection(r.apply(orphan(9, 1)));
    assert!(matches!(e, Rejected::NotMember { .. }), "{e:?}");
    assert_eq!(r.buffered(), 0);
    apply_all(&mut r, &chain(&key(1), 3));
    assert_eq!(r.len(), 3);
}

/// One author's orphans fill only that author's share of the buffer: the rest stay
/// free for every other author.
#[test]
fn one_author_cannot_fill_the_buffer() {
    let mut r = Replica::new(limits());
    let flood: Vec<SignedOp> = (0..30).map(|i| orphan(1, i)).collect();
    let ing = r.ingest(flood);
    let buffered = ing
        .deliveries
        .iter()
        .filter(|d| matches!(d.result, Ok(Outcome::Buffered { .. })))
        .count();
    assert_eq!(buffered, 10, "{:?}", ing.deliveries);
    assert!(
        ing.deliveries
            .iter()
            .any(|d| matches!(d.result, Err(Rejected::AuthorBufferFull { quota: 10, .. })))
    );
    assert_eq!(r.buffered(), 10);
    // another author still gets buffer room
    let ds = r.apply(orphan(2, 99));
    assert!(
        matches!(ds[0].result, Ok(Outcome::Buffered { .. })),
        "{ds:?}"
    );
    assert_eq!(r.buffered(), 11);
}

/// An op waiting for an op that was refused for what it is (its id covers the
/// defect) can never apply: it leaves the buffer, and later ops waiting for it are
/// refused at once.
#[test]
fn ops_waiting_for_a_refused_op_are_evicted() {
    let mut r = Replica::new(limits());
    let k = key(3);
    let mut bad = draft(&k, 1, &[], b"bad");
    bad.lamport = 5; // wrong: seq 1 without deps has lamport 1
    let bad = bad.sign(&k);
    let child = op(&k, 2, &[&bad], b"child");
    let grandchild = op(&k, 3, &[&child], b"grandchild");
    assert!(matches!(
        r.apply(child.clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    assert_eq!(r.buffered(), 1);
    let ds = r.apply(bad.clone());
    assert!(
        matches!(ds[0].result, Err(Rejected::WrongLamport { .. })),
        "{ds:?}"
    );
    assert!(
        ds.iter().any(|d| d.id == child.id()
            && d.result
                == Err(Rejected::DependsOnRejected {
                    id: child.id(),
                    dep: bad.id()
                })),
        "{ds:?}"
    );
    assert_eq!(r.buffered(), 0);
    // a descendant arriving later is refused instead of buffered
    let e = single_rejection(r.apply(grandchild.clone()));
    assert!(matches!(e, Rejected::DependsOnRejected { .. }), "{e:?}");
    assert_eq!(r.buffered(), 0);
}

/// Buffered ops do not stay for ever: past `max_buffer_age` they are dropped at the
/// next ingest (a peer sends them again).
#[test]
fn stale_buffered_ops_expire() {
    let mut r = Replica::new(Limits {
        max_buffer_age: Duration::ZERO,
        ..limits()
    });
    let o = orphan(1, 7);
    assert!(matches!(
        r.apply(o.clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    assert_eq!(r.buffered(), 1);
    std::thread::sleep(Duration::from_millis(2));
    let ds = r.apply(chain(&key(2), 1).remove(0));
    assert!(
        ds.iter()
            .any(|d| d.id == o.id() && matches!(d.result, Err(Rejected::Expired { .. }))),
        "{ds:?}"
    );
    assert_eq!(r.buffered(), 0);
}

/// Forks of one author at one seq: the evidence kept is bounded per author, except
/// an op that moves the author's exclusion point lower (so every replica excludes
/// from the same seq) or one another sled's op depends on.
#[test]
fn evidence_is_bounded_per_author() {
    let mut r = Replica::new(limits());
    let k = key(4);
    let base = chain(&k, 3);
    apply_all(&mut r, &base);
    // 10 more ops at seq 3 (forks of base[1])
    let forks: Vec<SignedOp> = (0..10)
        .map(|i| op(&k, 3, &[&base[1]], format!("fork {i}").as_bytes()))
        .collect();
    let ing = r.ingest(forks.clone());
    let ok = ing.deliveries.iter().filter(|d| d.result.is_ok()).count();
    r.apply_ready(ing.ready);
    assert_eq!(ok, 4, "{:?}", ing.deliveries);
    assert!(
        ing.deliveries
            .iter()
            .any(|d| matches!(d.result, Err(Rejected::EvidenceQuota { limit: 4, .. })))
    );
    assert_eq!(r.excluded_from(&author(&k)), Some(3));
    // a fork at a lower seq is kept although the quota is used: it moves the exclusion
    let low = op(&k, 2, &[&base[0]], b"low fork");
    apply_all(&mut r, &[low]);
    assert_eq!(r.excluded_from(&author(&k)), Some(2));
    // a fork another sled's op depends on is kept too, whatever the quota
    let needed = op(&k, 3, &[&base[1]], b"needed fork");
    let other = op(&key(5), 1, &[&needed], b"built on it");
    assert!(matches!(
        r.apply(other.clone())[0].result,
        Ok(Outcome::Buffered { .. })
    ));
    let ds = r.apply(needed.clone());
    assert!(ds.iter().all(|d| d.result.is_ok()), "{ds:?}");
    assert!(r.contains(&other.id()));
}

/// Equivocations fed at decreasing seqs end with the same view as any other order.
#[test]
fn decreasing_equivocations_converge() {
    let k = key(6);
    let base = chain(&k, 40);
    let mut forks: Vec<SignedOp> = (2..40)
        .rev()
        .map(|s| op(&k, s as u64 + 1, &[&base[s - 1]], b"fork"))
        .collect();
    let mut a = Replica::new(Limits::default());
    apply_all(&mut a, &base);
    apply_all(&mut a, &forks);
    let mut b = Replica::new(Limits::default());
    forks.reverse();
    apply_all(&mut b, &base);
    apply_all(&mut b, &forks);
    assert_eq!(a.excluded_from(&author(&k)), Some(3));
    assert_eq!(snapshot(&a).view, snapshot(&b).view);
    assert_eq!(a.view_len(), 2);
}
