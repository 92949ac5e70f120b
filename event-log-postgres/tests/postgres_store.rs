//! PostgresStore against a real server (`EVENT_LOG_TEST_PG_URL`; `scripts/test.sh`
//! provides one). Each test works in its own schema and drops it.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bft_json_crdt::VersionVector;
use common::*;
use event_log_core::{MemStore, OpRecord, OpStore, Position, StoreError, StoreErrorKind};
use event_log_postgres::{Notice, PostgresConfig, PostgresStore};

async fn load_all(store: &impl OpStore) -> Vec<(Position, OpRecord)> {
    let mut out = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.load(after, 7).await.expect("load");
        let Some(last) = page.last() else {
            return out;
        };
        after = last.0;
        out.extend(page);
    }
}

fn ids(records: &[OpRecord]) -> Vec<event_log_core::OpId> {
    records.iter().map(|r| r.id).collect()
}

/// Appended ops come back byte for byte from load, get and since, in append order.
#[tokio::test]
async fn round_trip_is_byte_identical() {
    let (_guard, store) = fresh_store("roundtrip").await;
    let mut ops = chain(1, 1, 3, "plain");
    // Unicode, quotes, and a NUL (which PostgreSQL text cannot hold).
    ops.push(OpRecord::new(
        &signed(2, 1, vec![], "{\"s\":\"ünï \\\"q\\\" \u{0}nul\"}"),
        false,
    ));
    ops.push(OpRecord::new(
        &signed(2, 1, vec![], "{\"evidence\":1}"),
        true,
    ));
    ops.push(OpRecord::new(
        &signed(3, 1, vec![], "not json at all"),
        false,
    ));
    store.append(&ops).await.unwrap();

    let loaded = load_all(&store).await;
    assert_eq!(
        loaded.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        ops
    );
    assert!(
        loaded.windows(2).all(|w| w[0].0 < w[1].0),
        "positions increase"
    );
    for r in &ops {
        assert_eq!(store.get(&r.id).await.unwrap().as_ref(), Some(r));
    }
    let mut expected = ops.clone();
    expected.sort_by_key(|r| (r.author, r.seq, r.id));
    assert_eq!(
        store.since(&VersionVector::new(), 100).await.unwrap(),
        expected
    );
    assert_eq!(store.count().await.unwrap(), ops.len() as u64);
    let missing = signed(9, 1, vec![], "{}").id();
    assert_eq!(store.get(&missing).await.unwrap(), None);
}

/// Appending ops again, alone or mixed with new ones, stores each op once and leaves
/// the stored rows (and their positions) untouched.
#[tokio::test]
async fn append_is_idempotent() {
    let (_guard, store) = fresh_store("idem").await;
    let first = chain(1, 1, 4, "a");
    store.append(&first).await.unwrap();
    let before = load_all(&store).await;
    store.append(&first).await.unwrap();
    let more = chain(1, 5, 2, "a");
    let mixed: Vec<OpRecord> = first[2..]
        .iter()
        .chain(more.iter())
        .chain(more.iter())
        .cloned()
        .collect();
    store.append(&mixed).await.unwrap();
    store.append(&[]).await.unwrap();
    let after = load_all(&store).await;
    assert_eq!(after.len(), 6);
    assert_eq!(&after[..4], &before[..]);
    let all: Vec<OpRecord> = after.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        all,
        first.iter().chain(more.iter()).cloned().collect::<Vec<_>>()
    );
    let mut heads = VersionVector::new();
    heads.raise(first[0].author, 6);
    assert_eq!(store.heads().await.unwrap(), heads);
}

