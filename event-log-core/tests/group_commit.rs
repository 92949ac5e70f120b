//! Concurrent appends share store calls (group commit).

use event_log_conformance::read::ReadAll;
use std::sync::Arc;
use std::time::Duration;

use event_log_conformance::fault::FaultStore;
use event_log_conformance::producers::{Outcomes, check_stored, produce};
use event_log_conformance::scenarios::cases;
use event_log_core::{Error, EventLog, MemStore, SigningKey, Transition};

/// A MemStore whose appends take a while, like a real sync.
fn slow_store() -> FaultStore<MemStore> {
    let store = FaultStore::new(MemStore::new());
    store.set_delay(Duration::from_millis(2));
    store
}

/// A log over a [`slow_store`], signed by the key of bytes `[n; 32]`.
async fn slow_log(n: u8) -> Arc<EventLog<FaultStore<MemStore>>> {
    let log = EventLog::open(slow_store(), SigningKey::from_bytes(&[n; 32])).await;
    Arc::new(log.expect("open a log over a slow store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_store_calls() {
    let log = slow_log(1).await;
    let mut tasks = Vec::new();
    for p in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                log.append_transition(Transition::now(format!("p{p}-{i}"), "a", "b", "E"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.appended, 320);
    assert!(
        stats.append_calls <= 40,
        "32 producers x 10 appends should need few store calls: {stats:?}"
    );
}

/// Checks `mem` after appends through `log` that met failures ([`check_stored`];
/// no more stories stored than acked or failed), then that a log reopened over
/// `mem` with `key` has the events `log` had.
async fn stored_then_reopened(
    log: Arc<EventLog<FaultStore<MemStore>>>,
    mem: MemStore,
    key: SigningKey,
    out: &Outcomes,
) {
    let stored = check_stored(&log, &mem, &out.acked).await.unwrap();
    assert!(stored.len() <= out.acked.len() + out.failed.len());
    let events = log.all_events().await.unwrap();
    drop(log);
    let reopened = EventLog::open(mem, key).await.unwrap();
    assert_eq!(reopened.all_events().await.unwrap(), events);
}

/// Every failed append of `out` has an unknown outcome (in doubt, or the store's
/// error): none was refused.
fn only_unknown_outcomes(out: &Outcomes) {
    for (story, e) in &out.failed {
        assert!(
            matches!(e, Error::InDoubt { .. } | Error::Store(_)),
            "unexpected error for {story}: {e}"
        );
    }
}

/// Store failures in the middle of pipelined group commits lose nothing and reuse no
/// seq: every entry is either acknowledged or reported in doubt, and after a flush
/// the log holds each exactly once with contiguous ids, also after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_during_pipelined_appends_lose_nothing() {
    let mem = MemStore::new();
    let key = SigningKey::from_bytes(&[3; 32]);
    // Chosen appends fail before writing anything.
    let store = FaultStore::new(mem.clone());
    store.set_delay(Duration::from_millis(1));
    for n in [3, 4, 8, 12] {
        store.fail_append(n);
    }
    let log = Arc::new(EventLog::open(store, key.clone()).await.unwrap());
    let out = produce(&log, 16, 8).await.unwrap();
    only_unknown_outcomes(&out);
    log.flush().await.unwrap();
    stored_then_reopened(log, mem, key, &out).await;
}

/// A leader hands the writer lock on: under a continuous stream of appends from
/// other tasks, one task's append and a merge still complete (liveness, not speed:
/// the timeout only turns a hang into a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_merges_are_not_starved_by_a_busy_leader() {
    let log = slow_log(4).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..8 {
        let (log, stop) = (log.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                log.append_transition(Transition::now(format!("p{p}-{i}"), "a", "b", "E"))
                    .await
                    .unwrap();
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let peer = EventLog::open(MemStore::new(), SigningKey::from_bytes(&[5; 32]))
        .await
        .unwrap();
    peer.append_transition(Transition::now("peer", "a", "b", "E"))
        .await
        .unwrap();
    let work = async {
        log.append_transition(Transition::now("mine", "a", "b", "E"))
            .await
            .unwrap();
        let report = log
            .merge(peer.export_since(&Default::default()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(report.applied(), 1);
    };
    let finished = tokio::time::timeout(Duration::from_secs(30), work).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in producers {
        p.await.unwrap();
    }
    assert!(
        finished.is_ok(),
        "an append and a merge must complete while others append"
    );
}

/// How a call of the pipelined store ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Takes effect normally.
    Ok,
    /// Fails before writing anything, with an unknown outcome for the caller.
    LostBefore,
    /// Writes, then fails as if the answer was lost.
    LostAfter,
}

/// A MemStore that pipelines like a database connection (calls take effect strictly
/// in the order they started, the ordered append checking its predecessor), with
/// chosen calls failing before or after writing.
fn lane_store(inner: MemStore, depth: usize, fates: &[Fate]) -> FaultStore<MemStore> {
    let store = FaultStore::pipelined(inner, depth);
    for (i, fate) in fates.iter().enumerate() {
        match fate {
            Fate::Ok => {}
            Fate::LostBefore => store.fail_append(i as u64 + 1),
            Fate::LostAfter => store.lose_answer(i as u64 + 1),
        }
    }
    store
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(cases(24)))]

    /// With several groups in flight at once, calls lost before or after writing lose
    /// nothing and leave no hole: every acknowledged entry is stored once, the stored
    /// seqs are contiguous from 1 (so no op waits for a predecessor that will never
    /// come), ids stay contiguous, and a reopen sees the same log.
    #[test]
    fn pipelined_appends_survive_lost_calls(
        current_thread in proptest::bool::ANY,
        depth in 2usize..5,
        fates in proptest::collection::vec(
            proptest::prop_oneof![
                6 => proptest::strategy::Just(Fate::Ok),
                1 => proptest::strategy::Just(Fate::LostBefore),
                1 => proptest::strategy::Just(Fate::LostAfter),
            ],
            0..40,
        ),
    ) {
        // On a current-thread runtime a leader that never yields would hang the
        // whole runtime: a watchdog turns that into a failure.
        let rt = if current_thread {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        }
        .unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let run = std::thread::spawn(move || {
            rt.block_on(pipelined_case(depth, fates));
            let _ = done_tx.send(());
        });
        match done_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => run.join().unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // The case panicked: report its panic.
                if let Err(panic) = run.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("pipelined appends hung (current_thread: {current_thread})")
            }
        }
    }
}

