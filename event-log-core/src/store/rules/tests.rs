//! The rule against examples and against a model of a store (the rule as `MemStore`
//! applied it before this module existed).

use std::collections::{HashMap, HashSet};

use bft_json_crdt::{AuthorId, OpId};
use proptest::prelude::*;

use super::plan_append;
use crate::store::{OpRecord, StoreError};

/// An op with a readable id: `variant` tells apart ops at one `(author, seq)`.
fn op(author: u8, seq: u64, variant: u8, evidence: bool) -> OpRecord {
    let mut id = [0u8; 32];
    id[0] = author;
    id[1..9].copy_from_slice(&seq.to_be_bytes());
    id[9] = variant;
    OpRecord {
        id: OpId(id),
        author: AuthorId([author; 32]),
        seq,
        payload: "{}".into(),
        bytes: id.to_vec(),
        evidence,
        lamport: seq,
        story: None,
        key: None,
    }
}

/// A store as the rule sees it: held ids and the primary per `(author, seq)`.
#[derive(Default, Clone, Debug)]
struct Model {
    held: HashSet<OpId>,
    primary: HashMap<(AuthorId, u64), OpId>,
}

impl Model {
    fn plan<'a>(&self, ops: &'a [OpRecord]) -> Result<Vec<&'a OpRecord>, StoreError> {
        let planned: Result<_, std::convert::Infallible> = plan_append(
            ops,
            |id| Ok(self.held.contains(id)),
            |author, seq| Ok(self.primary.get(&(*author, seq)).copied()),
        );
        match planned {
            Ok(plan) => plan,
            Err(never) => match never {},
        }
    }

    fn write(&mut self, new_ops: &[&OpRecord]) {
        for r in new_ops {
            self.held.insert(r.id);
            if !r.evidence {
                self.primary.insert((r.author, r.seq), r.id);
            }
        }
    }

    /// The rule as `MemStore::append` implemented it: the reference.
    fn reference<'a>(&self, ops: &'a [OpRecord]) -> Result<Vec<&'a OpRecord>, StoreError> {
        let mut batch_primary: HashMap<(AuthorId, u64), OpId> = HashMap::new();
        let mut batch_ids: HashSet<OpId> = HashSet::new();
        let mut out = Vec::new();
        for r in ops {
            if self.held.contains(&r.id) || !batch_ids.insert(r.id) {
                continue;
            }
            out.push(r);
            if r.evidence {
                continue;
            }
            let key = (r.author, r.seq);
            if let Some(&existing) = self.primary.get(&key).or_else(|| batch_primary.get(&key)) {
                return Err(StoreError::Conflict {
                    author: r.author,
                    seq: r.seq,
                    existing,
                    incoming: r.id,
                });
            }
            batch_primary.insert(key, r.id);
        }
        Ok(out)
    }
}

fn ids(plan: &[&OpRecord]) -> Vec<OpId> {
    plan.iter().map(|r| r.id).collect()
}

fn conflict(e: StoreError) -> (AuthorId, u64, OpId, OpId) {
    match e {
        StoreError::Conflict {
            author,
            seq,
            existing,
            incoming,
        } => (author, seq, existing, incoming),
        other => panic!("expected a conflict, got {other}"),
    }
}

#[test]
fn new_ops_are_written_in_order() {
    let ops = [op(1, 1, 0, false), op(1, 2, 0, false), op(2, 1, 0, false)];
    let plan = Model::default().plan(&ops).unwrap();
    assert_eq!(ids(&plan), ops.iter().map(|r| r.id).collect::<Vec<_>>());
}

#[test]
fn held_and_repeated_ops_are_skipped() {
    let mut store = Model::default();
    let a = op(1, 1, 0, false);
    store.write(&[&a]);
    let b = op(1, 2, 0, false);
    let ops = [a.clone(), b.clone(), b.clone(), a];
    assert_eq!(ids(&store.plan(&ops).unwrap()), vec![b.id]);
}

#[test]
fn a_taken_seq_is_a_conflict_naming_both_ops() {
    let mut store = Model::default();
    let held = op(1, 3, 0, false);
    store.write(&[&held]);
    let fresh = op(1, 4, 0, false);
    let rival = op(1, 3, 1, false);
    let e = store.plan(&[fresh, rival.clone()]).unwrap_err();
    assert_eq!(conflict(e), (rival.author, 3, held.id, rival.id));
}

#[test]
fn two_primaries_in_one_call_conflict() {
    let first = op(1, 1, 0, false);
    let second = op(1, 1, 1, false);
    let e = Model::default()
        .plan(&[first.clone(), second.clone()])
        .unwrap_err();
    assert_eq!(conflict(e), (first.author, 1, first.id, second.id));
}

#[test]
fn evidence_is_exempt() {
    let mut store = Model::default();
    let held = op(1, 1, 0, false);
    store.write(&[&held]);
    let ops = [op(1, 1, 1, true), op(1, 1, 2, true), op(1, 2, 0, false)];
    assert_eq!(store.plan(&ops).unwrap().len(), 3);
}

#[test]
fn a_lookup_error_passes_through() {
    #[derive(Debug, PartialEq)]
    struct Down;
    let ops = [op(1, 1, 0, false)];
    let by_id: Result<Result<Vec<_>, _>, Down> = plan_append(&ops, |_| Err(Down), |_, _| Ok(None));
    assert_eq!(by_id.unwrap_err(), Down);
    let by_seq: Result<Result<Vec<_>, _>, Down> =
        plan_append(&ops, |_| Ok(false), |_, _| Err(Down));
    assert_eq!(by_seq.unwrap_err(), Down);
}

#[test]
fn evidence_and_repeats_make_no_primary_lookup() {
    let e = op(1, 1, 0, true);
    let ops = [e.clone(), e];
    let mut held_lookups = 0;
    let plan: Result<_, StoreError> = plan_append(
        &ops,
        |_| {
            held_lookups += 1;
            Ok(false)
        },
        |_, _| panic!("evidence ops need no primary lookup"),
    );
    assert_eq!(plan.unwrap().unwrap().len(), 1);
    assert_eq!(held_lookups, 1);
}

/// Ops over a small space, so calls often repeat ids and collide on seqs.
fn arb_op() -> impl Strategy<Value = OpRecord> {
    (0u8..2, 1u64..4, 0u8..3, any::<bool>()).prop_map(|(a, s, v, e)| op(a, s, v, e))
}

proptest! {
    /// The rule decides like the reference, call after call, over a store that
    /// keeps what each accepted call wrote; and no accepted call leaves two
    /// primaries at one `(author, seq)` or writes an id twice.
    #[test]
    fn matches_the_reference(calls in prop::collection::vec(prop::collection::vec(arb_op(), 0..6), 1..8)) {
        let mut store = Model::default();
        for ops in &calls {
            let planned = store.plan(ops);
            let expected = store.reference(ops);
            match (&planned, &expected) {
                (Ok(p), Ok(r)) => prop_assert_eq!(ids(p), ids(r)),
                (Err(p), Err(r)) => prop_assert_eq!(conflict(p.clone()), conflict(r.clone())),
                _ => prop_assert!(false, "plan {planned:?} but reference {expected:?}"),
            }
            if let Ok(new_ops) = planned {
                let before = store.held.len();
                let primaries = store.primary.len();
                store.write(&new_ops);
                prop_assert_eq!(store.held.len(), before + new_ops.len());
                let new_primaries = new_ops.iter().filter(|r| !r.evidence).count();
                prop_assert_eq!(store.primary.len(), primaries + new_primaries);
            }
        }
    }
}
