//! The shared conformance suite, run against `SqliteStore`.

mod common;

use std::path::PathBuf;

use async_trait::async_trait;
use event_log_conformance::{Damage, StoreHarness};
use event_log_core::{OpRecord, OpStore, Position, StoreError};
use event_log_sqlite::SqliteStore;
use tempfile::TempDir;

/// The ways a row is damaged by hand: a column set to a value of the wrong type or
/// size, the column the error must name, and whether `get` and `since` meet it.
const DAMAGE: [(&str, &str, bool); 9] = [
    ("payload = x'ff00'", "column payload", true),
    ("author = x'0102'", "column author", true),
    ("seq = 'x'", "column seq", true),
    ("evidence = 'yes'", "column evidence", true),
    ("seq = -4", "column seq", false),
    ("evidence = 2", "column evidence", false),
    ("bytes = 'text'", "column bytes", false),
    ("id = 42", "column id", false),
    ("id = x'00'", "column id", false),
];

/// Stores in a database file inside a fresh temp dir; the dir is the guard.
pub struct SqliteHarness;

#[async_trait]
impl StoreHarness for SqliteHarness {
    type Store = SqliteStore;
    type Location = PathBuf;
    type Guard = TempDir;

    async fn create(&self) -> Result<(TempDir, PathBuf), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::unavailable("create a temp dir for a test store", e))?;
        let path = dir.path().join("events.db");
        Ok((dir, path))
    }

    async fn open(&self, location: &PathBuf) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_default(location).await
    }

    async fn damage_row(
        &self,
        location: &PathBuf,
        position: Position,
        variant: usize,
    ) -> Result<Option<Damage>, StoreError> {
        let Some(&(set, names, every_reader)) = DAMAGE.get(variant) else {
            return Ok(None);
        };
        let update = format!("UPDATE ops SET {set} WHERE position = {}", position.0);
        let changed = common::raw(location)
            .execute(&update, [])
            .map_err(|e| StoreError::unavailable("damage a row", e))?;
        assert_eq!(changed, 1, "{update}");
        Ok(Some(Damage {
            names,
            every_reader,
        }))
    }
}

/// The harness gives a fresh empty location that reopens with what was appended,
/// also after a drop without `close` (what the suite's restart scenarios do).
#[tokio::test]
async fn harness_creates_and_reopens() {
    let harness = SqliteHarness;
    let (guard, location) = harness.create().await.unwrap();
    let store = harness.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    let key = bft_json_crdt::SigningKey::from_bytes(&[7; 32]);
    let op = bft_json_crdt::Op {
        author: Default::default(),
        seq: 1,
        lamport: 1,
        deps: Vec::new(),
        payload: br#"{"n":1}"#.to_vec(),
    }
    .sign(&key);
    store.append(&[OpRecord::new(&op, false)]).await.unwrap();
    drop(store);
    let store = harness.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    store.close().await.unwrap();
    drop(guard);
    assert!(!location.exists());
}

// One #[test] per conformance scenario.
event_log_conformance::store_tests!(SqliteHarness);
