//! [`Op`]: the fields of an op before it is signed, and the id they give.
//!
//! Signing an op ([`Op::sign`], [`Op::draft`]) is in the `draft` module.

use crate::encoding;
use crate::ids::{AuthorId, OpId};

/// An op before it is signed. Build one, then [`Op::sign`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Author; [`Op::sign`] overwrites it with the signer's key.
    pub author: AuthorId,
    /// 1-based, contiguous per author.
    pub seq: u64,
    /// 1 + max lamport of the deps (1 with no deps).
    pub lamport: u64,
    /// Dependencies; sorted and de-duplicated when encoded.
    pub deps: Vec<OpId>,
    /// Opaque payload.
    pub payload: Vec<u8>,
}

impl Op {
    /// The same op with its deps sorted and de-duplicated, as the encoding wants.
    pub(super) fn canonical(mut self) -> Self {
        self.deps.sort_unstable();
        self.deps.dedup();
        self
    }

    /// The id this op will have once signed by `author` (the hash does not cover the
    /// signature, so a chain of ops can be linked before any of them is signed).
    /// [`Op::draft`] computes it too, and keeps the encoding for signing.
    pub fn id_for(&self, author: &AuthorId) -> OpId {
        let mut deps = self.deps.clone();
        deps.sort_unstable();
        deps.dedup();
        let mut bytes = Vec::new();
        encoding::encode_unsigned(
            &mut bytes,
            author,
            self.seq,
            self.lamport,
            &deps,
            &self.payload,
        );
        encoding::hash_unsigned(&bytes)
    }
}
