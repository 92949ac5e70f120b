//! Opening a store read-only: nothing is created or written; a missing file is
//! `NotFound` naming it; writes are refused.

mod common;

use common::*;
use event_log_conformance::file::missing_file_read_only;
use event_log_core::{OpStore, StoreErrorKind};
use event_log_redb::{RedbConfig, RedbStore};

/// A mistyped path is `NotFound` naming it, and no file is created (a writable open
/// would have created an empty store there), by `open_read_only` and by a config
/// with `read_only`.
#[tokio::test]
async fn read_only_open_of_a_missing_file_is_not_found_and_creates_nothing() {
    missing_file_read_only("x.redb", RedbStore::open_read_only).await;
    missing_file_read_only("x.redb", |path| {
        RedbStore::open(path, RedbConfig::default().with_read_only(true))
    })
    .await;
}

/// A read-only store reads everything and refuses every write; the file is left
/// byte for byte as it was.
#[tokio::test]
async fn read_only_store_reads_and_refuses_writes() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let a = rec(1, 1, r#"{"n":1}"#, false);
    let b = rec_deps(1, 2, vec![a.id], r#"{"n":2}"#, false);
    let fork = rec(1, 2, r#"{"n":"fork"}"#, true);
    store
        .append(&[a.clone(), b.clone(), fork.clone()])
        .await
        .unwrap();
    store.put_meta("k", b"v").await.unwrap();
    let before = all(&store).await;
    store.close().await.unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let ro = RedbStore::open_read_only(&path).await.unwrap();
    assert!(ro.is_read_only());
    assert_eq!(all(&ro).await, before);
    assert_eq!(ro.count().await.unwrap(), 3);
    assert_eq!(ro.heads().await.unwrap().get(&a.author), 2);
    assert_eq!(ro.get(&b.id).await.unwrap().as_ref(), Some(&b));
    assert_eq!(ro.get_meta("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(ro.evidence().await.unwrap().len(), 1);
    let more = rec(2, 1, r#"{"n":3}"#, false);
    for err in [
        ro.append(std::slice::from_ref(&more)).await.unwrap_err(),
        ro.append(&[]).await.unwrap_err(),
        ro.append_after(Some(&b.id), std::slice::from_ref(&more))
            .await
            .unwrap_err(),
        ro.put_meta("k", b"w").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    ro.close().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was written");
    // Closed, it refuses reads like a writable store; the file opens writable again.
    assert_eq!(
        ro.count().await.unwrap_err().kind(),
        StoreErrorKind::Unavailable
    );
    let store = open(&path).await;
    assert_eq!(store.count().await.unwrap(), 3);
}

/// A redb file that is no event-log store yet is refused read-only (a writable open
/// would make it one), and is left as it was.
#[tokio::test]
async fn read_only_open_refuses_a_file_without_the_format_version() {
    let (_dir, path) = fresh();
    redb::Database::create(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let err = RedbStore::open_read_only(&path).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("no event-log store"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
