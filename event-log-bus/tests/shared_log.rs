//! The persister sharing its log with another appending task: it decides what became
//! of each of its chunks from the outcome of its own append, so another task's store
//! calls and failures never make it count an unwritten transition as persisted.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, fired, key, wait_until};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::{Entry, Error, EventLog, EventLogConfig, MemStore, Transition};

fn other(i: u64) -> Transition {
    Transition::now(format!("other_{i}"), "a", "b", "Direct")
}

/// Another task's append is signed and sent (a store call) while the persister's
/// request waits for the writer lock; the other task's append then fails with an
/// unknown outcome, and the persister's request is refused before it is signed (the
/// log cannot complete the other task's append first). The persister must retry its
/// transition, not take it for signed: at the end its counters match the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tasks_failing_append_does_not_count_as_the_persisters() {
    let store = TestStore::new(MemStore::new());
    // One entry per store call, so the other task's append goes alone.
    let config = EventLogConfig::default().with_max_batch(1);
    let log = std::sync::Arc::new(
        EventLog::open_with(store.clone(), key(1), config)
            .await
            .unwrap(),
    );
    let bus = TransitionBus::new(64).unwrap();
    let retry = PersisterConfig {
        retry: RetryPolicy {
            max_retries: 20,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = spawn_persister(bus.receiver(), log.clone(), retry);

    // The other task leaves an append in doubt in the log.
    store.fail_next(1);
    let e = log.append_transition(other(0)).await.unwrap_err();
    assert!(matches!(e, Error::InDoubt { .. }), "{e}");

    // Its next append leads: completing the doubt waits at the closed gate.
    store.set_gate(false);
    let entered = store.entered();
    let other_task = tokio::spawn({
        let log = log.clone();
        async move { log.append_transition(other(1)).await }
    });
    wait_until("the other task in the store", || {
        store.entered() == entered + 1
    })
    .await;
    // The persister's append queues behind it.
    bus.publish(fired(0));
    wait_until("logical id 0 taken", || p.stats().received == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Completing the doubt works; the other task's own append (a store call, after
    // the persister's started) fails with an unknown outcome; the persister's
    // append, leading next, cannot complete that doubt and is refused unsigned.
    store.script(&[true, false, false]);
    store.set_gate(true);
    let e = other_task.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::InDoubt { .. }), "{e}");

    wait_until("logical id 0 settled", || {
        let s = p.stats();
        s.persisted + s.in_doubt == 1
    })
    .await;
    bus.publish(fired(1));
    wait_until("logical id 1 settled", || p.stats().persisted >= 2).await;
    let stats = p.shutdown().await.unwrap();

    let events = log.all_sled_events(&log.sled_id()).await.unwrap();
    let ours: Vec<&str> = events
        .iter()
        .filter_map(|e| e.story_id())
        .filter(|s| s.starts_with("test_"))
        .collect();
    let gaps = events
        .iter()
        .filter(|e| matches!(e.entry, Entry::Gap(_)))
        .count() as u64;
    assert_eq!(
        (stats.persisted, stats.gaps),
        (ours.len() as u64, gaps),
        "counters must match the log: {stats:?}, log holds {ours:?}"
    );
    assert_eq!(ours, ["test_0", "test_1"], "{stats:?}");
    assert!(stats.is_settled(), "{stats:?}");
    let others: Vec<&str> = events
        .iter()
        .filter_map(|e| e.story_id())
        .filter(|s| s.starts_with("other_"))
        .collect();
    assert_eq!(others, ["other_0", "other_1"]);
}
