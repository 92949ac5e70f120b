//! The storage plugin trait, [`OpStore`], and its error type.
//!
//! A store is a durable home for ops. It never parses op bytes: it keeps what
//! [`OpRecord`] hands it (id, author, seq, the JSON payload in a readable column, the
//! canonical bytes, whether the op is equivocation evidence) and gives it back.
//! [`crate::EventLog`] decodes and verifies on the way out, so a damaged row is caught
//! there and reported as [`StoreError::Corrupt`].

pub mod rules;

use std::fmt;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, SignedOp, VersionVector};

/// A store-local position: 1 for the first op appended, increasing in append order.
/// `Position(0)` is "before the first op", where [`OpStore::load`] starts.
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

/// Boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The kind of a [`StoreError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A different op holds the `(author, seq)`.
    Conflict,
    /// Stored data does not decode or does not match its id.
    Corrupt,
    /// The store cannot be reached or opened (server down, file locked, …); retry later.
    Unavailable,
    /// The caller asked for something the store cannot do (bad config or argument).
    Invalid,
    /// An ordered append found the op it continues missing; nothing was written.
    MissingPredecessor,
    /// The store does not exist (and the caller asked not to create it).
    NotFound,
    /// Any other backend failure.
    Backend,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A different op already holds `(author, seq)` as the primary op. The whole
    /// append was refused and nothing was written. Two processes signing with one
    /// key produce this.
    #[error(
        "conflict: sled {author} seq {seq} is already held by op {existing}; refusing op {incoming}"
    )]
    Conflict {
        /// The author.
        author: AuthorId,
        /// The taken seq.
        seq: u64,
        /// The op that holds it.
        existing: OpId,
        /// The op that was refused.
        incoming: OpId,
    },
    /// Stored data is damaged.
    #[error("corrupt store data at {location}: {detail}")]
    Corrupt {
        /// Where: a row id, position or op id.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// The store cannot be reached or opened.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What could not be reached (never a password).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A bad configuration or argument.
    #[error("invalid store request: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// [`OpStore::append_after`] found the op it continues not stored when it took
    /// effect (the earlier append failed). Nothing was written.
    #[error("ordered append refused: the op it continues, {after}, is not stored")]
    MissingPredecessor {
        /// The op the refused append continues.
        after: OpId,
    },
    /// The store does not exist, and the caller asked not to create it (reading
    /// tools never create a store): a mistyped path, a missing schema.
    #[error("store not found: {what}")]
    NotFound {
        /// What is missing (a path, a schema; never a password).
        what: String,
    },
    /// Another backend failure.
    #[error("store backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// A copy keeps the kind, the fields and the text of the source chain (sources are
/// not `Clone`, so a copy's source is their rendered text). Used to give every caller
/// of a failed group commit the same error.
impl Clone for StoreError {
    fn clone(&self) -> Self {
        fn text(source: &Option<BoxError>) -> Option<BoxError> {
            source.as_ref().map(|s| {
                let mut t = s.to_string();
                let mut next = s.source();
                while let Some(c) = next {
                    t.push_str(": ");
                    t.push_str(&c.to_string());
                    next = c.source();
                }
                t.into()
            })
        }
        match self {
            StoreError::Conflict {
                author,
                seq,
                existing,
                incoming,
            } => StoreError::Conflict {
                author: *author,
                seq: *seq,
                existing: *existing,
                incoming: *incoming,
            },
            StoreError::Corrupt { location, detail } => StoreError::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            },
            StoreError::Unavailable { message, source } => StoreError::Unavailable {
                message: message.clone(),
                source: text(source),
            },
            StoreError::Invalid { message } => StoreError::Invalid {
                message: message.clone(),
            },
            StoreError::MissingPredecessor { after } => {
                StoreError::MissingPredecessor { after: *after }
            }
            StoreError::NotFound { what } => StoreError::NotFound { what: what.clone() },
            StoreError::Backend { message, source } => StoreError::Backend {
                message: message.clone(),
                source: text(source),
            },
        }
    }
}