/// A different primary op on a taken (author, seq) fails the whole batch and writes
/// nothing; evidence ops may share it.
#[tokio::test]
async fn conflict_is_atomic() {
    let (_guard, store) = fresh_store("conflict").await;
    let a = OpRecord::new(&signed(1, 1, vec![], r#"{"v":"a"}"#), false);
    store.append(std::slice::from_ref(&a)).await.unwrap();

    let innocent = chain(2, 1, 2, "b");
    let rival = OpRecord::new(&signed(1, 1, vec![], r#"{"v":"rival"}"#), false);
    let batch = vec![innocent[0].clone(), innocent[1].clone(), rival.clone()];
    match store.append(&batch).await {
        Err(StoreError::Conflict {
            author,
            seq,
            existing,
            incoming,
        }) => {
            assert_eq!((author, seq), (a.author, 1));
            assert_eq!((existing, incoming), (a.id, rival.id));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.count().await.unwrap(),
        1,
        "nothing of the batch was written"
    );
    assert_eq!(store.get(&innocent[0].id).await.unwrap(), None);

    // Two new primary ops with one (author, seq) in one batch conflict too.
    let c1 = OpRecord::new(&signed(3, 1, vec![], r#"{"v":1}"#), false);
    let c2 = OpRecord::new(&signed(3, 1, vec![], r#"{"v":2}"#), false);
    let err = store.append(&[c1.clone(), c2.clone()]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { existing, incoming, .. } if existing == c1.id && incoming == c2.id),
        "{err}"
    );
    assert_eq!(store.count().await.unwrap(), 1);

    // The same op as evidence is accepted, and the batch goes in.
    let evidence = OpRecord {
        evidence: true,
        ..rival
    };
    let mut ok_batch = innocent.clone();
    ok_batch.push(evidence.clone());
    store.append(&ok_batch).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 4);
    assert_eq!(store.get(&evidence.id).await.unwrap(), Some(evidence));
    assert_eq!(store.get(&a.id).await.unwrap(), Some(a));
}

/// 32 tasks appending at once (each its own sled, plus all of them racing on one
/// shared batch) lose nothing, duplicate nothing and keep each author's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_appenders() {
    let url = pg_url();
    let schema = unique_schema("conc");
    let _guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::open(
        &url,
        PostgresConfig {
            pool_size: 16,
            ..config(&schema)
        },
    )
    .await
    .unwrap();
    let shared = chain(200, 1, 10, "shared");
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let store = store.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let ops = chain(n + 1, 1, 12, "own");
            for pair in ops.chunks(2) {
                store.append(pair).await?;
            }
            store.append(&shared).await?;
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.count().await.unwrap(), 32 * 12 + 10);
    let loaded = load_all(&store).await;
    let unique: HashSet<_> = loaded.iter().map(|(_, r)| r.id).collect();
    assert_eq!(unique.len(), loaded.len(), "no duplicates");
    let heads = store.heads().await.unwrap();
    assert_eq!(heads.len(), 33);
    assert!(
        heads
            .iter()
            .all(|(a, &s)| s == if *a == shared[0].author { 10 } else { 12 })
    );
    // Each author's ops load in seq order: replay stays causal.
    let mut last = std::collections::HashMap::new();
    for (_, r) in &loaded {
        let prev = last.insert(r.author, r.seq).unwrap_or(0);
        assert_eq!(r.seq, prev + 1, "author order in load");
    }
}

/// Reopening a schema finds every op, in order; concurrent openers of a fresh schema
/// migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_everything() {
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
    let before = load_all(&stores[0]).await;
    stores[0].close().await.unwrap();
    assert_eq!(
        stores[0].count().await.unwrap_err().kind(),
        StoreErrorKind::Unavailable,
        "a closed store refuses work"
    );
    drop(stores);

    let store = PostgresStore::open(&url, config(&schema)).await.unwrap();
    assert_eq!(load_all(&store).await, before);
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
    store.append(&chain(1, 6, 1, "r")).await.unwrap();
    assert_eq!(store.heads().await.unwrap().get(&ops[0].author), 6);
}

/// `since` matches MemStore for every limit and several vectors (with evidence ops
/// sharing an (author, seq)), and paging by raising the vector visits every op once.
#[tokio::test]
async fn since_pages_with_every_limit() {
    let (_guard, store) = fresh_store("since").await;
    let reference = MemStore::new();
    let mut ops = chain(1, 1, 4, "x");
    ops.extend(chain(2, 1, 3, "y"));
    // Two evidence ops for sled 2, seq 2.
    ops.push(OpRecord::new(&signed(2, 2, vec![], r#"{"ev":1}"#), true));
    ops.push(OpRecord::new(&signed(2, 2, vec![], r#"{"ev":2}"#), true));
    ops.extend(chain(3, 1, 2, "z"));
    store.append(&ops).await.unwrap();
    reference.append(&ops).await.unwrap();
    let total = ops.len();

    let authors: Vec<_> = store.heads().await.unwrap().0.into_keys().collect();
    let mut vectors = vec![VersionVector::new()];
    let mut v = VersionVector::new();
    v.raise(authors[0], 2);
    vectors.push(v.clone());
    v.raise(authors[1], 1);
    vectors.push(v.clone());
    v.raise(authors[2], 2);
    vectors.push(v.clone());
    let mut unknown = v.clone();
    unknown.raise(bft_json_crdt::AuthorId([0xee; 32]), 3);
    vectors.push(unknown);
    // A vector beyond any storable seq holds everything of that author. (Not compared
    // with MemStore, whose `vv + 1` overflows there.)
    let mut beyond = VersionVector::new();
    beyond.raise(authors[1], u64::MAX);
    let got = store.since(&beyond, total).await.unwrap();
    let others = ops.iter().filter(|r| r.author != authors[1]).count();
    assert_eq!(got.len(), others);
    assert!(got.iter().all(|r| r.author != authors[1]));

    for vv in &vectors {
        for limit in 0..=total + 1 {
            let got = store.since(vv, limit).await.unwrap();
            let want = reference.since(vv, limit).await.unwrap();
            assert_eq!(ids(&got), ids(&want), "vv {vv:?} limit {limit}");
            assert_eq!(got, want);
        }
    }
    for limit in 1..=total {
        let mut vv = VersionVector::new();
        let mut seen = Vec::new();
        loop {
            let page = store.since(&vv, limit).await.unwrap();
            if page.is_empty() {
                break;
            }
            for r in &page {
                vv.raise(r.author, r.seq);
            }
            seen.extend(page);
        }
        assert_eq!(seen.len(), total, "limit {limit}");
        assert_eq!(
            seen.iter().map(|r| r.id).collect::<HashSet<_>>().len(),
            total
        );
    }
}

/// An append through one store handle wakes a subscriber on another handle of the
/// same schema; a subscriber whose connection is killed reconnects and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reaches_another_handle() {
    let (_guard, listener) = fresh_store("notify").await;
    let writer = PostgresStore::open(&pg_url(), config(listener.schema()))
        .await
        .unwrap();
    let mut sub = listener.subscribe().await.unwrap();

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
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    let shown = err.to_string();
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

/// Bad schema names and malformed URLs are Invalid, before any connection.
#[tokio::test]
async fn bad_config_is_invalid() {
    let url = pg_url();
    for schema in ["", "1abc", "a;drop", "x\"y", "pg_catalog"] {
        let err = PostgresStore::open(&url, PostgresConfig::with_schema(schema))
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
