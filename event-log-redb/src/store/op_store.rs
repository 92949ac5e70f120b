//! The [`OpStore`] methods of [`RedbStore`]: appends queued to the writer thread,
//! reads on the blocking pool, and a clean close.

use std::sync::Arc;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{Causal, OpKey, OpRecord, OpStore, Position, StoreDescription, StoreError};
use tracing::{info, warn};

use super::RedbStore;
use super::handle::{Handle, blocking};
use crate::error;
use crate::meta;
use crate::read::{self, author, causal};
use crate::tables;
use crate::writer::{PendingOp, Writer};

#[async_trait]
impl OpStore for RedbStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        let writer = self.writer("append ops")?;
        if ops.is_empty() {
            return Ok(());
        }
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        writer.append(pending, None).await
    }

    fn append_pipeline(&self) -> usize {
        self.pipeline
    }

    /// Queued to the writer thread when first polled, written in queue order; the
    /// guard is checked in the write transaction.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        let writer = self.writer("append ops")?;
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        writer.append(pending, after.map(|a| a.0)).await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.read(move |db| read::load(db, after, limit)).await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let vv = vv.clone();
        self.read(move |db| author::since(db, &vv, limit)).await
    }

    /// One range of `ops_by_author`.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let author = *author;
        self.read(move |db| author::author_ops(db, &author, after, limit))
            .await
    }

    /// One range of `ops_by_causal`.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let after = *after;
        self.read(move |db| causal::timeline(db, &after, limit))
            .await
    }

    /// One range of `ops_by_story`.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (story, after) = (story.to_owned(), *after);
        self.read(move |db| causal::story_ops(db, &story, &after, limit))
            .await
    }

    /// One range of `ops_by_key`.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (author, key) = (*author, key.to_owned());
        self.read(move |db| author::keyed(db, &author, &key, limit))
            .await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.read(author::heads).await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        let id = *id;
        self.read(move |db| read::get(db, &id)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(read::count).await
    }

    /// From the indexes, keys only: the `ops_by_author` entries that are not the
    /// primary op of their (author, seq). No record is read.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        self.read(author::evidence).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.read(move |db| meta::get_meta(db, &key)).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let Handle::Writable(db) = self.db()? else {
            return Err(self.read_only("write a meta value"));
        };
        let (key, value) = (key.to_owned(), value.to_vec());
        blocking(move || meta::put_meta(&db, &key, &value)).await
    }

    fn describe(&self) -> StoreDescription {
        let durability = if self.two_phase_commit {
            "Durability::Immediate, two-phase commit"
        } else {
            "Durability::Immediate"
        };
        StoreDescription::new("redb", durability)
            .with_schema_version(u32::try_from(tables::FORMAT_VERSION).unwrap_or(u32::MAX))
            .with_read_only(self.is_read_only())
    }

    /// Commits what is queued, stops the writer thread and releases the file.
    /// Later calls fail with [`StoreError::Unavailable`]; closing twice is `Ok`.
    async fn close(&self) -> Result<(), StoreError> {
        let thread = self.writer.as_ref().and_then(Writer::stop);
        let slot = self.db.clone();
        let path = self.path.clone();
        blocking(move || {
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                warn!(path = %path.display(), "the redb writer thread had panicked");
            }
            // Taken after the writer stopped: it may have reopened the database.
            let db = slot.write().take();
            // Close explicitly to see errors, unless a read still holds the database
            // (it then closes when that read ends).
            let closing = || format!("closing {}", path.display());
            match db {
                Some(Handle::Writable(db)) => {
                    if let Ok(db) = Arc::try_unwrap(db) {
                        db.close().map_err(|e| error::storage(closing(), e))?;
                    }
                }
                Some(Handle::ReadOnly(db)) => {
                    if let Ok(db) = Arc::try_unwrap(db) {
                        db.close().map_err(|e| error::storage(closing(), e))?;
                    }
                }
                None => {}
            }
            info!(path = %path.display(), "closed redb store");
            Ok(())
        })
        .await
    }
}
