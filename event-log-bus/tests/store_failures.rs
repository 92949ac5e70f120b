//! The persister against a failing store: retries, give-up into a gap, appends in
//! doubt.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, check_runs, fired, open, wait_until};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::{MemStore, Transition, render_lines};

fn fast_retry(max_retries: u32) -> PersisterConfig {
    PersisterConfig {
        retry: RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A store that fails its next 3 appends, then recovers: every transition is stored
/// exactly once (no loss, no duplicate from a retry), no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failing_then_recovering_loses_nothing() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(1024).unwrap();
    let rx = bus.receiver();
    for i in 0..10 {
        bus.publish(fired(i));
    }
    store.fail_next(3);
    let p = spawn_persister(rx, log.clone(), fast_retry(6));
    wait_until("first failure", || p.stats().store_errors >= 1).await;
    for i in 10..20 {
        bus.publish(fired(i));
    }
    wait_until("store recovered", || p.stats().persisted == 20).await;
    let stats = p.shutdown().await.unwrap();
    // Three store calls fail; the log may absorb one by retrying its in-doubt group
    // at once, so the persister sees two or three failed appends.
    assert!((2..=3).contains(&stats.store_errors), "{stats:?}");
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.gaps, stats.abandoned), (20, 0, 0));
    check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 20)],
    );
    // And after a reopen of the same store.
    let reopened = open(store.inner().clone()).await;
    check_runs(
        &reopened.all_sled_events(&reopened.sled_id()).await.unwrap(),
        &[(stats.run, 20)],
    );
}

/// A store that fails beyond the retry budget: the batch given up becomes a pending
/// gap (merged with the next given-up batch), recorded once the store works again;
/// nothing is lost silently and the counters say what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failing_beyond_budget_records_the_dropped_ids_as_a_gap() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(1024).unwrap();
    let rx = bus.receiver();
    for i in 0..5 {
        bus.publish(fired(i));
    }
    store.fail_next(1_000);
    let p = spawn_persister(rx, log.clone(), fast_retry(2));
    // 0..=4 are signed by the log and in doubt; 5..=9 and 10..=14 are given up.
    wait_until("first batch in doubt", || p.stats().in_doubt == 5).await;
    for i in 5..10 {
        bus.publish(fired(i));
    }
    wait_until("second batch given up", || p.stats().pending_gap == 5).await;
    for i in 10..15 {
        bus.publish(fired(i));
    }
    wait_until("third batch given up", || p.stats().pending_gap == 10).await;
    assert_eq!(p.stats().abandoned, 10);
    store.fail_next(0);
    wait_until("gap recorded", || p.stats().gaps == 1).await;
    bus.publish(fired(15));
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.dropped, stats.lagged), (6, 10, 0));
    let acc = check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 16)],
    );
    assert_eq!(acc[0].gaps, vec![(5, 14)]);
    let text = render_lines(&log.all_timeline().await.unwrap());
    assert!(
        text.contains("events between 5 and 14 were dropped"),
        "{text}"
    );
    let reopened = open(store.inner().clone()).await;
    check_runs(
        &reopened.all_sled_events(&reopened.sled_id()).await.unwrap(),
        &[(stats.run, 16)],
    );
}

/// A batch whose append failed after the log signed it is in doubt: it is not
/// re-sent as new entries (that would store it twice); shutdown completes it with
/// `EventLog::flush`, so nothing is left unsettled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_in_doubt_is_completed_at_shutdown() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(64).unwrap();
    let rx = bus.receiver();
    for i in 0..4 {
        bus.publish(fired(i));
    }
    store.fail_next(1);
    let p = spawn_persister(rx, log.clone(), fast_retry(2));
    let stats = p.shutdown().await.unwrap();
    assert_eq!(
        (stats.in_doubt, stats.persisted, stats.store_errors),
        (0, 4, 1)
    );
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!(log.visible_len(), 4);
    log.append_transition(fired(4)).await.unwrap();
    let events = log.all_sled_events(&log.sled_id()).await.unwrap();
    let stories: Vec<_> = events.iter().filter_map(|e| e.story_id()).collect();
    assert_eq!(stories, ["test_0", "test_1", "test_2", "test_3", "test_4"]);
}

/// A batch in doubt (nothing stored) whose seq a second writer with the same key
/// then takes: the log's retry of the doubt is refused with a conflict, and it drops
/// the doubt. The persister learns from the log that the batch is nowhere, sends it
/// again ahead of the next one, and goes on: everything is stored once, nothing is
/// counted that the store does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_on_a_batch_in_doubt_resends_it_once() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(64).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), fast_retry(4));
    store.fail_next(1);
    bus.publish(fired(0));
    wait_until("id 0 in doubt", || p.stats().in_doubt == 1).await;
    // A second process with the same key takes the seq the doubt was signed with.
    let intruder = open(store.inner().clone()).await;
    intruder
        .append_transition(Transition::now("intruder", "a", "b", "E"))
        .await
        .unwrap();
    bus.publish(fired(1));
    wait_until("ids 0 and 1 settled", || p.stats().persisted == 2).await;
    bus.publish(fired(2));
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.gaps), (3, 0), "{stats:?}");
    let stored = open(store.inner().clone()).await;
    let stories: Vec<_> = stored
        .all_sled_events(&stored.sled_id())
        .await
        .unwrap()
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    assert_eq!(stories, ["intruder", "test_0", "test_1", "test_2"]);
}
