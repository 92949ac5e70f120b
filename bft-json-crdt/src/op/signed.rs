//! [`SignedOp`]: a well-formed op with its recomputed id and its signature.

use std::fmt;
use std::sync::Arc;

use super::unsigned::Op;
use crate::encoding::{self, SIG_LEN};
use crate::ids::{AuthorId, OpId};
use crate::limits::Limits;
use crate::rejected::DecodeError;

struct Inner {
    id: OpId,
    author: AuthorId,
    seq: u64,
    lamport: u64,
    deps: Box<[OpId]>,
    payload: std::ops::Range<usize>,
    sig: [u8; 64],
    bytes: Box<[u8]>,
}

/// A well-formed op with its recomputed id and its signature.
///
/// A `SignedOp` is always a canonical encoding whose id is the hash of its bytes;
/// whether its signature and causal links are valid is what a [`crate::Replica`]
/// checks. Cloning is cheap (shared).
#[derive(Clone)]
pub struct SignedOp(Arc<Inner>);

impl SignedOp {
    pub(super) fn from_parts(id: OpId, op: Op, sig: [u8; 64], bytes: Vec<u8>) -> Self {
        let payload_end = bytes.len() - SIG_LEN;
        let payload = payload_end - op.payload.len()..payload_end;
        SignedOp(Arc::new(Inner {
            id,
            author: op.author,
            seq: op.seq,
            lamport: op.lamport,
            deps: op.deps.into_boxed_slice(),
            payload,
            sig,
            bytes: bytes.into_boxed_slice(),
        }))
    }

    /// Decodes a signed encoding and computes its id. Does not check the signature.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let d = encoding::decode(bytes, limits)?;
        let id = encoding::hash_unsigned(d.unsigned);
        Ok(SignedOp(Arc::new(Inner {
            id,
            author: d.author,
            seq: d.seq,
            lamport: d.lamport,
            deps: d.deps.into_boxed_slice(),
            payload: d.payload,
            sig: d.sig,
            bytes: bytes.into(),
        })))
    }

    /// The op id: the hash of the encoding without signature.
    pub fn id(&self) -> OpId {
        self.0.id
    }
    /// The author's public key.
    pub fn author(&self) -> AuthorId {
        self.0.author
    }
    /// 1-based per-author sequence number.
    pub fn seq(&self) -> u64 {
        self.0.seq
    }
    /// Lamport timestamp.
    pub fn lamport(&self) -> u64 {
        self.0.lamport
    }
    /// Dependencies, strictly ascending.
    pub fn deps(&self) -> &[OpId] {
        &self.0.deps
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.0.bytes[self.0.payload.clone()]
    }
    /// The Ed25519 signature over the id.
    pub fn signature(&self) -> &[u8; 64] {
        &self.0.sig
    }
    /// The canonical signed encoding (what stores persist and peers exchange).
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }
}

impl PartialEq for SignedOp {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.sig == other.0.sig
    }
}
impl Eq for SignedOp {}

impl fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedOp")
            .field("id", &self.0.id)
            .field("author", &self.0.author)
            .field("seq", &self.0.seq)
            .field("lamport", &self.0.lamport)
            .field("deps", &self.0.deps.len())
            .field("payload_len", &self.0.payload.len())
            .finish()
    }
}
