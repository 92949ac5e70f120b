//! `evidence()` answers from the partial index `ops_evidence` (schema version 3),
//! also read-only. (That it answers exactly as the default implementation does is
//! the conformance scenario `evidence_matches_the_reference`.)

mod common;

use common::*;
use event_log_core::OpStore;
use event_log_sqlite::SqliteStore;

/// A version 2 file (no `ops_evidence`) gets the index when opened writable, and
/// answers from it, as a read-only store of the file then does.
#[tokio::test]
async fn version_2_file_gets_the_evidence_index() {
    let (_dir, path) = location();
    let mut rows = chain(1, 2);
    rows.push(evidence(1, 2, "fork"));
    write_v3(&path, &rows);
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
    let want = store.evidence().await.unwrap();
    store.close().await.unwrap();
    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(ro.evidence().await.unwrap(), want);
}
