//! The persister reports gaps, lag, retries and refused transitions through the
//! `metrics` facade, under the names `event_log_bus::metrics` documents.
//!
//! The recorder is local to the test's thread, so each test drives a current-thread
//! runtime there: the persister task runs on the same thread.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{TestStore, fired, open};
use event_log_bus::metrics::{
    DROPPED_TRANSITIONS, GAPS, LAG_TRANSITIONS, LAGGED_TRANSITIONS, PENDING_GAP, PERSISTER_RETRIES,
    REFUSED_TRANSITIONS,
};
use event_log_bus::{PersisterConfig, RetryPolicy, TransitionBus, spawn_persister};
use event_log_core::{MemStore, Transition};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// (name, labels, value) of every metric recorded.
type Seen = Vec<(String, Vec<(String, String)>, DebugValue)>;

/// Runs `test` on a current-thread runtime with a local recorder; what it recorded.
fn recording<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Seen {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(test())
    });
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let key = k.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, v)
        })
        .collect()
}

fn counter(seen: &Seen, name: &str, label: Option<(&str, &str)>) -> u64 {
    seen.iter()
        .filter(|(n, labels, _)| {
            n == name && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn histogram(seen: &Seen, name: &str) -> Vec<f64> {
    seen.iter()
        .filter(|(n, _, _)| n == name)
        .flat_map(|(_, _, v)| match v {
            DebugValue::Histogram(h) => h.iter().map(|x| x.into_inner()).collect::<Vec<_>>(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .collect()
}

fn gauge(seen: &Seen, name: &str) -> Option<f64> {
    seen.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, _, v)| match v {
            DebugValue::Gauge(g) => g.into_inner(),
            other => panic!("{name} is not a gauge: {other:?}"),
        })
}

fn quick_retries(max_retries: u32) -> PersisterConfig {
    PersisterConfig {
        retry: RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Five transitions published into a 1-slot channel before the persister reads any:
/// it lags by 4, and records one gap of those 4 ids. The metrics say the same.
#[test]
fn a_forced_lag_records_the_gap_and_the_lag() {
    let mut stats = None;
    let seen = recording(|| async {
        let log = open(MemStore::new()).await;
        let bus = TransitionBus::new(1).unwrap();
        let rx = bus.receiver();
        for i in 0..5 {
            bus.publish(fired(i));
        }
        let p = spawn_persister(rx, log, PersisterConfig::default());
        stats = Some(p.shutdown().await.unwrap());
    });
    let stats = stats.unwrap();
    assert_eq!(
        (stats.persisted, stats.gaps, stats.dropped, stats.lagged),
        (1, 1, 4, 4),
        "{stats:?}"
    );
    assert_eq!(counter(&seen, GAPS, None), 1, "{seen:?}");
    assert_eq!(counter(&seen, DROPPED_TRANSITIONS, None), 4, "{seen:?}");
    assert_eq!(counter(&seen, LAGGED_TRANSITIONS, None), 4, "{seen:?}");
    assert_eq!(histogram(&seen, LAG_TRANSITIONS), [4.0], "{seen:?}");
    assert_eq!(counter(&seen, PERSISTER_RETRIES, None), 0, "{seen:?}");
    for (name, labels, _) in &seen {
        assert!(name.starts_with("event_log_"), "{name}");
        for (k, v) in labels {
            assert!(v.len() < 32, "label {k}={v} looks like an id");
        }
    }
}

/// The first append fails (its outcome unknown: in doubt, not retried); the next
/// batch's first attempt cannot complete that doubt and is retried once, then both
/// are stored: one retry of `op="append"`, and no gap.
#[test]
fn a_retried_append_is_counted() {
    let mut stats = None;
    let seen = recording(|| async {
        let store = TestStore::new(MemStore::new());
        let log = open(store.clone()).await;
        let bus = TransitionBus::new(16).unwrap();
        let p = spawn_persister(bus.receiver(), log, quick_retries(5));
        store.script(&[false, false]);
        bus.publish(fired(0));
        common::wait_until("in doubt", || p.stats().in_doubt == 1).await;
        bus.publish(fired(1));
        common::wait_until("both stored", || p.stats().persisted == 2).await;
        stats = Some(p.shutdown().await.unwrap());
    });
    let stats = stats.unwrap();
    assert_eq!((stats.persisted, stats.store_errors), (2, 2), "{stats:?}");
    assert_eq!(
        counter(&seen, PERSISTER_RETRIES, Some(("op", "append"))),
        1,
        "{seen:?}"
    );
    assert_eq!(counter(&seen, PERSISTER_RETRIES, None), 1, "{seen:?}");
    assert_eq!(counter(&seen, GAPS, None), 0, "{seen:?}");
}

/// A transition over the log's limits is one refused transition and one gap of one
/// id; a store down past the budget leaves a pending gap, which the gauge shows.
#[test]
fn refused_transitions_and_the_pending_gap_are_reported() {
    let seen = recording(|| async {
        let store = TestStore::new(MemStore::new());
        let log = open(store.clone()).await;
        let bus = TransitionBus::new(16).unwrap();
        let rx = bus.receiver();
        bus.publish(fired(0));
        bus.publish(Transition::now("x".repeat(70_000), "a", "b", "E"));
        bus.publish(fired(2));
        let p = spawn_persister(rx, log, quick_retries(5));
        common::wait_until("all settled", || {
            let s = p.stats();
            s.received == 3 && s.is_settled()
        })
        .await;
        // The store now fails: the next batch is in doubt, and the one after it,
        // past the budget of 5 quick retries, given up.
        store.fail_next(u64::MAX);
        bus.publish(fired(3));
        common::wait_until("in doubt", || p.stats().in_doubt == 1).await;
        bus.publish(fired(4));
        common::wait_until("given up", || p.stats().pending_gap == 1).await;
        // Seen while pending; then the store recovers and the gap is stored.
        assert_eq!(p.stats().abandoned, 1);
        store.fail_next(0);
        let stats = p.shutdown().await.unwrap();
        assert_eq!(
            (stats.refused, stats.gaps, stats.dropped),
            (1, 2, 2),
            "{stats:?}"
        );
    });
    assert_eq!(counter(&seen, REFUSED_TRANSITIONS, None), 1, "{seen:?}");
    assert_eq!(counter(&seen, GAPS, None), 2, "{seen:?}");
    assert_eq!(counter(&seen, DROPPED_TRANSITIONS, None), 2, "{seen:?}");
    assert_eq!(
        gauge(&seen, PENDING_GAP),
        Some(0.0),
        "the pending gap was stored at the end: {seen:?}"
    );
}
