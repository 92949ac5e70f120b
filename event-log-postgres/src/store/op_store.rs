//! The [`OpStore`] methods of [`PostgresStore`]: they delegate to the `append` and
//! `read` modules over the shared state.

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{Causal, OpKey, OpRecord, OpStore, Position, StoreDescription, StoreError};

use super::PostgresStore;
use crate::schema;
use crate::{append, read};

#[async_trait]
impl OpStore for PostgresStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        append::batch(&self.inner, ops).await
    }

    fn append_pipeline(&self) -> usize {
        self.inner.pipeline
    }

    /// Runs on the store's one ordered-append connection, in call order; the op
    /// `after` is looked up in the same statement that inserts.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        append::ordered(&self.inner, after, ops).await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        read::load(&self.inner, after, limit).await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        read::since(&self.inner, vv, limit).await
    }

    /// One range of the `(author, seq, id)` index, completed to the last seq.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::author_ops(&self.inner, author, after, limit).await
    }

    /// One range of the `(lamport, id)` index.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        read::timeline(&self.inner, after, limit).await
    }

    /// One range of the partial `(story, lamport, id)` index.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::story_ops(&self.inner, story, after, limit).await
    }

    /// One range of the partial `(author, key, seq, id)` index.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::keyed(&self.inner, author, key, limit).await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        read::heads(&self.inner).await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        read::get(&self.inner, id).await
    }

    /// From the partial index on evidence rows.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        read::evidence(&self.inner).await
    }

    /// Takes the sled's writer lock: a session-level advisory lock held by the
    /// store's writer session, over which every later write of the store goes. Waits
    /// up to [`crate::PostgresConfig::sled_lock_timeout`] for another session holding
    /// it (a previous process whose last statement may still be running), then fails
    /// with `Unavailable`. A read-only store takes no lock.
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        self.inner.acquire_sled(sled).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        read::count(&self.inner).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read::get_meta(&self.inner, key).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.refuse_if_read_only("writing a meta value")?;
        read::put_meta(&self.inner, key, value).await
    }

    fn describe(&self) -> StoreDescription {
        StoreDescription::new(
            "postgres",
            format!("synchronous_commit={}", self.synchronous_commit),
        )
        .with_schema_version(schema::SCHEMA_VERSION.unsigned_abs())
        .with_read_only(self.inner.read_only)
    }

    /// Closes the pool and the writer session (releasing the sleds' locks): later
    /// calls on this store (and its clones) fail with `Unavailable`. Listeners ([`PostgresStore::listen`])
    /// keep their own connections.
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.lane.lock().await.clear();
        self.inner.pool.close();
        Ok(())
    }
}
