//! Property: for random capacities, bursts and consumer (store) delays, each
//! persister run satisfies persisted + Σ gap sizes = published, gaps disjoint and in
//! order, every transition at its exact logical id — in the live log and after a
//! reopen from the same store; two runs' gaps carry different run ids.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, cases, check_runs, fired, open};
use event_log_bus::{PersisterConfig, PersisterStats, TransitionBus, spawn_persister};
use event_log_core::{MemStore, RunId};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct RunPlan {
    capacity: usize,
    max_batch: usize,
    /// Per append of the store.
    store_delay_us: u64,
    /// (burst size, pause after it in µs).
    bursts: Vec<(u64, u64)>,
}

fn run_plan() -> impl Strategy<Value = RunPlan> {
    (
        1usize..=16,
        1usize..=64,
        0u64..=400,
        prop::collection::vec((0u64..=40, 0u64..=1500), 1..=6),
    )
        .prop_map(|(capacity, max_batch, store_delay_us, bursts)| RunPlan {
            capacity,
            max_batch,
            store_delay_us,
            bursts,
        })
}

/// One persister run over `store`, opened fresh (a restart); returns (run, published,
/// final counters).
async fn one_run(store: &TestStore, plan: &RunPlan) -> (RunId, u64, PersisterStats) {
    let log = open(store.clone()).await;
    store.set_delay(Duration::from_micros(plan.store_delay_us));
    let bus = TransitionBus::new(plan.capacity).unwrap();
    let config = PersisterConfig {
        max_batch: plan.max_batch,
        ..Default::default()
    };
    let p = spawn_persister(bus.receiver(), log.clone(), config);
    let mut published = 0;
    for &(size, pause_us) in &plan.bursts {
        for _ in 0..size {
            bus.publish(fired(published));
            published += 1;
        }
        tokio::time::sleep(Duration::from_micros(pause_us)).await;
    }
    assert_eq!(bus.published(), published);
    let stats = p.shutdown().await.unwrap();
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!(stats.received, published);
    assert_eq!(stats.persisted + stats.dropped, published);
    assert_eq!(stats.dropped, stats.lagged);
    (stats.run, published, stats)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(16)))]

    #[test]
    fn every_logical_id_is_persisted_or_in_exactly_one_gap(a in run_plan(), b in run_plan()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = TestStore::new(MemStore::new());
            let (run_a, n_a, stats_a) = one_run(&store, &a).await;
            // Run b starts on a reopened log: a restart of the service.
            let (run_b, n_b, stats_b) = one_run(&store, &b).await;
            assert_ne!(run_a, run_b, "each run has its own id");

            store.set_delay(Duration::ZERO);
            let reopened = open(store.inner().clone()).await;
            let events = reopened.all_sled_events(&reopened.sled_id()).await.unwrap();
            let acc = check_runs(&events, &[(run_a, n_a), (run_b, n_b)]);
            for (acc, stats) in acc.iter().zip([stats_a, stats_b]) {
                assert_eq!(acc.transitions, stats.persisted);
                assert_eq!(acc.dropped(), stats.dropped);
                assert_eq!(acc.gaps.len() as u64, stats.gaps);
            }
        });
    }
}
