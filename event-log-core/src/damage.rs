//! Damaged rows: what a store holds that fails the checks, reported instead of
//! failing the whole log.
//!
//! A store shared by several sleds (or restored, or edited by hand) can hold a row
//! that does not decode, whose columns disagree with its signed bytes, whose
//! signature is forged, or that waits for an op the store does not hold. One such row
//! must not stop every sled from opening: the log keeps it out of the view, reports
//! it here (typed, with its store position and op id), counts it, and keeps every
//! valid op. Only damage to this sled's own chain refuses the open (the sled could
//! not continue its sequence without re-signing a seq).

use bft_json_crdt::{AuthorId, OpId, Rejected};

use crate::store::{OpRecord, Position};

/// Most damaged rows a log keeps details of (all are counted).
pub const MAX_REPORTED_DAMAGE: usize = 1000;

/// Most damaged op ids remembered to report each row once (beyond, rows read again
/// are counted again).
const MAX_REMEMBERED: usize = 100_000;

/// What is wrong with a stored row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DamageKind {
    /// The op fails validation: it does not decode, its id is not the hash of its
    /// bytes, its signature or causal links are wrong, its author is not a member.
    #[error("{0}")]
    Rejected(Rejected),
    /// The row's readable columns disagree with its signed bytes (a column edited in
    /// place: what a SQL shell shows is not what was signed).
    #[error("row's {column} column does not match its signed bytes: {detail}")]
    RowMismatch {
        /// The column (`author`, `seq`, `payload`, `lamport`, `story`, `key`).
        column: &'static str,
        /// What differs.
        detail: String,
    },
    /// The op is valid but its payload is not a valid entry.
    #[error("the signed payload is not a valid entry: {0}")]
    BadPayload(String),
    /// The same op is stored twice.
    #[error("the op is stored twice")]
    Duplicate,
    /// The op is valid so far but depends on ops the store does not hold (or holds
    /// damaged): it cannot enter the view until they are restored.
    #[error("depends on {} op(s) the store does not hold intact, e.g. {}", missing.len(), missing.first().map(|m| m.to_string()).unwrap_or_default())]
    Unreachable {
        /// The missing deps.
        missing: Vec<OpId>,
    },
}

impl DamageKind {
    /// A short stable name, for counters and JSON.
    pub fn reason(&self) -> &'static str {
        match self {
            DamageKind::Rejected(r) => r.reason(),
            DamageKind::RowMismatch { .. } => "row_mismatch",
            DamageKind::BadPayload(_) => "bad_payload",
            DamageKind::Duplicate => "duplicate",
            DamageKind::Unreachable { .. } => "unreachable",
        }
    }
}

/// One damaged row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store position {position}: op {id} (row of sled {author} seq {seq}): {kind}")]
pub struct DamagedRow {
    /// Where in the store (0 if the row was found by a read without positions).
    pub position: Position,
    /// The id the row claims.
    pub id: OpId,
    /// The author the row claims.
    pub author: AuthorId,
    /// The seq the row claims.
    pub seq: u64,
    /// What is wrong.
    pub kind: DamageKind,
}

impl DamagedRow {
    /// A damaged row, located by its record.
    pub fn of(position: Position, rec: &OpRecord, kind: DamageKind) -> Self {
        DamagedRow {
            position,
            id: rec.id,
            author: rec.author,
            seq: rec.seq,
            kind,
        }
    }
}

/// Damaged rows found: every one counted, the first [`MAX_REPORTED_DAMAGE`] kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct DamageLog {
    rows: Vec<DamagedRow>,
    ids: std::collections::HashSet<OpId>,
    count: u64,
}

impl DamageLog {
    /// Records a row (once per op id).
    pub(crate) fn add(&mut self, row: DamagedRow) {
        if self.ids.contains(&row.id) {
            return;
        }
        if self.ids.len() < MAX_REMEMBERED {
            self.ids.insert(row.id);
        }
        tracing::warn!(position = %row.position, op = %row.id, sled = %row.author, seq = row.seq,
            reason = row.kind.reason(), "damaged row kept out of the view: {}", row.kind);
        self.count += 1;
        if self.rows.len() < MAX_REPORTED_DAMAGE {
            self.rows.push(row);
        }
    }

    /// Forgets a row that turned out intact (an op that only waited for a row
    /// committed late).
    pub(crate) fn clear(&mut self, id: &OpId) {
        if self.ids.remove(id) {
            self.count -= 1;
            self.rows.retain(|r| r.id != *id);
        }
    }

    /// True if the op is known damaged.
    pub(crate) fn contains(&self, id: &OpId) -> bool {
        self.ids.contains(id)
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn rows(&self) -> &[DamagedRow] {
        &self.rows
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Acknowledged ops of a sled that the store no longer holds: a signed frontier (a
/// checkpoint in the store, this sled's watermark) says the sled had ops up to
/// `acknowledged`, the store holds them intact only up to `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "sled {sled}: the store holds its ops up to seq {held}, but a signed frontier shows ops up to seq {acknowledged}"
)]
pub struct MissingOps {
    /// The sled.
    pub sled: AuthorId,
    /// Highest seq of the sled the store holds intact.
    pub held: u64,
    /// Highest seq a signed frontier records.
    pub acknowledged: u64,
}
