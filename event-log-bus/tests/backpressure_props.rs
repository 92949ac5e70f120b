//! Property: on a backpressured bus, any mix of `publish_wait` and `publish`, over a
//! store that may fail and be slow, keeps the window exact: every `publish_wait`
//! completes (no slot is ever kept once its transition is settled) with its exact
//! logical id, the window never grows past its capacity, a bus published with
//! `publish_wait` only records no gap, and every logical id is persisted or in
//! exactly one gap.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, cases, check_runs, fired, open, wait_until};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::MemStore;
use futures::FutureExt;
use proptest::prelude::*;

/// Hang detector only.
const HANG: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Plan {
    capacity: usize,
    max_batch: usize,
    store_delay_us: u64,
    /// Appends failing at the start.
    failures: u64,
    /// (with `publish_wait`?, how many).
    bursts: Vec<(bool, u64)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        1usize..=8,
        1usize..=16,
        0u64..=300,
        0u64..=4,
        prop::collection::vec((any::<bool>(), 1u64..=20), 1..=6),
    )
        .prop_map(
            |(capacity, max_batch, store_delay_us, failures, bursts)| Plan {
                capacity,
                max_batch,
                store_delay_us,
                failures,
                bursts,
            },
        )
}

async fn run(plan: Plan) {
    let store = TestStore::new(MemStore::new());
    let log = open(store.clone()).await;
    store.set_delay(Duration::from_micros(plan.store_delay_us));
    let bus = TransitionBus::with_backpressure(plan.capacity).unwrap();
    let config = PersisterConfig {
        max_batch: plan.max_batch,
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        },
        ..Default::default()
    };
    let p = spawn_persister(bus.receiver(), log.clone(), config);
    store.fail_next(plan.failures);
    let mut published = 0u64;
    for &(wait, n) in &plan.bursts {
        for _ in 0..n {
            if wait {
                let id = tokio::time::timeout(HANG, bus.publish_wait(fired(published)))
                    .await
                    .expect("publish_wait completes while the persister works")
                    .unwrap();
                assert_eq!(id, published, "its logical id");
            } else {
                bus.publish(fired(published));
            }
            published += 1;
        }
    }
    let settled = |s: event_log_bus::PersisterStats| s.persisted + s.dropped;
    wait_until("all settled", || settled(p.stats()) == published).await;

    // Everything is settled, so the whole window is free again: with the store held,
    // exactly `capacity` publish_wait get in at once and the next one must wait.
    store.set_gate(false);
    for _ in 0..plan.capacity {
        let id = bus
            .publish_wait(fired(published))
            .now_or_never()
            .expect("a free slot")
            .unwrap();
        assert_eq!(id, published);
        published += 1;
    }
    assert!(
        bus.publish_wait(fired(published)).now_or_never().is_none(),
        "the window holds more than its capacity"
    );
    store.set_gate(true);
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!(stats.received, published, "{stats:?}");
    assert_eq!(stats.abandoned, 0, "never given up: {stats:?}");
    if plan.bursts.iter().all(|&(wait, _)| wait) {
        assert_eq!((stats.dropped, stats.gaps), (0, 0), "{stats:?}");
    }
    let acc = check_runs(
        &log.all_sled_events(&log.sled_id()).await.unwrap(),
        &[(stats.run, published)],
    );
    assert_eq!(acc[0].transitions, stats.persisted);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    #[test]
    fn the_window_is_exact_and_nothing_waits_for_ever(plan in plan()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(plan));
    }
}
