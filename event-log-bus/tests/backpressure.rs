//! A backpressured bus: `publish_wait` waits for room instead of overwriting, so a
//! store that fails for a while slows the publisher down and loses nothing; and a
//! publisher whose persister stopped gets a typed error instead of waiting for
//! ever. `tokio::time::timeout` only detects hangs here; nothing is timed.

mod common;

use event_log_conformance::read::ReadAll;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{TestStore, check_runs, fired, open, open_read_only, wait_until};
use event_log_bus::{
    PersisterConfig, PersisterError, PublishError, RetryPolicy, TransitionBus, spawn_persister,
};
use event_log_core::MemStore;

/// Hang detector: far longer than any of these tests needs.
const HANG: Duration = Duration::from_secs(30);

/// Retries 1..5 ms apart, with a budget (50 ms) a lossy persister would give up
/// after: a backpressured one must not.
fn short_budget() -> PersisterConfig {
    PersisterConfig {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::for_duration(Duration::from_millis(50))
        },
        ..Default::default()
    }
}

/// Publishes `n` transitions with `publish_wait`, counting those accepted; returns
/// their logical ids, or the first error.
fn publisher(
    bus: &TransitionBus,
    ids: std::ops::Range<u64>,
    accepted: &Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Result<Vec<u64>, PublishError>> {
    let (bus, accepted) = (bus.clone(), accepted.clone());
    tokio::spawn(async move {
        let mut out = Vec::new();
        for i in ids {
            out.push(bus.publish_wait(fired(i)).await?);
            accepted.fetch_add(1, Ordering::SeqCst);
        }
        Ok(out)
    })
}

/// The store fails for a long while (far past the retry budget): the publisher gets
/// at most the window's 4 transitions accepted and then waits; nothing is given up.
/// Once the store recovers, all 40 are stored in order, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_slows_the_publisher_and_loses_nothing() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::with_backpressure(4).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), short_budget());
    store.fail_next(u64::MAX);
    // Id 0 is signed by the log and in doubt (it holds one slot); the next batch is
    // refused before signing and retried by the persister.
    assert_eq!(bus.publish_wait(fired(0)).await.unwrap(), 0);
    wait_until("id 0 in doubt", || p.stats().in_doubt == 1).await;
    let accepted = Arc::new(AtomicU64::new(1));
    let publishing = publisher(&bus, 1..40, &accepted);
    // Far more failed attempts than the 50 ms budget allows (at most ~15): a lossy
    // persister would have given the batch up long ago.
    wait_until("store failing for long", || p.stats().store_errors >= 60).await;
    let during = p.stats();
    assert!(
        accepted.load(Ordering::SeqCst) <= 4,
        "accepted {} with a window of 4 and nothing stored",
        accepted.load(Ordering::SeqCst)
    );
    assert!(!publishing.is_finished(), "the publisher must be waiting");
    assert_eq!(
        (
            during.abandoned,
            during.pending_gap,
            during.gaps,
            during.lagged
        ),
        (0, 0, 0, 0),
        "{during:?}"
    );
    store.fail_next(0);
    let ids = tokio::time::timeout(HANG, publishing)
        .await
        .expect("the publisher goes on once the store works")
        .unwrap()
        .unwrap();
    assert_eq!(ids, (1..40).collect::<Vec<_>>(), "logical ids in order");
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!(
        (stats.persisted, stats.gaps, stats.dropped, stats.abandoned),
        (40, 0, 0, 0),
        "{stats:?}"
    );
    check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 40)],
    );
}

/// A persister that stops on an error (a read-only log refuses every append): the
/// publisher waiting for room gets `PersisterStopped`, with its transition back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_persister_failed_gets_a_typed_error() {
    let log = open_read_only(MemStore::new()).await;
    let bus = TransitionBus::with_backpressure(2).unwrap();
    let p = spawn_persister(bus.receiver(), log, PersisterConfig::default());
    let accepted = Arc::new(AtomicU64::new(0));
    let result = tokio::time::timeout(HANG, publisher(&bus, 0..1_000, &accepted))
        .await
        .expect("publish_wait fails instead of waiting for ever")
        .unwrap();
    match result {
        Err(PublishError::PersisterStopped(t)) => {
            let n = accepted.load(Ordering::SeqCst);
            assert_eq!(t.story_id, format!("test_{n}"), "the transition comes back");
        }
        other => panic!("expected PersisterStopped, got {other:?}"),
    }
    assert!(matches!(
        p.join().await,
        Err(PersisterError::Refused { .. })
    ));
    let again = bus.publish_wait(fired(0)).await;
    assert!(
        matches!(again, Err(PublishError::PersisterStopped(_))),
        "{again:?}"
    );
}

