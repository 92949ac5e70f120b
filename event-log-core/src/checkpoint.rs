//! Replay checkpoints: "the ops at store positions up to P, in load order, hash to
//! D, I verified them, and the store then held these seqs per sled", signed by the
//! sled's own key.
//!
//! Verifying every signature on every open costs tens of microseconds per op. A
//! checkpoint lets a reopen check only the ids (one SHA-256 per op, which also detects
//! any change to an op) and the running digest of `(id, signature)` pairs against the
//! checkpoint, then verify signatures only for ops stored after it. Whoever can write
//! the store cannot forge a checkpoint without the sled's secret key; a checkpoint
//! that does not match (damage, a restored backup, a row inserted below it) is
//! not trusted to skip verification, and everything is verified again.
//!
//! Its frontier (the highest seq per sled the store held when it was sealed) is a
//! signed claim either way: a store holding less has lost acknowledged ops (a
//! truncated tail), which open and verify report. Anyone can check a checkpoint: it
//! is signed by the sled whose id is its public key.

use bft_json_crdt::{AuthorId, SignedOp, SigningKey, VersionVector};
use sha2::{Digest, Sha256};

use crate::event::SledId;
use crate::store::Position;

const VERSION: u8 = 2;
const TAG: &[u8] = b"event-log/replay-checkpoint/v2\0";
/// Version, position, ops, digest, entry count.
const HEAD: usize = 1 + 8 + 8 + 32 + 4;
const ENTRY: usize = 32 + 8;
const SIG: usize = crate::seal::SEAL_LEN;

/// The meta key of a sled's checkpoint.
pub(crate) fn key(sled: &SledId) -> String {
    format!("replay-checkpoint/{sled}")
}

/// A verified replay prefix and the store's frontier then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) position: Position,
    pub(crate) ops: u64,
    pub(crate) digest: [u8; 32],
    /// Highest seq per sled the store held (intact) when it was sealed.
    pub(crate) frontier: VersionVector,
}

impl Checkpoint {
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + ENTRY * self.frontier.len() + SIG);
        out.push(VERSION);
        out.extend_from_slice(&self.position.0.to_be_bytes());
        out.extend_from_slice(&self.ops.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&(self.frontier.len() as u32).to_be_bytes());
        for (a, s) in self.frontier.iter() {
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out
    }

    /// Encodes and signs.
    pub(crate) fn seal(&self, key: &SigningKey) -> Vec<u8> {
        let mut out = self.body();
        crate::seal::seal(TAG, key, &mut out);
        out
    }

    /// Decodes and checks the signature of `sled`; `None` for anything else.
    pub(crate) fn open(bytes: &[u8], sled: &SledId) -> Option<Checkpoint> {
        if bytes.len() < HEAD + SIG || bytes[0] != VERSION {
            return None;
        }
        let u64_at = |i: usize| bytes.get(i..i + 8)?.try_into().ok().map(u64::from_be_bytes);
        let position = Position(u64_at(1)?);
        let ops = u64_at(9)?;
        let digest: [u8; 32] = bytes.get(17..49)?.try_into().ok()?;
        let n = u32::from_be_bytes(bytes.get(49..53)?.try_into().ok()?) as usize;
        if bytes.len() != HEAD + n.checked_mul(ENTRY)? + SIG {
            return None;
        }
        let mut frontier = VersionVector::new();
        for i in 0..n {
            let at = HEAD + i * ENTRY;
            let author: [u8; 32] = bytes.get(at..at + 32)?.try_into().ok()?;
            frontier.set(AuthorId(author), u64_at(at + 32)?);
        }
        crate::seal::open(TAG, sled, bytes)?;
        Some(Checkpoint {
            position,
            ops,
            digest,
            frontier,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_refusals() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let sled = SledId::from(&key.verifying_key());
        let mut frontier = VersionVector::new();
        frontier.set(sled, 7);
        frontier.set(AuthorId([9; 32]), 2);
        let c = Checkpoint {
            position: Position(11),
            ops: 9,
            digest: [5; 32],
            frontier,
        };
        let bytes = c.seal(&key);
        assert_eq!(Checkpoint::open(&bytes, &sled), Some(c));
        let other = SledId::from(&SigningKey::from_bytes(&[4; 32]).verifying_key());
        assert_eq!(Checkpoint::open(&bytes, &other), None, "another sled's key");
        for cut in [0, 1, HEAD, bytes.len() - 1] {
            assert_eq!(Checkpoint::open(&bytes[..cut], &sled), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[60] ^= 1;
        assert_eq!(
            Checkpoint::open(&flipped, &sled),
            None,
            "a changed frontier"
        );
        let mut huge = bytes;
        huge[49..53].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Checkpoint::open(&huge, &sled), None, "a lying count");
    }
}
