//! What a store keeps and where: [`OpRecord`] (one op as stored), [`OpKey`] (its
//! place in the op graph) and [`Position`] (its place in the store's append order).

use std::fmt;

use bft_json_crdt::{AuthorId, OpId, SignedOp};

/// A store-local position: 1 for the first op appended, increasing in append order.
/// `Position(0)` is "before the first op", where [`OpStore::load`](super::OpStore::load) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub u64);

impl Position {
    /// Before the first op.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One op as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// The op id (SHA-256 of the unsigned encoding). Unique in a store.
    pub id: OpId,
    /// The author (sled) public key.
    pub author: AuthorId,
    /// The author's 1-based sequence number.
    pub seq: u64,
    /// The payload: a small JSON object, kept readable (e.g. a TEXT column).
    pub payload: String,
    /// The canonical signed encoding, byte for byte.
    pub bytes: Vec<u8>,
    /// True if this op is equivocation evidence: another op holds its `(author, seq)`
    /// as the primary op. Evidence ops are exempt from the `(author, seq)` uniqueness.
    pub evidence: bool,
}

impl OpRecord {
    /// The record of an op. The payload must be UTF-8 (event-log payloads are JSON);
    /// other bytes are kept lossily in `payload`, exactly in `bytes`.
    pub fn new(op: &SignedOp, evidence: bool) -> Self {
        OpRecord {
            id: op.id(),
            author: op.author(),
            seq: op.seq(),
            payload: String::from_utf8_lossy(op.payload()).into_owned(),
            bytes: op.bytes().to_vec(),
            evidence,
        }
    }
}

/// Where an op sits in the op graph: its author, seq and id (no bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    /// The author (sled).
    pub author: AuthorId,
    /// The author's 1-based sequence number.
    pub seq: u64,
    /// The op id.
    pub id: OpId,
}
