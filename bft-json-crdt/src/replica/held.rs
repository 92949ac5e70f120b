//! What a [`super::Replica`] keeps of each applied op.

use sha2::{Digest, Sha256};

use crate::ids::{AuthorId, OpId};
use crate::op::SignedOp;

/// Bytes of the signature digest kept per op: a changed signature goes unnoticed
/// with probability 2⁻¹²⁸.
const SIG_DIGEST: usize = 16;

/// The kept record of an op, without its id (the key it is kept under).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) author: AuthorId,
    pub(super) seq: u64,
    pub(super) lamport: u64,
    sig: [u8; SIG_DIGEST],
}

impl Meta {
    pub(super) fn of(op: &SignedOp) -> Self {
        Meta {
            author: op.author(),
            seq: op.seq(),
            lamport: op.lamport(),
            sig: sig_digest(op.signature()),
        }
    }

    pub(super) fn held(&self, id: OpId) -> HeldOp {
        HeldOp { id, meta: *self }
    }
}

fn sig_digest(sig: &[u8; 64]) -> [u8; SIG_DIGEST] {
    let full = Sha256::digest(sig);
    let mut out = [0; SIG_DIGEST];
    out.copy_from_slice(&full[..SIG_DIGEST]);
    out
}

/// What a replica keeps of an op it applied (about 100 bytes, whatever the op's
/// payload): what ops depending on it are checked against, and a digest of the
/// signature it verified. The op itself is the caller's to store; a copy read back
/// is authenticated by [`HeldOp::matches`] without verifying its signature again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeldOp {
    id: OpId,
    meta: Meta,
}

impl HeldOp {
    /// The op id.
    pub fn id(&self) -> OpId {
        self.id
    }
    /// The author.
    pub fn author(&self) -> AuthorId {
        self.meta.author
    }
    /// The author's seq.
    pub fn seq(&self) -> u64 {
        self.meta.seq
    }
    /// The lamport timestamp.
    pub fn lamport(&self) -> u64 {
        self.meta.lamport
    }

    /// True if `op` is the op this replica verified: the same id (so the same
    /// author, seq, lamport, deps and payload, which the id hashes) and the same
    /// signature. `op` comes from decoding, which recomputes its id from its bytes:
    /// a row whose bytes were changed has another id, or another signature.
    pub fn matches(&self, op: &SignedOp) -> bool {
        op.id() == self.id
            && op.author() == self.meta.author
            && op.seq() == self.meta.seq
            && op.lamport() == self.meta.lamport
            && sig_digest(op.signature()) == self.meta.sig
    }
}

impl std::fmt::Debug for HeldOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldOp")
            .field("id", &self.id)
            .field("author", &self.meta.author)
            .field("seq", &self.meta.seq)
            .field("lamport", &self.meta.lamport)
            .finish_non_exhaustive()
    }
}