impl StoreError {
    /// The kind of this error.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Conflict { .. } => StoreErrorKind::Conflict,
            StoreError::Corrupt { .. } => StoreErrorKind::Corrupt,
            StoreError::Unavailable { .. } => StoreErrorKind::Unavailable,
            StoreError::Invalid { .. } => StoreErrorKind::Invalid,
            StoreError::MissingPredecessor { .. } => StoreErrorKind::MissingPredecessor,
            StoreError::NotFound { .. } => StoreErrorKind::NotFound,
            StoreError::Backend { .. } => StoreErrorKind::Backend,
        }
    }

    /// A backend error with a source.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unavailable error with a source.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A corrupt-data error.
    pub fn corrupt(location: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            location: location.into(),
            detail: detail.into(),
        }
    }
}

/// A durable home for ops: the plugin trait every backend implements.
///
/// The conformance suite (crate `event-log-conformance`) checks every invariant listed here;
/// run it against your store with one macro call.
///
/// All methods take `&self`: a store is shared by the tasks of one
/// [`crate::EventLog`] and must be safe to call concurrently.
#[async_trait]
pub trait OpStore: Send + Sync + 'static {
    /// Appends ops, atomically and durably.
    ///
    /// ### To ensure correctness
    /// - **Atomic**: either every new op of the call is stored or none is.
    /// - **Durable**: when `Ok` is returned, the ops survive a process crash (and a
    ///   power loss, per the backend's documented durability mode).
    /// - **Idempotent by id**: an op whose id is already stored is skipped silently,
    ///   whether alone or mixed with new ops; its stored row is not changed.
    /// - **Conflict**: a non-evidence op whose `(author, seq)` is held by a *different*
    ///   non-evidence op fails the whole call with [`StoreError::Conflict`] and writes
    ///   nothing. Evidence ops (`evidence == true`) may share an `(author, seq)`.
    ///   Two non-evidence ops in one call with one `(author, seq)` also conflict.
    ///   [`rules::plan_append`] applies these three rules for a backend.
    /// - **Order**: new ops get positions after every op already stored, in the order
    ///   of the slice. Callers hand ops in causal order, so load order is causal.
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError>;

    /// How many appends of one writer may be in flight at once through
    /// [`OpStore::append_after`]. The default, 1, means none are pipelined: the log
    /// waits for each append before the next. A store returning more must honour
    /// `append_after`'s ordering and guard (the conformance suite checks both).
    fn append_pipeline(&self) -> usize {
        1
    }

    /// Appends `ops` that continue the op `after` (the last op of the same writer's
    /// previous append, which may still be in flight), or with `after == None`, ops
    /// that need no check but must still come after the writer's earlier calls.
    ///
    /// ### To ensure correctness
    /// Everything [`OpStore::append`] promises, and:
    /// - **Guarded**: if `after` is not stored when this append takes effect, nothing
    ///   is written and it fails with [`StoreError::MissingPredecessor`]. So a failed
    ///   append never leaves a later one stored after a hole.
    /// - **Ordered** (stores with [`OpStore::append_pipeline`] > 1): calls take effect
    ///   in the order their futures were first polled, each after the previous one
    ///   finished (committed or failed).
    ///
    /// The default checks `after` and then appends: correct for callers that await
    /// each append before the next, which is how the log uses a store whose
    /// `append_pipeline` is 1.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        if let Some(after) = after
            && self.get(after).await?.is_none()
        {
            return Err(StoreError::MissingPredecessor { after: *after });
        }
        self.append(ops).await
    }

    /// Ops in append order, for replay: those at positions after `after`, at most
    /// `limit` of them (`limit >= 1`).
    ///
    /// ### To ensure correctness
    /// - Positions are strictly increasing in the result and across calls; paging with
    ///   the last returned position visits every op exactly once.
    /// - Bytes are returned exactly as appended.
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError>;

    /// Ops a peer lacks: every op (evidence included) whose `seq` is above
    /// `vv.get(author)`, ordered by author bytes, then seq, then id.
    ///
    /// ### To ensure correctness
    /// - Returns at most `limit` ops, except that it never splits the ops of one
    ///   `(author, seq)`: it may exceed `limit` by the evidence ops of the last seq.
    ///   So raising `vv` to the highest seq returned per author and calling again
    ///   visits every op exactly once.
    /// - Safe for tailing: an op committed after a call is found by the next call with
    ///   the raised vector (never keyed on a global serial that commits can overtake).
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError>;

    /// Highest seq per author over the stored ops.
    async fn heads(&self) -> Result<VersionVector, StoreError>;

    /// One op by id, or `None`.
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError>;

    /// Number of ops stored (evidence included).
    async fn count(&self) -> Result<u64, StoreError>;

    /// Every op stored as equivocation evidence (`evidence == true`), ordered by
    /// author, seq, id.
    ///
    /// Followers of a shared store call it to find forks that [`OpStore::since`]
    /// cannot show them: a second op at a seq they already hold.
    ///
    /// The default pages through [`OpStore::load`] (correct, O(n) per call): a store
    /// that keeps an index of its evidence ops should answer from it.
    ///
    /// ### To ensure correctness
    /// - Returns exactly the stored ops appended with `evidence == true`, each once.
    /// - Safe for tailing: evidence committed before the call is in the result.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        let mut out = Vec::new();
        let mut after = Position::START;
        loop {
            let page = self.load(after, 4096).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            out.extend(page.iter().filter(|(_, r)| r.evidence).map(|(_, r)| OpKey {
                author: r.author,
                seq: r.seq,
                id: r.id,
            }));
        }
        out.sort();
        Ok(out)
    }

    /// Takes this process's exclusive right to append ops authored by `sled`, held
    /// until the store is closed or dropped; waits while another session of the
    /// same sled holds it (a process that was killed, whose last statement may still
    /// commit), up to the store's timeout, then fails with
    /// [`StoreError::Unavailable`].
    ///
    /// [`crate::EventLog::open`] calls it before reading the sled's frontier, so
    /// what a previous process of this sled wrote is visible to it. Optional: the
    /// default does nothing, which is right for stores that one process opens at a
    /// time (a locked file) or that cannot outlive their process; the log also
    /// resolves a conflict on its own seq by catching up and re-sequencing.
    ///
    /// ### To ensure correctness
    /// - While one store value holds the right for `sled`, another session calling
    ///   this for the same `sled` waits or fails; it never returns `Ok`.
    /// - Everything the previous holder's session wrote is visible to reads made
    ///   after this returns.
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        let _ = sled;
        Ok(())
    }

    /// Reads a small value kept beside the ops under `key` (the log keeps a signed
    /// replay checkpoint there, so a reopen need not re-verify every signature).
    ///
    /// Optional. The default keeps nothing: a log over such a store verifies every
    /// signature on every open, which is correct, only slower.
    ///
    /// ### To ensure correctness
    /// - Returns exactly the bytes of the last [`OpStore::put_meta`] for `key`, or `None`.
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// Stores a small value under `key`, replacing any previous one. Optional, see
    /// [`OpStore::get_meta`]; the default does nothing.
    ///
    /// ### To ensure correctness
    /// - Atomic: a reader sees the old value or the new one, never a mix.
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let _ = (key, value);
        Ok(())
    }

    /// Flushes and releases resources. Optional: stores are durable at every append,
    /// so dropping a store without `close` loses nothing; the default does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl<S: OpStore + ?Sized> OpStore for std::sync::Arc<S> {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        (**self).append(ops).await
    }
    fn append_pipeline(&self) -> usize {
        (**self).append_pipeline()
    }
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        (**self).append_after(after, ops).await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        (**self).load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        (**self).since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        (**self).heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        (**self).get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        (**self).count().await
    }
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        (**self).evidence().await
    }
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        (**self).acquire_sled(sled).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).put_meta(key, value).await
    }
    async fn close(&self) -> Result<(), StoreError> {
        (**self).close().await
    }
}

#[async_trait]
impl<S: OpStore + ?Sized> OpStore for Box<S> {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        (**self).append(ops).await
    }
    fn append_pipeline(&self) -> usize {
        (**self).append_pipeline()
    }
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        (**self).append_after(after, ops).await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        (**self).load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        (**self).since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        (**self).heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        (**self).get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        (**self).count().await
    }
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        (**self).evidence().await
    }
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        (**self).acquire_sled(sled).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).put_meta(key, value).await
    }
    async fn close(&self) -> Result<(), StoreError> {
        (**self).close().await
    }
}
