//! What a store keeps and where: [`OpRecord`] (one op as stored), [`OpKey`] (its
//! place in the op graph), [`Causal`] (its place in the causal order) and
//! [`Position`] (its place in the store's append order).

use std::fmt;

use bft_json_crdt::{AuthorId, OpId, SignedOp};

use crate::entry::Entry;

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
///
/// Its `Debug` shows the bytes by length and digest prefix, not byte by byte, so a
/// failing assertion stays readable.
#[derive(Clone, PartialEq, Eq)]
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
    /// The op's Lamport timestamp, as its bytes say: with `id`, the key of the
    /// causal order ([`OpStore::timeline`](super::OpStore::timeline) and
    /// [`OpStore::story_ops`](super::OpStore::story_ops) read by it).
    pub lamport: u64,
    /// The story of the transition the op carries (`None` for sentinels and for
    /// payloads that are no entry): the key of
    /// [`OpStore::story_ops`](super::OpStore::story_ops).
    pub story: Option<String>,
    /// The idempotency key of the transition the op carries, if it has one: the
    /// key of [`OpStore::keyed`](super::OpStore::keyed).
    pub key: Option<String>,
}

impl OpRecord {
    /// The record of an op. The payload must be UTF-8 (event-log payloads are JSON);
    /// other bytes are kept lossily in `payload`, exactly in `bytes`.
    ///
    /// The index columns (`story`, `key`) are read from the payload when it is an
    /// entry; [`OpRecord::with_entry`] takes them from an entry already parsed.
    pub fn new(op: &SignedOp, evidence: bool) -> Self {
        match Entry::from_payload(op.payload()) {
            Ok(entry) => Self::with_entry(op, evidence, &entry),
            Err(_) => Self::with_index(op, evidence, None, None),
        }
    }

    /// The record of an op carrying `entry` (its payload, parsed).
    pub fn with_entry(op: &SignedOp, evidence: bool, entry: &Entry) -> Self {
        let key = match entry {
            Entry::Transition(t) => t.idempotency_key.clone(),
            Entry::Gap(_) | Entry::Unclean(_) => None,
        };
        Self::with_index(op, evidence, entry.story_id().map(str::to_owned), key)
    }

    fn with_index(
        op: &SignedOp,
        evidence: bool,
        story: Option<String>,
        key: Option<String>,
    ) -> Self {
        OpRecord {
            id: op.id(),
            author: op.author(),
            seq: op.seq(),
            payload: String::from_utf8_lossy(op.payload()).into_owned(),
            bytes: op.bytes().to_vec(),
            evidence,
            lamport: op.lamport(),
            story,
            key,
        }
    }

    /// Where the op sits in the causal order.
    pub fn causal(&self) -> Causal {
        Causal {
            lamport: self.lamport,
            id: self.id,
        }
    }

    /// Where the op sits in the op graph.
    pub fn op_key(&self) -> OpKey {
        OpKey {
            author: self.author,
            seq: self.seq,
            id: self.id,
        }
    }
}

impl fmt::Debug for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpRecord")
            .field("id", &self.id)
            .field("author", &self.author)
            .field("seq", &self.seq)
            .field("lamport", &self.lamport)
            .field("evidence", &self.evidence)
            .field("story", &self.story)
            .field("key", &self.key)
            .field("payload", &self.payload)
            .field(
                "bytes",
                &format_args!(
                    "<{} bytes, sha256 {}>",
                    self.bytes.len(),
                    short_digest(&self.bytes)
                ),
            )
            .finish()
    }
}

fn short_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..4])
}

/// The index columns of an op: what [`OpRecord`] holds beside the id, author, seq
/// and bytes so that a store can answer every read from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexColumns {
    /// [`OpRecord::lamport`].
    pub lamport: u64,
    /// [`OpRecord::story`].
    pub story: Option<String>,
    /// [`OpRecord::key`].
    pub key: Option<String>,
}

impl IndexColumns {
    /// The index columns of stored canonical bytes, for a backend's migration that
    /// adds the columns to rows stored before they existed (the core reads the
    /// bytes; the store still never parses them itself). `None` when the bytes are
    /// not an op: such a row is damaged, and the log reports it when it reads it.
    pub fn of_bytes(bytes: &[u8]) -> Option<IndexColumns> {
        let limits = bft_json_crdt::Limits {
            max_payload: usize::MAX,
            max_deps: usize::MAX,
            ..bft_json_crdt::Limits::default()
        };
        let decoded = bft_json_crdt::encoding::decode(bytes, &limits).ok()?;
        let (story, key) = match Entry::from_payload(&bytes[decoded.payload.clone()]) {
            Ok(Entry::Transition(t)) => (Some(t.story_id), t.idempotency_key),
            Ok(_) | Err(_) => (None, None),
        };
        Some(IndexColumns {
            lamport: decoded.lamport,
            story,
            key,
        })
    }
}

/// A point in the causal order of ops, `(lamport, id)`: the order of a timeline,
/// the same on every replica holding the same ops, each op after its deps. Reads
/// in that order resume after the last point they returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Causal {
    /// The Lamport timestamp.
    pub lamport: u64,
    /// The op id (breaks ties between equal timestamps).
    pub id: OpId,
}

impl Causal {
    /// Before every op.
    pub const START: Causal = Causal {
        lamport: 0,
        id: OpId([0; 32]),
    };
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
