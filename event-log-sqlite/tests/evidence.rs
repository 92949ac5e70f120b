//! `evidence()` answers from the partial index `ops_evidence` (schema version 3),
//! with exactly the default implementation's result.

mod common;

use common::*;
use event_log_core::{MemStore, OpStore};
use event_log_sqlite::SqliteStore;

/// Evidence ops of several sleds, stored out of order among primary ops, come back
/// ordered by (author, seq, id), each once, as from `MemStore`.
#[tokio::test]
async fn evidence_matches_the_default_and_is_ordered() {
    let (_dir, _path, store) = fresh().await;
    let mem = MemStore::new();
    let mut batches = vec![chain(2, 4), chain(1, 3)];
    batches.push(vec![evidence(2, 3, "fork-b"), evidence(1, 1, "fork")]);
    batches.push(vec![evidence(2, 3, "fork-a"), evidence(2, 1, "fork")]);
    // Stored twice: still once.
    batches.push(vec![evidence(1, 1, "fork")]);
    for b in &batches {
        store.append(b).await.unwrap();
        mem.append(b).await.unwrap();
    }
    let got = store.evidence().await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got, mem.evidence().await.unwrap());
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    // Read-only stores answer it too.
    store.close().await.unwrap();
    let ro = SqliteStore::open_read_only(&_path).await.unwrap();
    assert_eq!(ro.evidence().await.unwrap(), got);
}

/// A version 2 file (no `ops_evidence`) gets the index when opened writable, and
/// answers from it.
#[tokio::test]
async fn version_2_file_gets_the_evidence_index() {
    let (_dir, path, store) = fresh().await;
    store.append(&chain(1, 2)).await.unwrap();
    store.append(&[evidence(1, 2, "fork")]).await.unwrap();
    store.close().await.unwrap();
    raw(&path)
        .execute_batch("DROP INDEX ops_evidence; DELETE FROM schema_version WHERE version > 2;")
        .unwrap();
    let store = SqliteStore::open_default(&path).await.unwrap();
    assert_eq!(store.evidence().await.unwrap().len(), 1);
    let found: i64 = raw(&path)
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'ops_evidence'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1);
}
