//! Replay checkpoints: "the ops at store positions up to P, in load order, hash to
//! D, and I verified them", signed by the sled's own key.
//!
//! Verifying every signature on every open costs tens of microseconds per op. A
//! checkpoint lets a reopen check only the ids (one SHA-256 per op, which also detects
//! any change to an op) and the running digest of `(id, signature)` pairs against the
//! checkpoint, then verify signatures only for ops stored after it. Whoever can write
//! the store cannot forge a checkpoint without the sled's secret key; a checkpoint
//! that does not match (damage, a restored backup, a row inserted below it) is
//! ignored and everything is verified again.

use bft_json_crdt::{SignedOp, SigningKey};
use ed25519_dalek::{Signature, Signer};
use sha2::{Digest, Sha256};

use crate::event::SledId;
use crate::store::Position;

const VERSION: u8 = 1;
const TAG: &[u8] = b"event-log/replay-checkpoint/v1\0";
const LEN: usize = 1 + 8 + 8 + 32 + 64;

/// The meta key of a sled's checkpoint.
pub(crate) fn key(sled: &SledId) -> String {
    format!("replay-checkpoint/{sled}")
}

/// A verified replay prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) position: Position,
    pub(crate) ops: u64,
    pub(crate) digest: [u8; 32],
}

fn message(sled: &SledId, c: &Checkpoint) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TAG);
    h.update(sled.as_bytes());
    h.update(c.position.0.to_be_bytes());
    h.update(c.ops.to_be_bytes());
    h.update(c.digest);
    h.finalize().into()
}

impl Checkpoint {
    /// Encodes and signs.
    pub(crate) fn seal(&self, key: &SigningKey) -> Vec<u8> {
        let sled = SledId::from(&key.verifying_key());
        let sig = key.sign(&message(&sled, self));
        let mut out = Vec::with_capacity(LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.position.0.to_be_bytes());
        out.extend_from_slice(&self.ops.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&sig.to_bytes());
        out
    }

    /// Decodes and checks the signature; `None` for anything not sealed by `key`.
    pub(crate) fn open(bytes: &[u8], key: &SigningKey) -> Option<Checkpoint> {
        if bytes.len() != LEN || bytes[0] != VERSION {
            return None;
        }
        let position = Position(u64::from_be_bytes(bytes[1..9].try_into().ok()?));
        let ops = u64::from_be_bytes(bytes[9..17].try_into().ok()?);
        let digest: [u8; 32] = bytes[17..49].try_into().ok()?;
        let sig = Signature::from_bytes(bytes[49..113].try_into().ok()?);
        let c = Checkpoint {
            position,
            ops,
            digest,
        };
        let sled = SledId::from(&key.verifying_key());
        key.verifying_key()
            .verify_strict(&message(&sled, &c), &sig)
            .ok()?;
        Some(c)
    }
}

/// The running digest of the ops replayed, in load order.
#[derive(Clone, Default)]
pub(crate) struct Chain {
    hasher: Sha256,
    pub(crate) ops: u64,
}

impl Chain {
    pub(crate) fn add(&mut self, op: &SignedOp) {
        self.hasher.update(op.id().as_bytes());
        self.hasher.update(op.signature());
        self.ops += 1;
    }

    pub(crate) fn digest(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}
