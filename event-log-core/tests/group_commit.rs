//! Concurrent appends share store calls (group commit).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_log_core::{
    EventLog, MemStore, OpId, OpRecord, OpStore, Position, SigningKey, StoreError, Transition,
    VersionVector,
};

/// A MemStore whose appends take a while, like a real sync.
struct SlowStore(MemStore);

#[async_trait]
impl OpStore for SlowStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.0.append(ops).await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.0.load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.0.since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.0.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.0.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.0.count().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_store_calls() {
    let log = Arc::new(
        EventLog::open(SlowStore(MemStore::new()), SigningKey::from_bytes(&[1; 32]))
            .await
            .unwrap(),
    );
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

/// A MemStore that fails chosen appends (before writing anything).
struct FlakyStore {
    inner: MemStore,
    calls: std::sync::atomic::AtomicU64,
    fail_on: Vec<u64>,
}

#[async_trait]
impl OpStore for FlakyStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.fail_on.contains(&n) {
            return Err(StoreError::Unavailable {
                message: format!("injected failure of append call {n}"),
                source: None,
            });
        }
        self.inner.append(ops).await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.inner.load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.inner.since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.inner.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
}

/// Store failures in the middle of pipelined group commits lose nothing and reuse no
/// seq: every entry is either acknowledged or reported in doubt, and after a flush
/// the log holds each exactly once with contiguous ids, also after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_during_pipelined_appends_lose_nothing() {
    let mem = MemStore::new();
    let key = SigningKey::from_bytes(&[3; 32]);
    let store = FlakyStore {
        inner: mem.clone(),
        calls: Default::default(),
        fail_on: vec![2, 3, 7, 11],
    };
    let log = Arc::new(EventLog::open(store, key.clone()).await.unwrap());
    let mut tasks = Vec::new();
    for p in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..8 {
                let r = log
                    .append_transition(Transition::now(format!("p{p}-{i}"), "a", "b", "E"))
                    .await;
                outcomes.push((format!("p{p}-{i}"), r));
            }
            outcomes
        }));
    }
    let mut acked = 0;
    let mut maybe = Vec::new();
    for t in tasks {
        for (story, r) in t.await.unwrap() {
            match r {
                Ok(_) => acked += 1,
                Err(event_log_core::Error::InDoubt { .. })
                | Err(event_log_core::Error::Store(_)) => maybe.push(story),
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
    }
    log.flush().await.unwrap();
    let events = log.events();
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "contiguous ids"
    );
    let stories: std::collections::HashSet<String> = events
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    assert_eq!(stories.len(), events.len(), "no entry stored twice");
    assert!(events.len() >= acked, "every acknowledged entry is stored");
    assert!(events.len() <= acked + maybe.len());
    drop(log);
    let reopened = EventLog::open(mem, key).await.unwrap();
    assert_eq!(reopened.events(), events);
}

/// A leader hands the writer lock on: under a continuous stream of appends from
/// other tasks, one task's append and a merge still complete (liveness, not speed:
/// the timeout only turns a hang into a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_merges_are_not_starved_by_a_busy_leader() {
    let log = Arc::new(
        EventLog::open(SlowStore(MemStore::new()), SigningKey::from_bytes(&[4; 32]))
            .await
            .unwrap(),
    );
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
            .merge(peer.export_since(&Default::default()))
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

/// How a [`LaneStore`] call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Takes effect normally.
    Ok,
    /// Fails before writing anything, with an unknown outcome for the caller.
    LostBefore,
    /// Writes, then fails as if the answer was lost.
    LostAfter,
}

/// A MemStore that pipelines like a database connection: calls take a ticket when
/// first polled, take effect strictly in ticket order after a varying delay, and the
/// ordered append checks its predecessor. Chosen calls fail before or after writing.
struct LaneStore {
    inner: MemStore,
    depth: usize,
    tickets: std::sync::atomic::AtomicU64,
    done: tokio::sync::watch::Sender<u64>,
    fates: Vec<Fate>,
}

impl LaneStore {
    fn new(inner: MemStore, depth: usize, fates: Vec<Fate>) -> Self {
        LaneStore {
            inner,
            depth,
            tickets: Default::default(),
            done: tokio::sync::watch::Sender::new(0),
            fates,
        }
    }

    /// Runs `f` when every earlier ticket has taken effect, with this call's fate.
    async fn in_order(
        &self,
        ticket: u64,
        f: impl AsyncFnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Calls overlap in flight: a varying delay before the server "runs" them.
        tokio::time::sleep(Duration::from_micros(200 * (ticket % 4))).await;
        let mut done = self.done.subscribe();
        done.wait_for(|d| *d == ticket).await.unwrap();
        let fate = self.fates.get(ticket as usize).copied().unwrap_or(Fate::Ok);
        let result = match fate {
            Fate::Ok => f().await,
            Fate::LostBefore => Err(StoreError::Unavailable {
                message: format!("injected: call {ticket} lost before writing"),
                source: None,
            }),
            Fate::LostAfter => f().await.and(Err(StoreError::Unavailable {
                message: format!("injected: call {ticket} lost after writing"),
                source: None,
            })),
        };
        self.done.send_modify(|d| *d += 1);
        result
    }
}

#[async_trait]
impl OpStore for LaneStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.in_order(ticket, async || self.inner.append(ops).await)
            .await
    }
    fn append_pipeline(&self) -> usize {
        self.depth
    }
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.in_order(ticket, async || self.inner.append_after(after, ops).await)
            .await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.inner.load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.inner.since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.inner.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
}

/// Proptest cases: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
        EventLog::open(LaneStore::new(mem.clone(), depth, fates), key.clone())
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for p in 0..12 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..6 {
                let story = format!("p{p}-{i}");
                let r = log
                    .append_transition(Transition::now(story.clone(), "a", "b", "E"))
                    .await;
                outcomes.push((story, r));
            }
            outcomes
        }));
    }
    let mut acked = std::collections::HashSet::new();
    let mut maybe = 0;
    for t in tasks {
        for (story, r) in t.await.unwrap() {
            match r {
                Ok(_) => {
                    acked.insert(story);
                }
                Err(event_log_core::Error::InDoubt { .. })
                | Err(event_log_core::Error::Store(_)) => maybe += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
    }
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
    let stored = mem.load(Position::START, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = stored.iter().map(|(_, r)| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "stored seqs are contiguous, in order"
    );
    let events = log.events();
    assert_eq!(events.len(), stored.len(), "every stored op is visible");
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (0..events.len() as u64).collect::<Vec<_>>());
    let stories: std::collections::HashSet<String> = events
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    assert_eq!(stories.len(), events.len(), "no entry stored twice");
    assert!(
        acked.is_subset(&stories),
        "every acknowledged entry is stored"
    );
    assert!(events.len() <= acked.len() + maybe);
    drop(log);
    let reopened = EventLog::open(mem, key).await.unwrap();
    assert_eq!(reopened.events(), events);
}