/// One case of `pipelined_appends_survive_lost_calls`.
async fn pipelined_case(depth: usize, fates: Vec<Fate>) {
    let mem = MemStore::new();
    let key = SigningKey::from_bytes(&[6; 32]);
    let log = Arc::new(
        EventLog::open(lane_store(mem.clone(), depth, &fates), key.clone())
            .await
            .unwrap(),
    );
    let out = produce(&log, 12, 6).await.unwrap();
    only_unknown_outcomes(&out);
    // A flush is a store call too, and may be lost: retry until one lands.
    let mut flushed = false;
    for _ in 0..64 {
        if log.flush().await.is_ok() {
            flushed = true;
            break;
        }
    }
    assert!(
        flushed,
        "a flush lands once the injected failures are spent"
    );
    assert_eq!(log.in_doubt().await, 0);
    stored_then_reopened(log, mem, key, &out).await;
}

/// A retry whose key lookup read the store before the first append with that key
/// committed still gets the first event: the lookup found nothing, but the event
/// entered the view while the retry waited, and the log answers from that (it
/// keeps no map of every key, so the store and what came after its read are all
/// it has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_lookup_missed_a_commit_in_flight_gets_the_first_event() {
    let store = FaultStore::new(MemStore::new());
    let log = Arc::new(
        EventLog::open(store.clone(), SigningKey::from_bytes(&[7; 32]))
            .await
            .unwrap(),
    );
    let keyed = || Transition::now("s-1", "backlog", "coding", "Retry").with_idempotency_key("k");
    // The first append's write waits at the gate: it is not stored yet.
    let gate = store.close_gate();
    let first = {
        let log = log.clone();
        tokio::spawn(async move { log.append_transition(keyed()).await })
    };
    while store.entered() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The retry looks the key up now (the store holds nothing) and queues.
    let retry = {
        let log = log.clone();
        tokio::spawn(async move { log.append_transition(keyed()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!retry.is_finished(), "the retry waits for the first append");
    drop(gate);
    let first = first.await.unwrap().unwrap();
    let retry = retry.await.unwrap().unwrap();
    assert_eq!(retry, first, "the retry gets the first event");
    assert_eq!(store.appends(), 1, "one write");
    assert_eq!(log.visible_len(), 1, "one event");
}
