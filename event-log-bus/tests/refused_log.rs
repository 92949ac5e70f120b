//! A log that refuses every append for a reason no retry cures (read-only, rolled
//! back, this sled excluded) stops the persister at once with a typed error that
//! names the reason, instead of retrying for ever while the publisher waits. What it
//! received is counted as not persisted (`pending_gap`), and its run is left marked
//! unclean, so the next run records the loss.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fired, key, open_read_only};
use event_log_bus::{PersisterConfig, PersisterError, TransitionBus, spawn_persister};
use event_log_core::{
    Error, EventLog, EventLogConfig, MemStore, MemWatermark, OpStore, SharedWatermark,
};

/// Publishes three transitions to a persister over `log` and waits (bounded, as a
/// hang guard) for it to stop by itself.
async fn run_until_stopped<S: OpStore>(log: Arc<EventLog<S>>) -> PersisterError {
    let bus = TransitionBus::new(16).unwrap();
    let p = spawn_persister(bus.receiver(), log, PersisterConfig::default());
    for i in 0..3 {
        bus.publish(fired(i));
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), p.join()).await;
    match ended.expect("the persister stops by itself instead of retrying for ever") {
        Ok(stats) => panic!("expected the persister to fail, it ended with {stats:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_log_stops_the_persister_with_the_reason() {
    let log = open_read_only(MemStore::new()).await;
    match run_until_stopped(log).await {
        PersisterError::Refused { stats, source } => {
            assert!(matches!(source, Error::ReadOnly { .. }), "{source}");
            assert_eq!(stats.persisted, 0, "{stats:?}");
            assert!(stats.pending_gap >= 1, "{stats:?}");
            assert_eq!(
                stats.store_errors, 1,
                "refused once, not retried: {stats:?}"
            );
        }
        other => panic!("expected Refused, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_store_stops_the_persister_with_the_reason() {
    let mark = MemWatermark::new();
    let config = EventLogConfig::default().with_watermark(Some(SharedWatermark::new(mark.clone())));
    let first = EventLog::open_with(MemStore::new(), key(1), config.clone())
        .await
        .unwrap();
    for i in 0..5 {
        first.append_transition(fired(i)).await.unwrap();
    }
    first.close().await.unwrap();
    // The same sled over a store that lost all five: its mark says it signed them.
    let store = MemStore::new();
    let log = Arc::new(
        EventLog::open_with(store.clone(), key(1), config)
            .await
            .unwrap(),
    );
    match run_until_stopped(log).await {
        PersisterError::Refused { stats, source } => {
            assert!(
                matches!(source, Error::RolledBack { held: 0, signed: 5 }),
                "{source}"
            );
            assert_eq!(stats.persisted, 0, "{stats:?}");
            assert_eq!(
                stats.store_errors, 1,
                "refused once, not retried: {stats:?}"
            );
        }
        other => panic!("expected Refused, got {other}"),
    }
    assert_eq!(store.count().await.unwrap(), 0, "nothing was signed again");
}
