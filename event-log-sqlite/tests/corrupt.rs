//! Damaged rows are reported as `StoreError::Corrupt` naming the position and the
//! column, never as a panic.

mod common;

use common::*;
use event_log_core::{OpStore, Position, StoreError, VersionVector};

async fn damaged(update: &str) -> (tempfile::TempDir, event_log_sqlite::SqliteStore) {
    let (dir, path, store) = fresh().await;
    store.append(&chain(1, 3)).await.unwrap();
    let changed = raw(&path).execute(update, []).unwrap();
    assert_eq!(changed, 1);
    (dir, store)
}

fn assert_corrupt(err: StoreError, position: u64, column: &str) {
    match err {
        StoreError::Corrupt { location, detail } => {
            assert!(
                location.contains(&format!("#{position}")),
                "location {location:?} should name position {position}"
            );
            assert!(
                detail.contains(&format!("column {column}")),
                "detail {detail:?} should name column {column}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A short id makes `load` fail with `Corrupt` at that position.
#[tokio::test]
async fn short_id_is_corrupt() {
    let (_dir, store) = damaged("UPDATE ops SET id = x'00' WHERE position = 2").await;
    assert_corrupt(store.load(Position::START, 10).await.unwrap_err(), 2, "id");
    // Rows before it still load.
    assert_eq!(store.load(Position::START, 1).await.unwrap().len(), 1);
}

/// Each damaged column is named, for `load`, `since` and `get` alike.
#[tokio::test]
async fn every_column_is_checked() {
    let cases = [
        (
            "UPDATE ops SET author = x'0102' WHERE position = 3",
            "author",
        ),
        ("UPDATE ops SET seq = -4 WHERE position = 3", "seq"),
        ("UPDATE ops SET seq = 'x' WHERE position = 3", "seq"),
        ("UPDATE ops SET evidence = 2 WHERE position = 3", "evidence"),
        (
            "UPDATE ops SET payload = x'ff00' WHERE position = 3",
            "payload",
        ),
        ("UPDATE ops SET bytes = 'text' WHERE position = 3", "bytes"),
        ("UPDATE ops SET id = 42 WHERE position = 3", "id"),
    ];
    for (update, column) in cases {
        let (_dir, store) = damaged(update).await;
        assert_corrupt(store.load(Position(2), 5).await.unwrap_err(), 3, column);
    }
    // `since` and `heads` meet a damaged author or seq too.
    let (_dir, store) = damaged("UPDATE ops SET author = x'0102' WHERE position = 3").await;
    assert_corrupt(
        store.since(&VersionVector::new(), 10).await.unwrap_err(),
        3,
        "author",
    );
    assert_corrupt(store.heads().await.unwrap_err(), 3, "author");
    let (_dir, store) = damaged("UPDATE ops SET seq = 'x' WHERE position = 3").await;
    assert_corrupt(store.heads().await.unwrap_err(), 3, "seq");
    assert_corrupt(
        store.since(&VersionVector::new(), 10).await.unwrap_err(),
        3,
        "seq",
    );
    // `get` of a row whose other columns are damaged.
    let (_dir, path, store) = fresh().await;
    let ops = chain(1, 2);
    store.append(&ops).await.unwrap();
    raw(&path)
        .execute("UPDATE ops SET evidence = 'yes' WHERE position = 2", [])
        .unwrap();
    assert_corrupt(store.get(&ops[1].id).await.unwrap_err(), 2, "evidence");
}
