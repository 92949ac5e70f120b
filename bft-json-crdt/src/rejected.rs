//! Why an op was refused.

use crate::ids::{AuthorId, OpId};

/// The bytes of an op are not a canonical encoding (see [`crate::encoding`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: input of {len} bytes ends inside field `{field}` at offset {at}")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Offset where it starts.
        at: usize,
        /// Total input length.
        len: usize,
    },
    /// The version byte is not one this crate reads.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    /// A field that must be at least 1 is 0.
    #[error("field `{0}` must be at least 1")]
    ZeroField(&'static str),
    /// Deps are not strictly ascending.
    #[error("deps are not sorted and de-duplicated")]
    NonCanonicalDeps,
    /// Bytes follow the signature.
    #[error("{extra} trailing bytes after the signature")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A size limit is exceeded.
    #[error("{what} too large: {actual} > limit {limit}")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// The limit in force.
        limit: usize,
        /// What was found.
        actual: usize,
    },
}

/// Why a replica refused an op. Every variant names the op (when it could be
/// identified) so a caller can report exactly what was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The bytes do not decode.
    #[error("malformed op {claimed}: {error}")]
    Malformed {
        /// The id the sender claimed, if any (all zeros if none).
        claimed: OpId,
        /// What is wrong with the bytes.
        error: DecodeError,
    },
    /// The op is larger than the limits allow.
    #[error("op {claimed} over limits: {error}")]
    OverLimits {
        /// The id the sender claimed.
        claimed: OpId,
        /// Which limit.
        error: DecodeError,
    },
    /// The id sent with the op is not the hash of its bytes.
    #[error("bad id: op claims id {claimed} but its bytes hash to {actual}")]
    BadId {
        /// The id that was sent.
        claimed: OpId,
        /// The id recomputed from the bytes.
        actual: OpId,
    },
    /// The author field is not a usable Ed25519 public key (not a curve point, or a
    /// small-order key anyone could "sign" for): nobody can hold its secret key.
    #[error("forged author: op {id} names author {author}, which is not a valid public key")]
    ForgedAuthor {
        /// The op.
        id: OpId,
        /// The claimed author.
        author: AuthorId,
    },
    /// The signature does not verify under the author's key.
    #[error("bad signature on op {id} (author {author})")]
    BadSignature {
        /// The op.
        id: OpId,
        /// The claimed author.
        author: AuthorId,
    },
    /// The op's link to its author's previous op is wrong: seq 1 with a dep of the same
    /// author, seq > 1 without exactly one dep of the same author at `seq - 1`.
    #[error("wrong seq/prev link on op {id} (author {author}, seq {seq}): {detail}")]
    BadPrevLink {
        /// The op.
        id: OpId,
        /// Its author.
        author: AuthorId,
        /// Its claimed seq.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The lamport timestamp is not 1 + the highest lamport among the deps.
    #[error("wrong lamport on op {id}: expected {expected}, found {actual}")]
    WrongLamport {
        /// The op.
        id: OpId,
        /// 1 + max lamport of the deps.
        expected: u64,
        /// What the op says.
        actual: u64,
    },
    /// The author is not a member of the deployment.
    #[error("op {id} is by {author}, which is not a member of this deployment")]
    NotMember {
        /// The op.
        id: OpId,
        /// Its author.
        author: AuthorId,
    },
    /// The op waits for deps but its author's share of the buffer is full.
    #[error(
        "buffer quota of author {author} full ({quota} ops): op {id} dropped while waiting for deps"
    )]
    AuthorBufferFull {
        /// The op.
        id: OpId,
        /// Its author.
        author: AuthorId,
        /// The per-author quota.
        quota: usize,
    },
    /// The op is equivocation evidence beyond its author's quota, and neither moves
    /// the author's exclusion lower nor is needed by another author's op.
    #[error("evidence quota of author {author} full ({limit} ops): op {id} not kept")]
    EvidenceQuota {
        /// The op.
        id: OpId,
        /// Its author.
        author: AuthorId,
        /// The per-author limit.
        limit: usize,
    },
    /// The op depends on an op refused for what it is (its id covers the defect), so
    /// it can never apply.
    #[error("op {id} depends on op {dep}, which was refused: it can never apply")]
    DependsOnRejected {
        /// The op.
        id: OpId,
        /// The refused dep.
        dep: OpId,
    },
    /// The op waited in the buffer longer than the limit and was dropped.
    #[error("op {id} waited {waited_ms} ms for its deps and was dropped from the buffer")]
    Expired {
        /// The op.
        id: OpId,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },
    /// The op waits for deps but the buffer is full.
    #[error("buffer full ({capacity} ops): op {id} dropped while waiting for deps")]
    BufferFull {
        /// The op.
        id: OpId,
        /// The buffer's capacity.
        capacity: usize,
    },
}

impl Rejected {
    /// True if the refusal follows from the op's id alone (its content, author, deps
    /// and lamport, which the id covers): the same op is refused again wherever it
    /// goes, so ops that depend on it can never apply. Refusals that depend on the
    /// signature (the id does not cover it) or on the replica's state are not.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Rejected::ForgedAuthor { .. }
                | Rejected::NotMember { .. }
                | Rejected::BadPrevLink { .. }
                | Rejected::WrongLamport { .. }
                | Rejected::DependsOnRejected { .. }
        )
    }

    /// The id of the refused op: the recomputed one where it is known, otherwise
    /// the one the sender claimed.
    pub fn op_id(&self) -> OpId {
        match self {
            Rejected::Malformed { claimed, .. } | Rejected::OverLimits { claimed, .. } => *claimed,
            Rejected::BadId { claimed, .. } => *claimed,
            Rejected::ForgedAuthor { id, .. }
            | Rejected::BadSignature { id, .. }
            | Rejected::BadPrevLink { id, .. }
            | Rejected::WrongLamport { id, .. }
            | Rejected::BufferFull { id, .. }
            | Rejected::NotMember { id, .. }
            | Rejected::AuthorBufferFull { id, .. }
            | Rejected::EvidenceQuota { id, .. }
            | Rejected::DependsOnRejected { id, .. }
            | Rejected::Expired { id, .. } => *id,
        }
    }

    /// A short stable name of the reason, for counters and JSON output.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::Malformed { .. } => "malformed",
            Rejected::OverLimits { .. } => "over_limits",
            Rejected::BadId { .. } => "bad_id",
            Rejected::ForgedAuthor { .. } => "forged_author",
            Rejected::BadSignature { .. } => "bad_signature",
            Rejected::BadPrevLink { .. } => "bad_prev_link",
            Rejected::WrongLamport { .. } => "wrong_lamport",
            Rejected::BufferFull { .. } => "buffer_full",
            Rejected::NotMember { .. } => "not_member",
            Rejected::AuthorBufferFull { .. } => "author_buffer_full",
            Rejected::EvidenceQuota { .. } => "evidence_quota",
            Rejected::DependsOnRejected { .. } => "depends_on_rejected",
            Rejected::Expired { .. } => "expired",
        }
    }
}
