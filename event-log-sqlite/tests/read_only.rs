//! Opening a store read-only: nothing is created, migrated or written; a missing
//! file is `NotFound` naming it; writes are refused.

mod common;

use common::*;
use event_log_conformance::file::{entries, missing_file_read_only};
use event_log_core::{OpStore, StoreErrorKind};
use event_log_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteStore};

/// A mistyped path is `NotFound` naming it, and no file is created (before, the
/// open created an empty database there and migrated it); also in a directory that
/// does not exist.
#[tokio::test]
async fn read_only_open_of_a_missing_file_is_not_found_and_creates_nothing() {
    missing_file_read_only("events.db", SqliteStore::open_read_only).await;
}

/// A read-only store reads everything and refuses every write, writing nothing.
#[tokio::test]
async fn read_only_store_reads_and_refuses_writes() {
    let (dir, path, store) = fresh().await;
    let ops = chain(1, 5);
    store.append(&ops).await.unwrap();
    store.put_meta("k", b"v").await.unwrap();
    let before = all(&store).await;
    store.close().await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let names = entries(dir.path());

    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert!(ro.config().read_only);
    assert_eq!(all(&ro).await, before);
    assert_eq!(ro.count().await.unwrap(), 5);
    assert_eq!(ro.heads().await.unwrap().get(&ops[0].author), 5);
    assert_eq!(ro.get(&ops[2].id).await.unwrap().as_ref(), Some(&ops[2]));
    assert_eq!(ro.get_meta("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(ro.evidence().await.unwrap().is_empty());
    for err in [
        ro.append(&chain(2, 1)).await.unwrap_err(),
        ro.append_after(None, &chain(2, 1)).await.unwrap_err(),
        ro.put_meta("k", b"w").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    ro.close().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was written");
    // SQLite's read-only connections may leave its WAL index and an empty WAL
    // (they cannot delete them); nothing is written to either.
    let extra: Vec<String> = entries(dir.path())
        .into_iter()
        .filter(|f| !names.contains(f))
        .collect();
    for f in &extra {
        assert!(f == "events.db-shm" || f == "events.db-wal", "{extra:?}");
    }
    if let Ok(wal) = std::fs::metadata(dir.path().join("events.db-wal")) {
        assert_eq!(wal.len(), 0, "the WAL was written");
    }
}

/// A read-only store sees what a writer (another connection) commits after it
/// opened.
#[tokio::test]
async fn read_only_store_sees_later_commits_of_a_writer() {
    let (_dir, path, store) = fresh().await;
    let ops = chain(1, 4);
    store.append(&ops[..2]).await.unwrap();
    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(ro.count().await.unwrap(), 2);
    store.append(&ops[2..]).await.unwrap();
    assert_eq!(ro.count().await.unwrap(), 4);
    assert_eq!(all(&ro).await, all(&store).await);
}

/// A file with an older schema is refused read-only (it would need migrating),
/// with a message saying to open it writable once, and is left as it was; a
/// writable open then migrates it.
#[tokio::test]
async fn read_only_open_refuses_an_older_schema_and_does_not_migrate() {
    let (_dir, path) = location();
    let ops = chain(1, 2);
    write_v3(&path, &ops);
    let err = SqliteStore::open_read_only(&path).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("version 3") && text.contains("writable"),
        "{text}"
    );
    let version: i64 = raw(&path)
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "a read-only open migrated the file");

    let store = SqliteStore::open_default(&path).await.unwrap();
    store.close().await.unwrap();
    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(ro.count().await.unwrap(), 2);
    let loaded: Vec<_> = all(&ro).await.into_iter().map(|(_, r)| r).collect();
    assert_eq!(loaded, ops, "the migrated rows read back as appended");
    assert_eq!(SCHEMA_VERSION, 4);
}

/// A file that is no event-log store (say an empty one a buggy tool created) is
/// refused read-only, not taken for an empty log, and stays empty.
#[tokio::test]
async fn read_only_open_refuses_a_file_without_the_schema() {
    let (_dir, path) = location();
    std::fs::write(&path, b"").unwrap();
    let err = SqliteStore::open_read_only(&path).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("no event-log store"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // `read_only` in a config works like `open_read_only`.
    let config = SqliteConfig::default().with_read_only(true);
    let err = SqliteStore::open(&path, config).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
}
