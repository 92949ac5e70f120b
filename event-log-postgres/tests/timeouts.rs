//! A server that stops answering (a black-holed network, a half-open connection) gives
//! a typed `Unavailable` within the configured bound, never a hang; once it answers
//! again, retrying stores every op exactly once.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy, server_addr, url_via};
use common::*;
use event_log_core::{Error, EventLog, OpStore, StoreErrorKind, Transition};
use event_log_postgres::{PostgresConfig, PostgresStore};

/// The client-side bound of these tests.
const BOUND: Duration = Duration::from_secs(1);
/// What the tests allow beyond it (scheduling on a busy machine).
const SLACK: Duration = Duration::from_secs(4);

fn bounded_config(schema: &str) -> PostgresConfig {
    config(schema)
        .with_operation_timeout(BOUND)
        .with_connect_timeout(BOUND)
        .with_sled_lock_timeout(BOUND)
}

/// Runs `f`, failing the test if it takes longer than `BOUND + SLACK` (instead of
/// hanging for ever); returns its output.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(BOUND + SLACK, f).await {
        Ok(out) => out,
        Err(_) => panic!(
            "{what} hung: no answer after {:?} (bound {BOUND:?} + slack)",
            started.elapsed()
        ),
    }
}

async fn rows(schema: &str) -> i64 {
    admin()
        .await
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".ops"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Black-holed both ways: append, ordered append, reads and subscribing each fail
/// with Unavailable within the bound; healed, the same batch is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_server_is_unavailable_within_the_bound() {
    let url = pg_url();
    let schema = unique_schema("blackhole");
    let _guard = SchemaGuard::new(&url, &schema);
    let proxy = Proxy::start(server_addr(&url)).await;
    let store = PostgresStore::open(&url_via(&url, proxy.addr), bounded_config(&schema))
        .await
        .unwrap();
    let ops = chain(4, 1, 6, "bh");
    store.append(&ops[..2]).await.unwrap();
    store
        .append_after(Some(&ops[1].id), &ops[2..3])
        .await
        .unwrap();

    proxy.set(Mode::BlackHole);
    let err = within("append", store.append(&ops[3..5]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("127.0.0.1"),
        "names the server: {err}"
    );
    let err = within(
        "ordered append",
        store.append_after(Some(&ops[2].id), &ops[3..5]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    let err = within("count", store.count()).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    let err = within("listen", store.listen()).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");

    proxy.set(Mode::Forward);
    // The connections that timed out were discarded: these run on fresh ones.
    within("retry", store.append_after(Some(&ops[2].id), &ops[3..5]))
        .await
        .expect("the ordered retry succeeds once healed");
    within("retry", store.append(&ops))
        .await
        .expect("append succeeds once healed");
    assert_eq!(
        rows(&schema).await,
        ops.len() as i64,
        "every op exactly once"
    );
    assert_eq!(store.count().await.unwrap(), ops.len() as u64);
}

/// The server runs the append but its answer is lost: the log reports it in doubt
/// within the bound; once healed, a flush completes it without storing it twice, and
/// the sled appends on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_in_doubt_then_stored_once() {
    let url = pg_url();
    let schema = unique_schema("lostreply");
    let _guard = SchemaGuard::new(&url, &schema);
    let proxy = Proxy::start(server_addr(&url)).await;
    let store = PostgresStore::open(&url_via(&url, proxy.addr), bounded_config(&schema))
        .await
        .unwrap();
    let log = EventLog::open(store.clone(), key(5)).await.unwrap();
    log.append_transition(Transition::now("s-0", "a", "b", "E"))
        .await
        .unwrap();

    proxy.set(Mode::BlackHoleReplies);
    let started = Instant::now();
    let r = within(
        "append",
        log.append_transition(Transition::now("s-1", "a", "b", "E")),
    )
    .await;
    assert!(matches!(r, Err(Error::InDoubt { .. })), "{r:?}");
    assert!(started.elapsed() < BOUND + SLACK);
    // The server did store it; only the answer was lost.
    let deadline = Instant::now() + Duration::from_secs(5);
    while rows(&schema).await < 2 {
        assert!(Instant::now() < deadline, "the lost append never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.set(Mode::Forward);
    assert_eq!(within("flush", log.flush()).await.unwrap(), 1);
    log.append_transition(Transition::now("s-2", "a", "b", "E"))
        .await
        .expect("appends go on after the flush");
    assert_eq!(rows(&schema).await, 3, "the in-doubt op is stored once");
    let ids: Vec<u64> = log
        .all_events()
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, vec![0, 1, 2]);
}
