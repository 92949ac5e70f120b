//! The shared conformance suite, run against [`RedbStore`].

use std::path::PathBuf;

use async_trait::async_trait;
use event_log_conformance::StoreHarness;
use event_log_core::{OpStore, StoreError};
use event_log_redb::{RedbConfig, RedbStore};
use tempfile::TempDir;

/// Stores in a file inside a fresh temp dir; the dir is the guard.
struct RedbHarness;

#[async_trait]
impl StoreHarness for RedbHarness {
    type Store = RedbStore;
    type Location = PathBuf;
    type Guard = TempDir;

    async fn create(&self) -> Result<(TempDir, PathBuf), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::unavailable("temp dir", e))?;
        let path = dir.path().join("store.redb");
        Ok((dir, path))
    }

    async fn open(&self, location: &PathBuf) -> Result<RedbStore, StoreError> {
        RedbStore::open(location, RedbConfig::default()).await
    }
}

/// The harness creates a location, opens it, and reopens it after a drop without close.
#[tokio::test]
async fn harness_opens_and_reopens() {
    let h = RedbHarness;
    let (_guard, location) = h.create().await.unwrap();
    let store = h.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    drop(store);
    let store = h.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
}

// One #[test] per conformance scenario.
event_log_conformance::store_tests!(RedbHarness);
