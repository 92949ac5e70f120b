//! Opening: a locked file, foreign files and newer versions are clear errors.
//! (Everything acknowledged surviving a close or a drop is the conformance scenario
//! `close_then_reopen_keeps_everything`.)

mod common;

use common::{fresh, open, rec};
use event_log_conformance::assert::fails_with;
use event_log_core::{OpStore, StoreErrorKind};
use event_log_redb::{FORMAT_VERSION, RedbConfig, RedbStore};

/// A second open of a file that is in use fails with `Unavailable` naming the path.
#[tokio::test]
async fn a_locked_file_is_unavailable() {
    let (_dir, path) = fresh();
    let _first = open(&path).await;
    let err = RedbStore::open(&path, RedbConfig::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// A file that is not a redb database is refused with `Invalid` naming the path, and left alone.
#[tokio::test]
async fn a_foreign_file_is_invalid() {
    let (_dir, path) = fresh();
    let junk = b"this is not a redb database at all\n".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let err = RedbStore::open(&path, RedbConfig::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

/// A redb database of something else (tables, no format version) is refused with `Invalid`.
#[tokio::test]
async fn a_redb_file_of_another_app_is_invalid() {
    let (_dir, path) = fresh();
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("theirs"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path, RedbConfig::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("theirs"), "{err}");
}

/// A store written by a newer format version is refused with `Invalid` naming both versions.
#[tokio::test]
async fn a_newer_format_version_is_refused() {
    let (_dir, path) = fresh();
    open(&path).await.close().await.unwrap();
    let newer = FORMAT_VERSION + 1;
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("format_version", newer)
            .unwrap();
        txn.commit().unwrap();
    }
    fails_with(
        RedbStore::open(&path, RedbConfig::default()).await,
        StoreErrorKind::Invalid,
        &[
            &format!("version {newer}"),
            &format!("up to {FORMAT_VERSION}"),
            &path.display().to_string(),
        ],
    );
}

/// The non-default options open and work.
#[tokio::test]
async fn options_open_and_work() {
    let (_dir, path) = fresh();
    let config = RedbConfig::default()
        .with_two_phase_commit(true)
        .with_max_group(1)
        .with_cache_size(1 << 20)
        .with_check_integrity_on_open(true);
    let store = RedbStore::open(&path, config.clone()).await.unwrap();
    store.append(&[rec(1, 1, "a", false)]).await.unwrap();
    store.close().await.unwrap();
    let store = RedbStore::open(&path, config).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
}

/// A group or pipeline of 0 is refused with a config error naming the field (it was
/// once quietly read as 1).
#[tokio::test]
async fn zero_group_or_pipeline_is_refused_naming_the_field() {
    let (_dir, path) = fresh();
    for (config, field) in [
        (RedbConfig::default().with_max_group(0), "max_group"),
        (RedbConfig::default().with_pipeline(0), "pipeline"),
    ] {
        match RedbStore::open(&path, config).await {
            Err(event_log_core::StoreError::Config(e)) => assert_eq!(e.field, field, "{e}"),
            other => panic!("{field} = 0: expected a config error, found {other:?}"),
        }
        assert!(!path.exists(), "a refused config creates no file");
    }
}
