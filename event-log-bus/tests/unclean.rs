//! A persister run that ends without a clean shutdown (here: its runtime is dropped,
//! as a crash drops everything) is recorded by the next run as one unclean-shutdown
//! sentinel, with where persisting stopped and how many published ids are known lost.

mod common;

use event_log_conformance::read::ReadAll;
use std::time::Duration;

use common::{TestStore, fired, open, open_read_only, wait_until};
use event_log_bus::{PersisterConfig, PersisterStats, TransitionBus, spawn_persister};
use event_log_core::{Entry, LoggedEvent, MemStore, RunId, Unclean};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn uncleans(events: &[LoggedEvent]) -> Vec<Unclean> {
    events
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Unclean(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

/// A run that persists logical id 0, saves its record after 1..=4 were published,
/// and dies while appending them.
fn crashed_run(mem: &MemStore) -> RunId {
    let rt = runtime();
    let run = rt.block_on(async {
        let store = TestStore::new(mem.clone());
        let log = open(store.clone()).await;
        let bus = TransitionBus::new(64).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        store.set_gate(false);
        let entered = store.entered();
        bus.publish(fired(0));
        wait_until("id 0 in the store", || store.entered() == entered + 1).await;
        for i in 1..=4 {
            bus.publish(fired(i));
        }
        // Past the record's refresh interval, id 0 is stored: the record is
        // refreshed with the 5 published; 1..=4 then wait at the gate for ever.
        tokio::time::sleep(Duration::from_millis(150)).await;
        store.let_through(1);
        wait_until("1..=4 in the store", || store.entered() == entered + 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::mem::forget(bus);
        p.run_id()
    });
    // The crash: every task dropped where it stands, nothing shut down.
    drop(rt);
    run
}

/// One clean run of `n` transitions on `mem`; returns its stats and the log after it.
fn clean_run(mem: &MemStore, n: u64) -> (PersisterStats, Vec<LoggedEvent>) {
    runtime().block_on(async {
        let log = open(mem.clone()).await;
        let bus = TransitionBus::new(64).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        for i in 0..n {
            bus.publish(fired(i));
        }
        let stats = p.shutdown().await.unwrap();
        (stats, log.all_sled_events(&log.sled_id()).await.unwrap())
    })
}

/// The crashed run's record says 5 published, the log holds id 0: the next run
/// appends one sentinel `from` 1, `known_lost` 4, before anything of its own; a run
/// after a clean end appends none.
#[test]
fn crash_is_recorded_once_by_the_next_run_with_the_ids_known_lost() {
    let mem = MemStore::new();
    let crashed = crashed_run(&mem);
    let (stats, events) = clean_run(&mem, 2);
    assert_eq!(
        (stats.unclean_recorded, stats.unclean_known_lost),
        (1, 4),
        "{stats:?}"
    );
    assert!(stats.record_saves >= 2, "first and last record: {stats:?}");
    let found = uncleans(&events);
    assert_eq!(found.len(), 1, "one unclean sentinel: {events:#?}");
    let u = &found[0];
    assert_eq!((u.run, u.from, u.known_lost), (crashed, 1, 4), "{u:?}");
    // Id 0 of the crashed run, the sentinel, then the new run.
    assert!(matches!(&events[0].entry, Entry::Transition(t)
        if t.origin.is_some_and(|o| o.run == crashed && o.id == 0)));
    assert!(matches!(&events[1].entry, Entry::Unclean(_)));
    assert_eq!(events.len(), 4);
    for e in &events[2..] {
        assert!(matches!(&e.entry, Entry::Transition(t)
            if t.origin.is_some_and(|o| o.run == stats.run)));
    }
    assert!(
        events[1]
            .render()
            .contains("events between 1 and 4 were published but never persisted"),
        "{}",
        events[1].render()
    );
    // The second run ended cleanly: the third records nothing.
    let (stats, events) = clean_run(&mem, 1);
    assert_eq!(stats.unclean_recorded, 0);
    assert_eq!(uncleans(&events).len(), 1, "{events:#?}");
    assert_eq!(events.len(), 5);
}

/// The store is down when the next run starts, and the log cannot sign anything (it
/// holds another append in doubt): the sentinel is given up like any batch, waits,
/// and still leads that run's entries once the store works again.
#[test]
fn sentinel_waits_for_a_failing_store_and_still_comes_first() {
    let mem = MemStore::new();
    let crashed = crashed_run(&mem);
    let (stats, events) = runtime().block_on(async {
        let store = TestStore::new(mem.clone());
        let log = open(store.clone()).await;
        store.fail_next(1_000);
        let other = event_log_core::Transition::now("other", "a", "b", "E");
        log.append_transition(other).await.unwrap_err();
        let config = PersisterConfig {
            retry: event_log_bus::RetryPolicy {
                max_retries: 1,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
                ..Default::default()
            },
            ..Default::default()
        };
        let bus = TransitionBus::new(64).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), config);
        wait_until("the sentinel given up", || p.stats().store_errors >= 2).await;
        bus.publish(fired(0));
        wait_until("id 0 given up", || p.stats().pending_gap == 1).await;
        assert_eq!(p.stats().unclean_recorded, 0);
        store.fail_next(0);
        wait_until("the sentinel recorded", || p.stats().unclean_recorded == 1).await;
        bus.publish(fired(1));
        let stats = p.shutdown().await.unwrap();
        (stats, log.all_sled_events(&log.sled_id()).await.unwrap())
    });
    assert!(stats.is_settled(), "{stats:?}");
    assert_eq!((stats.persisted, stats.dropped), (1, 1), "{stats:?}");
    assert_eq!(events[1].story_id(), Some("other"));
    assert!(matches!(&events[2].entry, Entry::Unclean(u) if u.run == crashed && u.from == 1));
    assert!(matches!(&events[3].entry, Entry::Gap(g) if g.run == stats.run && g.from == 0));
    assert!(matches!(&events[4].entry, Entry::Transition(t)
        if t.origin.is_some_and(|o| o.run == stats.run && o.id == 1)));
    assert_eq!(events.len(), 5);
}

/// Clean runs, one after another, never write a sentinel.
#[test]
fn clean_shutdowns_leave_no_sentinel() {
    let mem = MemStore::new();
    for _ in 0..3 {
        let (stats, events) = clean_run(&mem, 3);
        assert!(stats.is_settled(), "{stats:?}");
        assert!(uncleans(&events).is_empty(), "{events:#?}");
    }
}

/// A run whose sentinel is already in the log (its successor recorded it, then died
/// before writing its own record) is not recorded twice; a garbled record is
/// treated as absent, without a panic.
#[test]
fn recorded_runs_and_garbled_records_add_no_sentinel() {
    use event_log_core::OpStore;
    let mem = MemStore::new();
    crashed_run(&mem);
    let key = runtime().block_on(async { mem_meta(&mem).await.remove(0).0 });
    let crashed_record = runtime().block_on(mem.get_meta(&key)).unwrap().unwrap();
    let (stats, _) = clean_run(&mem, 1);
    assert_eq!(stats.unclean_recorded, 1);
    // As if that run had died before writing its own record.
    runtime()
        .block_on(mem.put_meta(&key, &crashed_record))
        .unwrap();
    let (stats, events) = clean_run(&mem, 1);
    assert_eq!(stats.unclean_recorded, 0, "{stats:?}");
    assert_eq!(uncleans(&events).len(), 1);
    for garbage in [&b"not json"[..], br#"{"version":9}"#, b""] {
        runtime().block_on(mem.put_meta(&key, garbage)).unwrap();
        let (stats, events) = clean_run(&mem, 1);
        assert_eq!(stats.unclean_recorded, 0, "{stats:?}");
        assert!(stats.is_settled());
        assert_eq!(uncleans(&events).len(), 1);
    }
    // And the run after a garbled record wrote a good one again.
    let (stats, _) = clean_run(&mem, 1);
    assert_eq!(stats.unclean_recorded, 0);
}

/// A read-only log cannot record anything: the persister still starts, says so and
/// runs (its appends fail like any refused append), and the record is left as it was.
#[test]
fn read_only_log_does_not_break_the_start() {
    let mem = MemStore::new();
    crashed_run(&mem);
    let before = runtime().block_on(async { mem_meta(&mem).await });
    runtime().block_on(async {
        let log = open_read_only(mem.clone()).await;
        let bus = TransitionBus::new(8).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!p.is_finished(), "the persister runs");
        let stats = p.shutdown().await.unwrap();
        assert_eq!(stats.received, 0);
        assert!(uncleans(&log.all_sled_events(&log.sled_id()).await.unwrap()).is_empty());
    });
    let after = runtime().block_on(async { mem_meta(&mem).await });
    assert_eq!(before, after, "a read-only start writes nothing");
}

/// Every meta value of the store, sorted, for comparison.
async fn mem_meta(mem: &MemStore) -> Vec<(String, Vec<u8>)> {
    use event_log_core::OpStore;
    let log = open_read_only(mem.clone()).await;
    let key = format!("bus-run/{}", log.sled_id());
    let v = mem.get_meta(&key).await.unwrap();
    vec![(key, v.unwrap_or_default())]
}
