//! Errors of [`crate::EventLog`].

use bft_json_crdt::OpId;

pub(crate) use crate::store::ConfigError;
use crate::store::StoreError;

/// Why an event-log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An op's payload is not a valid entry.
    #[error("op {id} carries an invalid entry payload: {detail}")]
    BadPayload {
        /// The op.
        id: OpId,
        /// What is wrong.
        detail: String,
    },
    /// The store failed while writing these entries and it is unknown whether they
    /// were stored. They are never dropped and their seqs are never reused: the log
    /// completes them (idempotently) before its next append, or on
    /// [`crate::EventLog::flush`]. Do not append them again.
    #[error(
        "append outcome unknown (the entries will be completed by the next append or flush): {source}"
    )]
    InDoubt {
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// The log was opened read-only ([`crate::EventLogConfig::read_only`]): it
    /// writes nothing.
    #[error("the log was opened read-only: {operation} is not allowed")]
    ReadOnly {
        /// What was refused (`append`, `merge`, …).
        operation: &'static str,
    },
    /// A row of this sled's own chain is damaged (or missing below rows that
    /// follow it): the sled cannot continue its sequence without signing a seq again.
    #[error(
        "this sled's own op at seq {seq} is damaged ({row}); restore it before opening: sync this store \
         from a peer or the shared store that holds the sled's ops (evlog sync --from PEER --to STORE), \
         or restore the store from a backup together with the sled's watermark; or open with a new key \
         (a new key is a new sled)",
        seq = row.seq
    )]
    OwnChainDamaged {
        /// The damaged row.
        row: Box<crate::damage::DamagedRow>,
    },
    /// A row read from the store fails its checks (a column edited, bytes changed,
    /// a signature swapped): it is not returned, and it is listed in
    /// [`crate::EventLog::damage`].
    #[error("a row read from the store is damaged and was not returned: {row}")]
    DamagedRead {
        /// The damaged row (position 0: indexed reads do not return positions).
        row: Box<crate::damage::DamagedRow>,
    },
    /// An op this log verified is no longer in its store (a row deleted under it):
    /// it cannot be read back, so it is not returned.
    #[error("op {id} was verified by this log but its row is no longer in the store")]
    OpNotInStore {
        /// The op.
        id: OpId,
    },
    /// The entry's op would exceed the op limits ([`crate::Limits`]): every replica
    /// would refuse it, so it is refused before it is signed, and nothing is stored.
    #[error(
        "entry refused before signing: its op's {what} would be {actual} bytes, over the limit of {limit}"
    )]
    OverLimits {
        /// Which part (`payload`).
        what: &'static str,
        /// The limit in force.
        limit: usize,
        /// What the entry needs.
        actual: usize,
    },
    /// This sled equivocated (two of its ops hold one seq: two processes signed with
    /// one key, or a rolled-back store made it sign a seq again), so every replica
    /// excludes its entries from `seq` on: an append would never be visible.
    #[error(
        "sled {sled} is excluded from the view from seq {seq} on (two of its ops hold that seq): \
         its appends would never be visible; to go on, open the log with a new key (a new key is a new sled)"
    )]
    Excluded {
        /// This sled.
        sled: crate::event::SledId,
        /// The first equivocated seq.
        seq: u64,
    },
    /// The idempotency key was used by this sled for another transition (other
    /// story, stages or event): a retry must carry the same content.
    #[error(
        "idempotency key {key:?} already holds event {existing} of this sled, with other content"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The event that holds it.
        existing: crate::event::EventId,
    },
    /// The store holds fewer of this sled's ops than the sled signed (its watermark
    /// or a checkpoint says so): it lost acknowledged ops. Appending would sign those
    /// seqs again with new content, an equivocation every replica punishes, so
    /// appends wait until the ops are back.
    #[error(
        "the store holds this sled's ops up to seq {held}, but the sled signed ops up to seq {signed} \
         (its watermark or checkpoint says so): the store lost acknowledged ops (restored from a backup? \
         failed over to an asynchronous standby? power lost with durability=normal?). Appending now would \
         sign those seqs again with new content. Bring them back first (evlog sync --from PEER --to STORE, \
         or catch up from a shared store or peer), then append; or start a new sled with a new key"
    )]
    RolledBack {
        /// Highest own seq the store holds.
        held: u64,
        /// Highest own seq signed.
        signed: u64,
    },
    /// The sled's watermark cannot be read: without it the log cannot tell whether
    /// its store lost ops it signed.
    #[error("cannot read the sled's watermark: {source}")]
    Watermark {
        /// Why.
        #[source]
        source: crate::store::BoxError,
    },
    /// The configuration cannot work or could sign ops other sleds refuse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The append was cancelled before its outcome was known (the caller's future was
    /// dropped or the log is shutting down). The entry may or may not be stored.
    #[error("append cancelled before its outcome was known")]
    Cancelled,
}

impl Error {
    /// True if the log refuses every append of this sled until an operator acts, so
    /// retrying the same call cannot succeed by itself: the log was opened read-only,
    /// this sled is excluded, its own chain is damaged, or its store lost
    /// acknowledged ops (appends resume once they are brought back, by a sync or a
    /// catch-up, never by waiting). Store errors, conflicts and doubts are not.
    pub fn refuses_appends(&self) -> bool {
        matches!(
            self,
            Error::ReadOnly { .. }
                | Error::Excluded { .. }
                | Error::OwnChainDamaged { .. }
                | Error::RolledBack { .. }
        )
    }
}

/// Result alias for event-log operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