/// A shutdown while the store is down: the waiting publisher fails at once with
/// `PersisterStopped`; what was accepted is accounted (received, not silently
/// lost). A new persister attached to the same bus takes over the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_wakes_a_waiting_publisher_with_a_typed_error() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::with_backpressure(4).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), short_budget());
    store.fail_next(u64::MAX);
    let accepted = Arc::new(AtomicU64::new(0));
    let publishing = publisher(&bus, 0..100, &accepted);
    wait_until("store failing", || store.appends() >= 10).await;
    wait_until("window full", || accepted.load(Ordering::SeqCst) == 4).await;
    let stats = tokio::time::timeout(HANG, p.shutdown())
        .await
        .expect("shutdown ends while the store is down")
        .unwrap();
    let result = tokio::time::timeout(HANG, publishing)
        .await
        .expect("the waiting publisher is woken")
        .unwrap();
    assert!(
        matches!(result, Err(PublishError::PersisterStopped(_))),
        "{result:?}"
    );
    assert_eq!(stats.received, 4, "{stats:?}");
    assert_eq!(
        stats.persisted + stats.pending_gap + stats.in_doubt,
        4,
        "{stats:?}"
    );

    // The store works again; a new persister of the bus: publish_wait works again.
    store.fail_next(0);
    let p2 = spawn_persister(bus.receiver(), log.clone(), short_budget());
    for i in 0..10 {
        let id = tokio::time::timeout(HANG, bus.publish_wait(fired(i)))
            .await
            .expect("room under the new persister")
            .unwrap();
        assert_eq!(id, i);
    }
    let stats2 = p2.shutdown().await.unwrap();
    assert_eq!((stats2.persisted, stats2.gaps), (10, 0), "{stats2:?}");
}

/// `publish_wait` without a persister attached, or on a lossy bus, fails at once
/// and hands the transition back; `publish` keeps working on both.
#[tokio::test]
async fn publish_wait_needs_a_backpressured_bus_with_a_persister() {
    let bus = TransitionBus::with_backpressure(8).unwrap();
    let _rx = bus.receiver();
    match bus.publish_wait(fired(7)).await {
        Err(e @ PublishError::NoPersister(_)) => assert_eq!(e.into_transition().story_id, "test_7"),
        other => panic!("expected NoPersister, got {other:?}"),
    }
    assert_eq!(bus.publish(fired(8)), 1);
    let lossy = TransitionBus::new(8).unwrap();
    assert!(matches!(
        lossy.publish_wait(fired(9)).await,
        Err(PublishError::NotBackpressured(_))
    ));
    assert!(bus.is_backpressured() && !lossy.is_backpressured());
}

/// A persister that fails while transitions it accepted still wait unread in its
/// receiver: its error's counters account for every accepted one (received, not
/// persisted: `pending_gap`), none vanishes with the receiver. On a current-thread
/// runtime the persister first runs when the third `publish_wait` waits, so two are
/// accepted and, with one entry per append, only the first is read before the
/// refusal.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_persister_accounts_for_every_accepted_transition() {
    let log = open_read_only(MemStore::new()).await;
    let bus = TransitionBus::with_backpressure(2).unwrap();
    let persister_config = PersisterConfig {
        max_batch: 1,
        ..Default::default()
    };
    let p = spawn_persister(bus.receiver(), log, persister_config);
    let accepted = Arc::new(AtomicU64::new(0));
    let result = tokio::time::timeout(HANG, publisher(&bus, 0..10, &accepted))
        .await
        .expect("publish_wait fails instead of waiting for ever")
        .unwrap();
    assert!(
        matches!(result, Err(PublishError::PersisterStopped(_))),
        "{result:?}"
    );
    let accepted = accepted.load(Ordering::SeqCst);
    match p.join().await {
        Err(PersisterError::Refused { stats, .. }) => {
            assert_eq!(stats.received, accepted, "{stats:?}");
            assert_eq!(stats.pending_gap, accepted, "{stats:?}");
            assert_eq!(stats.persisted, 0, "{stats:?}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}
