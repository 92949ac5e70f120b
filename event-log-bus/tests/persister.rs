//! The persisting subscriber: gaps on lag, group commit, shutdown, counters.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, check_runs, fired, open, wait_until};
use event_log_bus::{BusError, PersisterConfig, TransitionBus, spawn_persister};
use event_log_core::{MemStore, render_lines};

/// The seed's scenario end to end: 3 events persisted, the persister stalls (its store
/// append is held) while 4 more are published into a 1-slot channel, so logical ids
/// 3..=5 are overwritten; the log shows the 3 events, one gap line naming 3 and 5,
/// and the event after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_becomes_one_gap_sentinel_with_the_real_logical_ids() {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    let bus = TransitionBus::new(1).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
    for i in 0..2 {
        bus.publish(fired(i));
        wait_until("persisted", || p.stats().persisted == i + 1).await;
    }
    store.set_gate(false);
    bus.publish(fired(2));
    wait_until("id 2 taken", || p.stats().received == 3).await;
    // The persister is blocked in the store: these overflow its 1-slot receiver.
    for i in 3..=5 {
        bus.publish(fired(i));
    }
    bus.publish(fired(99));
    store.set_gate(true);
    let stats = p.shutdown().await.unwrap();

    let text = render_lines(&log.all_timeline().await.unwrap());
    assert!(
        text.contains("events between 3 and 5 were dropped"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (line, story) in lines.iter().zip(["test_0", "test_1", "test_2"]) {
        assert!(line.contains(story), "{line}");
    }
    assert!(lines[3].contains("events between 3 and 5 were dropped"));
    assert!(lines[4].contains("test_99"), "{text}");
    assert_eq!(
        (
            stats.persisted,
            stats.gaps,
            stats.dropped,
            stats.lagged,
            stats.received
        ),
        (4, 1, 3, 3, 7)
    );
    assert!(stats.is_settled());
}

/// Messages that overflow before the persister starts polling become a gap at the
/// start of the run; the rest follow in order.
#[tokio::test]
async fn overflow_before_first_poll_is_a_leading_gap() {
    let mem = MemStore::new();
    let log = open(mem.clone()).await;
    let bus = TransitionBus::new(3).unwrap(); // rounded up to 4
    let rx = bus.receiver();
    for i in 0..10 {
        assert_eq!(bus.publish(fired(i)), 1);
    }
    let p = spawn_persister(rx, log.clone(), PersisterConfig::default());
    drop(bus);
    let stats = p.join().await.unwrap();
    let acc = check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, 10)],
    );
    assert_eq!(acc[0].gaps, vec![(0, 5)]);
    assert_eq!(acc[0].transitions, 4);
    assert_eq!((stats.persisted, stats.dropped, stats.gaps), (4, 6, 1));
}

/// Shutdown drains what the receiver already holds, appends it in group commits,
/// and returns counters equal to what the log holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_everything_received_and_returns_final_counters() {
    let mem = MemStore::new();
    let log = open(mem.clone()).await;
    let bus = TransitionBus::new(4096).unwrap();
    let rx = bus.receiver();
    for i in 0..3000 {
        bus.publish(fired(i));
    }
    let config = PersisterConfig {
        max_batch: 256,
        ..Default::default()
    };
    let p = spawn_persister(rx, log.clone(), config);
    let run = p.run_id();
    let stats = p.shutdown().await.unwrap();
    assert_eq!(stats.run, run);
    assert_eq!(
        (stats.received, stats.persisted, stats.gaps),
        (3000, 3000, 0)
    );
    assert!(stats.batches <= 3000 / 256 + 1, "group commit: {stats:?}");
    assert_eq!(log.visible_len(), 3000);
    check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(run, 3000)],
    );
    // Bus counter agrees.
    assert_eq!(bus.published(), 3000);
}

/// Dropping every bus clone ends the run after the last message.
#[tokio::test]
async fn closing_the_bus_ends_the_run() {
    let log = open(MemStore::new()).await;
    let bus = TransitionBus::new(64).unwrap();
    let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
    let publisher = bus.clone();
    drop(bus);
    for i in 0..20 {
        publisher.publish(fired(i));
    }
    drop(publisher);
    let stats = tokio::time::timeout(Duration::from_secs(10), p.join())
        .await
        .expect("run ends when the bus closes")
        .unwrap();
    assert_eq!((stats.persisted, stats.received), (20, 20));
}

/// Publishing with no receiver never blocks nor fails; it is counted.
#[test]
fn publishing_without_receivers_is_counted_and_capacity_is_checked() {
    let bus = TransitionBus::new(2).unwrap();
    assert_eq!(bus.publish(fired(0)), 0);
    assert_eq!((bus.published(), bus.unheard()), (1, 1));
    assert_eq!(TransitionBus::new(0).unwrap_err(), BusError::ZeroCapacity);
}
