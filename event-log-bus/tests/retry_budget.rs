//! The retry budget in time: a lossy persister keeps retrying a failing store for
//! about `RetryPolicy::max_elapsed` before it records the batch as a gap, and a
//! store that recovers within the budget loses nothing. Counts of attempts and
//! outcomes are asserted, never how long anything took.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, check_runs, fired, open, wait_until};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::MemStore;

/// Retries at most `max_backoff` (×2 with jitter) apart for `budget`.
fn budget(budget: Duration, max_backoff: Duration) -> PersisterConfig {
    PersisterConfig {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff,
            ..RetryPolicy::for_duration(budget)
        },
        ..Default::default()
    }
}

/// Starts a persister over a store that fails from now on, with id 0 in doubt (the
/// log signed it; it completes it with its next append) and id 1 being retried.
async fn failing_store_with_a_batch_in_retry(
    config: PersisterConfig,
) -> (
    TestStore,
    std::sync::Arc<event_log_core::EventLog<TestStore>>,
    TransitionBus,
    event_log_bus::PersisterHandle,
) {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(64).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), config);
    store.fail_next(u64::MAX);
    bus.publish(fired(0));
    wait_until("id 0 in doubt", || p.stats().in_doubt == 1).await;
    bus.publish(fired(1));
    (store, log, bus, p)
}

/// A budget of 1.5 s with sleeps of at most 100 ms: the batch is tried at least ten
/// times (the old fixed count gave up after 7 attempts) before its id becomes
/// a gap, and the gap is recorded once the store works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_budget_keeps_retrying_for_about_that_long_before_recording_the_gap() {
    let config = budget(Duration::from_millis(1_500), Duration::from_millis(50));
    let (store, log, bus, p) = failing_store_with_a_batch_in_retry(config).await;
    wait_until("id 1 given up", || p.stats().pending_gap == 1).await;
    let at_give_up = p.stats();
    // One failure put id 0 in doubt; the others are attempts of id 1 (plus at most
    // a retry of the pending gap after it was given up).
    let attempts = at_give_up.store_errors - 1;
    assert!(
        attempts >= 10,
        "gave up after {attempts} attempts, before the budget was spent: {at_give_up:?}"
    );
    assert_eq!((at_give_up.abandoned, at_give_up.gaps), (1, 0));
    store.fail_next(0);
    wait_until("gap recorded", || p.stats().gaps == 1).await;
    bus.publish(fired(2));
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.dropped), (2, 1), "{stats:?}");
    let acc = check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 3)],
    );
    assert_eq!(acc[0].gaps, vec![(1, 1)]);
}

/// A store that comes back within the budget (30 s; it fails for a few dozen
/// attempts here) loses nothing: no id is given up, no gap is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_recovering_within_the_budget_loses_nothing() {
    let config = budget(Duration::from_secs(30), Duration::from_millis(10));
    let (store, log, bus, p) = failing_store_with_a_batch_in_retry(config).await;
    wait_until("many failed attempts", || p.stats().store_errors >= 25).await;
    let failing = p.stats();
    assert_eq!(
        (failing.abandoned, failing.pending_gap),
        (0, 0),
        "given up within the budget: {failing:?}"
    );
    store.fail_next(0);
    wait_until("stored", || p.stats().persisted == 2).await;
    bus.publish(fired(2));
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.gaps, stats.abandoned), (3, 0, 0));
    check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 3)],
    );
}
