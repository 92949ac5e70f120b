//! The fate of a group the store failed: the one place that decides.

use crate::event::SledId;
use crate::store::StoreError;

/// What a store error says about a group's ops: the one place that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Another writer of this sled took the seq (a previous process's last write
    /// that committed after this one opened): catch up, then re-sequence, a few
    /// times at most.
    OwnSeqTaken,
    /// Another sled's op holds the seq: the callers learn the conflict.
    Refused,
    /// The op the group continues is not stored: back to the queue.
    Requeue,
    /// The outcome is unknown: the ops stay in doubt, completed before any new op.
    InDoubt,
}

impl Fate {
    /// The fate of a group the store answered with `e`, for the log of sled `me`.
    pub(super) fn of(e: &StoreError, me: &SledId) -> Fate {
        match e {
            StoreError::Conflict { author, .. } if author == me => Fate::OwnSeqTaken,
            StoreError::Conflict { .. } => Fate::Refused,
            StoreError::MissingPredecessor { .. } => Fate::Requeue,
            _ => Fate::InDoubt,
        }
    }

    /// Whether nothing of the group was written.
    pub(super) fn unwritten(self) -> bool {
        self != Fate::InDoubt
    }
}
