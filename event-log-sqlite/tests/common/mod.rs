//! Helpers shared by the tests: signed ops, fresh stores, raw connections.
#![allow(dead_code)]

use std::path::PathBuf;

use bft_json_crdt::{Op, OpId, SignedOp, SigningKey};
use event_log_core::{OpRecord, OpStore, Position};
use event_log_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

/// The signing key of test sled `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A signed op of sled `n` at `seq`, depending on `deps`, with a JSON payload that
/// carries `tag` (different tags give different ids at one seq).
pub fn signed(n: u8, seq: u64, deps: Vec<OpId>, tag: &str) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: seq,
        deps,
        payload: format!(r#"{{"sled":{n},"seq":{seq},"tag":"{tag}"}}"#).into_bytes(),
    }
    .sign(&key(n))
}

/// A primary op record of sled `n` at `seq`.
pub fn rec(n: u8, seq: u64, tag: &str) -> OpRecord {
    OpRecord::new(&signed(n, seq, Vec::new(), tag), false)
}

/// An equivocation-evidence record of sled `n` at `seq`.
pub fn evidence(n: u8, seq: u64, tag: &str) -> OpRecord {
    OpRecord::new(&signed(n, seq, Vec::new(), tag), true)
}

/// Sled `n`'s ops `1..=len`, each depending on the previous one.
pub fn chain(n: u8, len: u64) -> Vec<OpRecord> {
    let mut out: Vec<OpRecord> = Vec::new();
    for seq in 1..=len {
        let deps = out.last().map(|r| vec![r.id]).unwrap_or_default();
        out.push(OpRecord::new(&signed(n, seq, deps, "main"), false));
    }
    out
}

/// A fresh temp dir and the path of a database file inside it.
pub fn location() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    (dir, path)
}

/// A fresh store with the default config.
pub async fn fresh() -> (TempDir, PathBuf, SqliteStore) {
    let (dir, path) = location();
    let store = SqliteStore::open(&path, SqliteConfig::default())
        .await
        .unwrap();
    (dir, path, store)
}

/// Every op, with its position, in append order.
pub async fn all(store: &impl OpStore) -> Vec<(Position, OpRecord)> {
    store.load(Position::START, usize::MAX).await.unwrap()
}

/// A raw rusqlite connection to the file, for poking at it behind the store's back.
pub fn raw(path: &PathBuf) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// The schema at version 3 (before the index columns lamport, story and key), as
/// that version's migrations left it.
pub const SCHEMA_V3: &str = "
    CREATE TABLE schema_version (
        version    INTEGER PRIMARY KEY,
        applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE ops (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        id       BLOB    NOT NULL UNIQUE,
        author   BLOB    NOT NULL,
        seq      INTEGER NOT NULL,
        evidence INTEGER NOT NULL,
        payload  TEXT    NOT NULL,
        bytes    BLOB    NOT NULL
    );
    CREATE UNIQUE INDEX ops_primary ON ops (author, seq) WHERE evidence = 0;
    CREATE INDEX ops_author_seq_id ON ops (author, seq, id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE INDEX ops_evidence ON ops (author, seq, id) WHERE evidence <> 0;
    INSERT INTO schema_version (version) VALUES (1), (2), (3);";

/// Writes a new file at `path` at schema version 3 holding `records` in order
/// (their columns of that version; the index columns are dropped).
pub fn write_v3(path: &PathBuf, records: &[OpRecord]) {
    let mut conn = raw(path);
    let tx = conn.transaction().unwrap();
    tx.execute_batch(SCHEMA_V3).unwrap();
    for r in records {
        tx.execute(
            "INSERT INTO ops (id, author, seq, evidence, payload, bytes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                r.id.as_bytes(),
                r.author.as_bytes(),
                i64::try_from(r.seq).unwrap(),
                r.evidence,
                r.payload,
                r.bytes
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}
