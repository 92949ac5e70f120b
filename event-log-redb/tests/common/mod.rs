//! Helpers shared by the integration tests: real signed ops and fresh stores.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bft_json_crdt::{Op, OpId, SigningKey};
use event_log_core::{OpRecord, OpStore, Position};
use event_log_redb::{RedbConfig, RedbStore};

/// A real signed op by key `n` at `seq`, as a store record.
pub fn rec(n: u8, seq: u64, payload: &str, evidence: bool) -> OpRecord {
    rec_deps(n, seq, Vec::new(), payload, evidence)
}

/// Like [`rec`], with deps.
pub fn rec_deps(n: u8, seq: u64, deps: Vec<OpId>, payload: &str, evidence: bool) -> OpRecord {
    let signed = Op {
        author: Default::default(),
        seq,
        lamport: seq,
        deps,
        payload: payload.as_bytes().to_vec(),
    }
    .sign(&SigningKey::from_bytes(&[n; 32]));
    OpRecord::new(&signed, evidence)
}

/// A fresh directory and the store path inside it.
pub fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    (dir, path)
}

/// Opens the store at `path` with the default config.
pub async fn open(path: &Path) -> RedbStore {
    RedbStore::open(path, RedbConfig::default())
        .await
        .expect("open store")
}

/// The `ops` table as the crate docs define it: position → record bytes.
pub const OPS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("ops");

/// Overwrites the record at `position` through redb directly (the store is closed).
pub fn overwrite(path: &Path, position: u64, value: &[u8]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(OPS)
        .unwrap()
        .insert(position, value)
        .unwrap();
    txn.commit().unwrap();
}

/// The record at `position`, read through redb directly (the store is closed).
pub fn read_record(path: &Path, position: u64) -> Option<Vec<u8>> {
    use redb::ReadableDatabase;
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(OPS).unwrap();
    table.get(position).unwrap().map(|v| v.value().to_vec())
}

/// Every op of a store, in append order.
pub async fn all(store: &impl OpStore) -> Vec<(Position, OpRecord)> {
    store.load(Position::START, usize::MAX).await.expect("load")
}
