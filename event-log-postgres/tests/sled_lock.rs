//! A sled's writer is exclusive: `acquire_sled` takes a session-level advisory lock on
//! the connection that writes the sled's ops, so a restarted process waits for the
//! old one's session (and its last statement) to end before it reads its frontier.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::{Duration, Instant};

use bft_json_crdt::AuthorId;
use common::*;
use event_log_core::{EventLog, OpStore, StoreErrorKind, Transition};
use event_log_postgres::{PostgresConfig, PostgresStore};

/// The lock wait of these tests.
const WAIT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(4);

fn lock_config(schema: &str, app: &str) -> PostgresConfig {
    config(schema)
        .with_application_name(app.to_owned())
        .with_sled_lock_timeout(WAIT)
}

fn sled(n: u8) -> AuthorId {
    AuthorId::from(&key(n).verifying_key())
}

/// While store A holds sled X, store B's `acquire_sled(X)` waits, then fails with
/// Unavailable within the bound; another sled is free; once A is closed, B acquires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_of_a_sled_waits_then_fails() {
    let url = pg_url();
    let schema = unique_schema("sledlock");
    let _guard = SchemaGuard::new(&url, &schema);
    let a = PostgresStore::open(&url, lock_config(&schema, "lock-a"))
        .await
        .unwrap();
    let b = PostgresStore::open(&url, lock_config(&schema, "lock-b"))
        .await
        .unwrap();
    a.acquire_sled(&sled(1)).await.unwrap();
    a.acquire_sled(&sled(1))
        .await
        .expect("taking it again is fine");

    let started = Instant::now();
    let err = tokio::time::timeout(WAIT + SLACK, b.acquire_sled(&sled(1)))
        .await
        .expect("acquire_sled must give up within its bound")
        .expect_err("another session holds sled 1");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("writer lock"), "says why: {err}");
    assert!(started.elapsed() >= WAIT / 2, "it waited first");
    b.acquire_sled(&sled(2))
        .await
        .expect("another sled is free");

    a.close().await.unwrap();
    b.acquire_sled(&sled(1))
        .await
        .expect("free once the holder closed");
}

/// A holder that is dropped, or whose backend is terminated, frees the sled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_or_terminated_holder_frees_the_sled() {
    let url = pg_url();
    let schema = unique_schema("sledfree");
    let _guard = SchemaGuard::new(&url, &schema);
    let a = PostgresStore::open(&url, lock_config(&schema, "free-a"))
        .await
        .unwrap();
    let b = PostgresStore::open(&url, lock_config(&schema, "free-b"))
        .await
        .unwrap();
    a.acquire_sled(&sled(1)).await.unwrap();
    drop(a);
    b.acquire_sled(&sled(1))
        .await
        .expect("free once A is dropped");

    let c = PostgresStore::open(&url, lock_config(&schema, "free-c"))
        .await
        .unwrap();
    assert!(c.acquire_sled(&sled(1)).await.is_err(), "B holds it");
    admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'free-b'",
            &[],
        )
        .await
        .unwrap();
    c.acquire_sled(&sled(1))
        .await
        .expect("free once B's backend is terminated");
    // B's writes now fail instead of proceeding without the lock.
    let err = b.append(&chain(1, 1, 1, "b")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert_eq!(c.count().await.unwrap(), 0, "B wrote nothing");
    c.append(&chain(1, 1, 1, "c")).await.unwrap();
}

/// A killed process's last append commits after its restart began: the new process
/// waits for it, then appends on without a Conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sled_waits_for_its_old_process() {
    let url = pg_url();
    let schema = unique_schema("restart");
    let _guard = SchemaGuard::new(&url, &schema);
    let old_store = PostgresStore::open(&url, lock_config(&schema, "old-proc"))
        .await
        .unwrap();
    let old = EventLog::open(old_store.clone(), key(7)).await.unwrap();
    old.append_transition(Transition::now("s-0", "a", "b", "E"))
        .await
        .unwrap();

    // The old process's next append is held behind a table lock...
    let mut admin_client = admin().await;
    let tx = admin_client.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE \"{schema}\".ops IN EXCLUSIVE MODE"))
        .await
        .unwrap();
    let held = tokio::spawn(async move {
        old.append_transition(Transition::now("s-1", "a", "b", "E"))
            .await
    });
    blocked_backend(&tx, "old-proc").await;
    // ...and the process is killed: nothing of it runs any more, but its statement
    // is still on the server.
    held.abort();
    let _ = held.await;
    drop(old_store);

    // The new process starts while that statement is pending.
    let new_store = PostgresStore::open(&url, lock_config(&schema, "new-proc"))
        .await
        .unwrap();
    let opening = tokio::spawn(async move { EventLog::open(new_store, key(7)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The statement commits.
    tx.commit().await.unwrap();
    let new = opening.await.unwrap().expect("the new process opens");
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin_client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".ops"), &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the old statement never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = new
        .append_transition(Transition::now("s-2", "a", "b", "E"))
        .await
        .expect("no Conflict: the new process saw the old one's last append");
    assert_eq!(e.event_id, 2);
    let stories: Vec<String> = new
        .all_events()
        .await
        .unwrap()
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    assert_eq!(stories, ["s-0", "s-1", "s-2"]);
}
