//! Batch signature verification names exactly the bad ops and agrees with one-by-one
//! verification.

mod common;

use bft_json_crdt::{AuthorId, Rejected, SignedOp, verify_batch};
use common::*;
use proptest::prelude::*;

fn ops(n: usize) -> Vec<SignedOp> {
    let mut out = Vec::new();
    for k in 0..4u8 {
        out.extend(chain(&key(k), n.div_ceil(4)));
    }
    out.truncate(n);
    out
}

fn corrupt(o: &SignedOp, how: u8) -> SignedOp {
    let mut d = bft_json_crdt::Op {
        author: o.author(),
        seq: o.seq(),
        lamport: o.lamport(),
        deps: o.deps().to_vec(),
        payload: o.payload().to_vec(),
    };
    match how % 3 {
        0 => {
            let mut sig = *o.signature();
            sig[17] ^= 4;
            d.with_signature(sig)
        }
        1 => {
            // another author's valid signature over this id
            use ed25519_dalek::Signer;
            d.with_signature(key(7).sign(o.id().as_bytes()).to_bytes())
        }
        _ => {
            let mut id = [0u8; 32];
            id[0] = 1;
            d.author = AuthorId(id);
            d.with_signature([0; 64])
        }
    }
}

fn one_by_one(ops: &[SignedOp]) -> Vec<Result<(), Rejected>> {
    ops.iter().map(|o| verify_batch(&[o]).remove(0)).collect()
}

#[test]
fn all_good_batch_accepts_all() {
    let v = ops(16);
    let refs: Vec<&SignedOp> = v.iter().collect();
    assert!(verify_batch(&refs).iter().all(|r| r.is_ok()));
    assert!(verify_batch(&[]).is_empty());
}

#[test]
fn one_bad_signature_in_the_middle_is_named() {
    let mut v = ops(16);
    v[8] = corrupt(&v[8], 0);
    let refs: Vec<&SignedOp> = v.iter().collect();
    let res = verify_batch(&refs);
    assert_eq!(res.len(), 16);
    for (i, r) in res.iter().enumerate() {
        if i == 8 {
            assert_eq!(
                r,
                &Err(Rejected::BadSignature {
                    id: v[8].id(),
                    author: v[8].author()
                })
            );
        } else {
            assert!(r.is_ok(), "op {i} refused: {r:?}");
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn batch_equals_one_by_one(n in 0usize..24, bad in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..5)) {
        let mut v = ops(n);
        let mut corrupted = std::collections::BTreeSet::new();
        if n > 0 {
            for (i, how) in &bad {
                let i = i.index(n);
                if corrupted.insert(i) {
                    v[i] = corrupt(&v[i], *how);
                }
            }
        }
        let refs: Vec<&SignedOp> = v.iter().collect();
        let batch = verify_batch(&refs);
        prop_assert_eq!(&batch, &one_by_one(&v));
        for (i, r) in batch.iter().enumerate() {
            prop_assert_eq!(r.is_err(), corrupted.contains(&i));
            if let Err(e) = r {
                prop_assert_eq!(e.op_id(), v[i].id());
            }
        }
    }
}
