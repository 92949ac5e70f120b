//! The shared conformance suite, run against [`RedbStore`].

use std::path::PathBuf;

mod common;

use async_trait::async_trait;
use event_log_conformance::{Damage, StoreHarness};
use event_log_core::{OpStore, Position, StoreError};
use event_log_redb::{RedbConfig, RedbStore};
use tempfile::TempDir;

/// Records a damaged row is overwritten with: garbage, a truncated record, nothing.
const DAMAGE: [&[u8]; 3] = [b"garbage", &[1, 0, 7], &[]];

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

    async fn damage_row(
        &self,
        location: &PathBuf,
        position: Position,
        variant: usize,
    ) -> Result<Option<Damage>, StoreError> {
        let Some(value) = DAMAGE.get(variant) else {
            return Ok(None);
        };
        common::overwrite(location, position.0, value);
        Ok(Some(Damage {
            names: "",
            every_reader: true,
        }))
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
