//! Opening and the schema. (Reopening after `close` or a drop, and calls after
//! `close`, are the conformance scenario `close_then_reopen_keeps_everything`.)

mod common;

use common::*;
use event_log_conformance::assert::fails_with;
use event_log_core::{OpStore, StoreErrorKind};
use event_log_sqlite::{Durability, SCHEMA_VERSION, SqliteConfig, SqliteStore};

/// The file has a `schema_version` table at the current version, the `ops` table
/// with readable JSON payloads, and runs in WAL mode.
#[tokio::test]
async fn schema_version_table_is_present() {
    let (_dir, path, store) = fresh().await;
    store.append(&chain(1, 1)).await.unwrap();
    let conn = raw(&path);
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::from(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 4);
    let payload: String = conn
        .query_row("SELECT payload FROM ops", [], |r| r.get(0))
        .unwrap();
    assert!(payload.starts_with("{\"sled\":1"), "{payload}");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Reopening does not migrate again.
    store.close().await.unwrap();
    SqliteStore::open_default(&path).await.unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows,
        i64::from(SCHEMA_VERSION),
        "one row per migration, none again"
    );
}

/// A file written by a newer schema is refused with `Invalid`, naming both versions.
#[tokio::test]
async fn newer_schema_is_refused() {
    let (_dir, path, store) = fresh().await;
    store.close().await.unwrap();
    raw(&path)
        .execute("INSERT INTO schema_version (version) VALUES (7)", [])
        .unwrap();
    fails_with(
        SqliteStore::open_default(&path).await,
        StoreErrorKind::Invalid,
        &["version 7", "up to 4"],
    );
}

/// A file that cannot be opened is `Unavailable`, and the error names the path.
#[tokio::test]
async fn unopenable_file_is_unavailable_naming_the_path() {
    let (dir, _) = location();
    let path = dir.path().join("no-such-dir").join("events.db");
    let err = SqliteStore::open_default(&path).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    // A missing file with `create_if_missing = false` is `NotFound`, naming it.
    let missing = dir.path().join("missing.db");
    let config = SqliteConfig::default().with_create_if_missing(false);
    let err = SqliteStore::open(&missing, config).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("missing.db"), "{err}");
    assert!(!missing.exists());
}

/// A file that is not a SQLite database is reported as corrupt, not a panic.
#[tokio::test]
async fn garbage_file_is_corrupt() {
    let (_dir, path) = location();
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open_default(&path).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
}

/// A config the store cannot use is refused with `Invalid`.
#[tokio::test]
async fn bad_config_is_invalid() {
    let (_dir, path) = location();
    for config in [
        SqliteConfig::default().with_readers(0),
        SqliteConfig::default().with_max_group(0),
    ] {
        let err = SqliteStore::open(&path, config).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid);
    }
}

/// `Durability::Normal` stores and reopens the same way.
#[tokio::test]
async fn normal_durability_round_trips() {
    let (_dir, path) = location();
    let config = SqliteConfig::default().with_durability(Durability::Normal);
    let store = SqliteStore::open(&path, config.clone()).await.unwrap();
    let ops = chain(1, 3);
    store.append(&ops).await.unwrap();
    store.close().await.unwrap();
    let store = SqliteStore::open(&path, config).await.unwrap();
    let loaded: Vec<_> = all(&store).await.into_iter().map(|(_, r)| r).collect();
    assert_eq!(loaded, ops);
}

/// Two stores on one file (two processes) serialise their writes and see each other's.
#[tokio::test]
async fn two_stores_on_one_file() {
    let (_dir, path, a) = fresh().await;
    let b = SqliteStore::open_default(&path).await.unwrap();
    a.append(&chain(1, 2)).await.unwrap();
    b.append(&chain(2, 2)).await.unwrap();
    // The same key in both: the second is caught as a conflict.
    let err = b.append(&[rec(1, 1, "other")]).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    assert_eq!(a.count().await.unwrap(), 4);
    assert_eq!(b.count().await.unwrap(), 4);
}

/// A version-1 file (before the meta table) is migrated in place on open, to the
/// current version.
#[tokio::test]
async fn version_1_file_is_migrated() {
    let (_dir, path) = location();
    {
        let conn = raw(&path);
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
             CREATE TABLE ops (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                id BLOB NOT NULL UNIQUE, author BLOB NOT NULL, seq INTEGER NOT NULL,
                evidence INTEGER NOT NULL, payload TEXT NOT NULL, bytes BLOB NOT NULL);
             CREATE UNIQUE INDEX ops_primary ON ops (author, seq) WHERE evidence = 0;
             CREATE INDEX ops_author_seq_id ON ops (author, seq, id);
             INSERT INTO schema_version (version) VALUES (1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, SqliteConfig::default())
        .await
        .unwrap();
    store.put_meta("k", b"v").await.unwrap();
    assert_eq!(
        store.get_meta("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    let version: i64 = raw(&path)
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::from(SCHEMA_VERSION));
}
