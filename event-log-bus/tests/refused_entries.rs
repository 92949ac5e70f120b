//! A transition the log would refuse (over its op limits) costs only its own logical
//! id, recorded as a gap; the transitions around it are persisted.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{fired, open, wait_until};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::{Entry, MemStore, Transition};

/// Ten transitions in one burst (one chunk), the fifth with a 70,000-character story
/// id: nine persisted, one gap naming exactly id 4, nothing retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_transition_becomes_a_gap_of_its_own_id() {
    let log = open(MemStore::new()).await;
    let bus = TransitionBus::new(1024).unwrap();
    let rx = bus.receiver();
    for i in 0..10 {
        if i == 4 {
            bus.publish(Transition::now("x".repeat(70_000), "a", "b", "E"));
        } else {
            bus.publish(fired(i));
        }
    }
    let config = PersisterConfig {
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = spawn_persister(rx, log.clone(), config);
    wait_until("all settled", || {
        let s = p.stats();
        s.received == 10 && s.is_settled()
    })
    .await;
    let stats = p.shutdown().await.unwrap();
    assert_eq!(stats.persisted, 9, "{stats:?}");
    assert_eq!(
        (stats.gaps, stats.dropped, stats.refused),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.store_errors, 0,
        "refused before any append: {stats:?}"
    );
    let gaps: Vec<(u64, u64)> = log
        .all_events()
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Gap(g) => Some((g.from, g.to)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![(4, 4)]);
}
