//! `OpStore` through a smart pointer: an `Arc<S>` or a `Box<S>` is the store `S`.

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};

use super::{Causal, OpKey, OpRecord, OpStore, Position, StoreDescription, StoreError};

/// Implements [`OpStore`] for a pointer type by forwarding every method to the
/// store it points to (so the pointer keeps the store's own defaults and overrides).
macro_rules! forward_op_store {
    ($($pointer:ident)::+) => {
        #[async_trait]
        impl<S: OpStore + ?Sized> OpStore for $($pointer)::+<S> {
            async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
                (**self).append(ops).await
            }
            fn append_pipeline(&self) -> usize {
                (**self).append_pipeline()
            }
            async fn append_after(
                &self,
                after: Option<&OpId>,
                ops: &[OpRecord],
            ) -> Result<(), StoreError> {
                (**self).append_after(after, ops).await
            }
            async fn load(
                &self,
                after: Position,
                limit: usize,
            ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
                (**self).load(after, limit).await
            }
            async fn since(
                &self,
                vv: &VersionVector,
                limit: usize,
            ) -> Result<Vec<OpRecord>, StoreError> {
                (**self).since(vv, limit).await
            }
            async fn author_ops(
                &self,
                author: &AuthorId,
                after: u64,
                limit: usize,
            ) -> Result<Vec<OpRecord>, StoreError> {
                (**self).author_ops(author, after, limit).await
            }
            async fn timeline(
                &self,
                after: &Causal,
                limit: usize,
            ) -> Result<Vec<OpRecord>, StoreError> {
                (**self).timeline(after, limit).await
            }
            async fn story_ops(
                &self,
                story: &str,
                after: &Causal,
                limit: usize,
            ) -> Result<Vec<OpRecord>, StoreError> {
                (**self).story_ops(story, after, limit).await
            }
            async fn keyed(
                &self,
                author: &AuthorId,
                key: &str,
                limit: usize,
            ) -> Result<Vec<OpRecord>, StoreError> {
                (**self).keyed(author, key, limit).await
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
            fn describe(&self) -> StoreDescription {
                (**self).describe()
            }
            async fn close(&self) -> Result<(), StoreError> {
                (**self).close().await
            }
        }
    };
}

forward_op_store!(std::sync::Arc);
forward_op_store!(Box);
