//! The storage plugin trait, [`OpStore`], what it stores, its errors, and the
//! conflict rule every store applies ([`rules`]).
//!
//! A store is a durable home for ops. It never parses op bytes: it keeps what
//! [`OpRecord`] hands it (id, author, seq, the JSON payload in a readable column, the
//! canonical bytes, whether the op is equivocation evidence) and gives it back.
//! [`crate::EventLog`] decodes and verifies on the way out, so a damaged row is caught
//! there and reported as [`StoreError::Corrupt`].

mod describe;
mod error;
mod forward;
mod record;
pub mod rules;
pub mod url_query;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};

pub use describe::{Migration, SchemaStatus, StoreDescription};
pub use error::{BoxError, ConfigError, StoreError, StoreErrorKind};
pub use record::{Causal, IndexColumns, OpKey, OpRecord, Position};

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

    /// Ops of one author with seq above `after`, ordered by seq, then id (evidence
    /// included): the read by sled and seq, and the lookup of what an author holds
    /// at one seq (`author_ops(a, seq - 1, 1)`).
    ///
    /// ### To ensure correctness
    /// - Returns at most `limit` ops (`limit >= 1`), except that, as
    ///   [`OpStore::since`], it never splits the ops of one seq: resuming after the
    ///   highest seq returned visits every op of the author exactly once.
    /// - Costs O(k + log n) for k results: an index on `(author, seq, id)`.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError>;

    /// Ops after `after` in the causal order `(lamport, id)` (evidence included),
    /// at most `limit` (`limit >= 1`): the timeline, paged.
    ///
    /// ### To ensure correctness
    /// - Strictly ascending by [`OpRecord::causal`], every op above `after` once
    ///   across pages resumed from the last one returned.
    /// - Costs O(k + log n) for k results: an index on `(lamport, id)`.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError>;

    /// Ops whose [`OpRecord::story`] is `story`, after `after` in the causal order,
    /// at most `limit` (`limit >= 1`): one story's timeline, paged.
    ///
    /// ### To ensure correctness
    /// - As [`OpStore::timeline`], restricted to the story; costs O(k + log n) for
    ///   k results: an index on `(story, lamport, id)`.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError>;

    /// Ops of `author` whose [`OpRecord::key`] is `key` (an idempotency key),
    /// ordered by seq, then id, at most `limit` (`limit >= 1`).
    ///
    /// ### To ensure correctness
    /// - Exactly the stored ops of that author with that key, the first `limit` of
    ///   them; costs O(k + log n): an index on `(author, key)`.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError>;

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

    /// What the store says about itself, for operators (`evlog info`): its backend,
    /// schema version and durability mode. Cheap: known when the store was opened.
    ///
    /// Optional. The default names the store's Rust type and says that its
    /// durability is not described.
    fn describe(&self) -> StoreDescription {
        StoreDescription::new(std::any::type_name::<Self>(), "not described by the store")
    }

    /// Flushes and releases resources. Optional: stores are durable at every append,
    /// so dropping a store without `close` loses nothing; the default does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
