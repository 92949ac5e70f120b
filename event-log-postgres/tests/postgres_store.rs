//! PostgresStore against a real server (`EVENT_LOG_TEST_PG_URL`; `scripts/test.sh`
//! provides one): migrations, NOTIFY, connection loss, errors. Each test works in
//! its own schema and drops it. (Round trips, idempotency, conflicts, concurrent
//! appenders and `since` paging are conformance scenarios, run in
//! `tests/conformance.rs`.)

mod common;

use std::time::Duration;

use common::*;
use event_log_conformance::assert::error_is;
use event_log_core::{OpRecord, OpStore, Position, StoreErrorKind};
use event_log_postgres::{Notice, PostgresConfig, PostgresStore};

/// Every op of `store`, paging by 7.
async fn load_all(store: &impl OpStore) -> Vec<(Position, OpRecord)> {
    event_log_conformance::fixture::load_all(store, 7)
        .await
        .expect("load")
}

/// Concurrent openers of a fresh schema migrate it once, to the current version.
/// (Reopening finding every op, and a closed store refusing work, are the
/// conformance scenario `close_then_reopen_keeps_everything`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_openers_migrate_once() {
    let url = pg_url();
    let schema = unique_schema("reopen");
    let _guard = SchemaGuard::new(&url, &schema);
    let openers: Vec<_> = (0..6)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { PostgresStore::open(&url, config(&schema)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in openers {
        stores.push(o.await.unwrap().expect("concurrent open"));
    }
    let ops = chain(1, 1, 5, "r");
    stores[0].append(&ops).await.unwrap();
    drop(stores);

    let store = PostgresStore::open(&url, config(&schema)).await.unwrap();
    let versions: Vec<i32> = admin()
        .await
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=event_log_postgres::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert_eq!(store.heads().await.unwrap().get(&ops[0].author), 5);
}

/// An append through one store handle wakes a subscriber on another handle of the
/// same schema; a subscriber whose connection is killed reconnects and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reaches_another_handle() {
    let (_guard, listener) = fresh_store("notify").await;
    let writer = PostgresStore::open(&pg_url(), config(listener.schema()))
        .await
        .unwrap();
    let mut sub = listener.listen().await.unwrap();

    let ops = chain(5, 1, 3, "n");
    writer.append(&ops).await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("a notification within 10 s");
    assert_eq!(
        notice,
        Some(Notice::Appended {
            author: ops[0].author,
            seq: 3
        })
    );
    // A pure duplicate stores nothing and announces nothing; the next append does.
    writer.append(&ops).await.unwrap();
    let next = chain(5, 4, 1, "n");
    writer.append(&next).await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .unwrap();
    assert_eq!(
        notice,
        Some(Notice::Appended {
            author: ops[0].author,
            seq: 4
        })
    );

    // Kill the listening backend: the subscription reconnects and reports it.
    let admin = admin().await;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
            &[&listener.schema()],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "one listening backend");
    let notice = tokio::time::timeout(Duration::from_secs(15), sub.recv())
        .await
        .unwrap();
    assert_eq!(notice, Some(Notice::Reconnected));
    writer.append(&chain(5, 5, 1, "n")).await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .unwrap();
    assert!(
        matches!(notice, Some(Notice::Appended { seq: 5, .. })),
        "{notice:?}"
    );
}

/// Killing the backend of an in-flight append fails it as Unavailable; retrying the
/// same batch succeeds and stores each op exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_then_retry_does_not_duplicate() {
    let (_guard, store) = fresh_store("loss").await;
    let batch = chain(7, 1, 8, "l");
    store.append(&batch[..3]).await.unwrap();

    // Hold a lock that blocks inserts, so the append is surely in flight.
    let mut admin = admin().await;
    let tx = admin.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE \"{}\".ops IN EXCLUSIVE MODE",
        store.schema()
    ))
    .await
    .unwrap();
    let appending = {
        let (store, batch) = (store.clone(), batch.clone());
        tokio::spawn(async move { store.append(&batch).await })
    };
    let pid = blocked_backend(&tx, store.schema()).await;
    tx.query("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let err = appending
        .await
        .unwrap()
        .expect_err("the killed append fails");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    tx.rollback().await.unwrap();

    store
        .append(&batch)
        .await
        .expect("retrying the batch succeeds");
    let loaded = load_all(&store).await;
    assert_eq!(
        loaded.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        batch,
        "every op once, in order"
    );
}

/// A server that is not there gives Unavailable naming host and port, never the
/// password.
#[tokio::test]
async fn down_server_is_unavailable_without_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://someone:hunter2-secret@127.0.0.1:{port}/db");
    let err = PostgresStore::open(&url, PostgresConfig::default())
        .await
        .unwrap_err();
    let shown = error_is(
        &err,
        StoreErrorKind::Unavailable,
        &[&format!("127.0.0.1:{port}")],
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

/// Bad schema names and malformed URLs are Invalid, before any connection.
#[tokio::test]
async fn bad_config_is_invalid() {
    let url = pg_url();
    for schema in ["", "1abc", "a;drop", "x\"y", "pg_catalog"] {
        let err = PostgresStore::open(&url, PostgresConfig::default().with_schema(schema))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{schema:?}: {err}");
    }
    let err = PostgresStore::open("postgres://u:pw@host:port/db", PostgresConfig::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    let (_guard, store) = fresh_store("seq").await;
    let mut too_big = chain(1, 1, 1, "big");
    too_big[0].seq = u64::MAX;
    let err = store.append(&too_big).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
}
