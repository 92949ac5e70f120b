//! Signature verification, one by one or in batches.
//!
//! Acceptance must be the same on every correct replica, whichever path checks an op,
//! or replicas diverge. Plain Ed25519 does not promise that: single (cofactorless)
//! and batch (cofactored) verification disagree on crafted signatures. So signatures
//! are checked with `ed25519-consensus`, whose single and batch verification accept
//! exactly the same set (the ZIP-215 rules), while author keys are parsed with
//! `ed25519-dalek` to refuse small-order keys ([`Rejected::ForgedAuthor`]).

use ed25519_consensus::{Signature, VerificationKey, VerificationKeyBytes, batch};

use crate::op::SignedOp;
use crate::rejected::Rejected;

/// Below this many ops a batch is not worth its setup.
const MIN_BATCH: usize = 4;

/// From this many ops on, a batch is split across the available cores.
const MIN_PARALLEL: usize = 256;

/// Checks the author key: it must be a curve point of large order.
pub(crate) fn check_author(op: &SignedOp) -> Result<(), Rejected> {
    let forged = || Rejected::ForgedAuthor {
        id: op.id(),
        author: op.author(),
    };
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(op.author().as_bytes()).map_err(|_| forged())?;
    if key.is_weak() {
        return Err(forged());
    }
    Ok(())
}

/// Verifies one op: author key, then signature over the id.
pub(crate) fn verify_one(op: &SignedOp) -> Result<(), Rejected> {
    check_author(op)?;
    let bad = || Rejected::BadSignature {
        id: op.id(),
        author: op.author(),
    };
    let key = VerificationKey::try_from(*op.author().as_bytes()).map_err(|_| bad())?;
    key.verify(&Signature::from(*op.signature()), op.id().as_bytes())
        .map_err(|_| bad())
}

/// Verifies the signatures (and author keys) of many ops at once.
///
/// Returns one result per op, in order. A batch costs about half of one-by-one
/// verification; when it fails, the ops are re-checked one by one so that the bad
/// ones are named and the good ones still accepted. Either path accepts exactly the
/// same ops.
pub fn verify_batch(ops: &[&SignedOp]) -> Vec<Result<(), Rejected>> {
    let threads = crate::parallel::cores();
    if threads > 1 && ops.len() >= MIN_PARALLEL {
        // Large batches (replay, sync) are split across the cores (rayon's pool, as
        // signing); each chunk is an independent batch, so the accepted set is the
        // same as on one core.
        use rayon::prelude::*;
        let chunk = ops.len().div_ceil(threads);
        return ops.par_chunks(chunk).flat_map_iter(verify_serial).collect();
    }
    verify_serial(ops)
}

/// One batch on the calling thread.
fn verify_serial(ops: &[&SignedOp]) -> Vec<Result<(), Rejected>> {
    if ops.len() < MIN_BATCH {
        return ops.iter().map(|op| verify_one(op)).collect();
    }
    let mut results: Vec<Result<(), Rejected>> = ops.iter().map(|op| check_author(op)).collect();
    let ids: Vec<[u8; 32]> = ops.iter().map(|op| op.id().0).collect();
    let mut verifier = batch::Verifier::new();
    let mut queued = 0usize;
    for (i, op) in ops.iter().enumerate() {
        if results[i].is_ok() {
            verifier.queue((
                VerificationKeyBytes::from(*op.author().as_bytes()),
                Signature::from(*op.signature()),
                &ids[i][..],
            ));
            queued += 1;
        }
    }
    if queued > 0 && verifier.verify(rand_core::OsRng).is_err() {
        for (i, op) in ops.iter().enumerate() {
            if results[i].is_ok() {
                results[i] = verify_one(op);
            }
        }
    }
    results
}
