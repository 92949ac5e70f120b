//! Shared test helpers: keys, transitions named by logical id, a controllable store,
//! and the per-run invariant check.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use event_log_core::{
    Entry, EventLog, LoggedEvent, MemStore, OpId, OpRecord, OpStore, Position, RunId, SigningKey,
    StoreError, Transition, VersionVector,
};
use tokio::sync::watch;

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The transition published as logical id `i`: its story names the id.
pub fn fired(i: u64) -> Transition {
    Transition::now(format!("test_{i}"), "backlog", "coding", "DepsMet")
}

/// Proptest cases: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A MemStore that can fail the next N appends (`StoreError::Unavailable`), follow a
/// script of outcomes, slow every append down, or hold appends behind a closed gate.
/// Meta values go to the MemStore. Clones share everything.
#[derive(Clone)]
pub struct TestStore {
    pub mem: MemStore,
    fail_next: Arc<AtomicU64>,
    lose_reply_next: Arc<AtomicU64>,
    script: Arc<Mutex<VecDeque<bool>>>,
    delay_us: Arc<AtomicU64>,
    /// Open, and how many calls may pass while it is closed.
    gate: Arc<watch::Sender<(bool, u64)>>,
    /// Append calls that reached the store (before the gate).
    pub entered: Arc<AtomicU64>,
    /// Append calls past the gate.
    pub appends: Arc<AtomicU64>,
}

impl TestStore {
    pub fn new(mem: MemStore) -> Self {
        TestStore {
            mem,
            fail_next: Arc::default(),
            lose_reply_next: Arc::default(),
            script: Arc::default(),
            delay_us: Arc::default(),
            gate: Arc::new(watch::channel((true, 0)).0),
            entered: Arc::default(),
            appends: Arc::default(),
        }
    }
    /// The next append calls past the gate succeed (`true`) or fail without writing
    /// anything (`false`), in this order; then `fail_next` applies again.
    pub fn script(&self, outcomes: &[bool]) {
        self.script.lock().unwrap().extend(outcomes);
    }
    /// The next `n` appends fail without writing anything.
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    /// The next `n` appends write their ops, then report a failure (a reply lost).
    pub fn lose_reply_next(&self, n: u64) {
        self.lose_reply_next.store(n, Ordering::SeqCst);
    }
    pub fn failures_left(&self) -> u64 {
        self.fail_next.load(Ordering::SeqCst)
    }
    pub fn set_delay(&self, d: Duration) {
        self.delay_us.store(d.as_micros() as u64, Ordering::SeqCst);
    }
    /// While closed, appends wait.
    pub fn set_gate(&self, open: bool) {
        self.gate.send_modify(|g| g.0 = open);
    }
    /// Lets `n` more appends through the closed gate.
    pub fn let_through(&self, n: u64) {
        self.gate.send_modify(|g| g.1 += n);
    }
}

#[async_trait]
impl OpStore for TestStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.gate.subscribe();
        loop {
            let mut pass = false;
            self.gate.send_if_modified(|(open, passes)| {
                pass = *open || *passes > 0;
                let take = !*open && *passes > 0;
                if take {
                    *passes -= 1;
                }
                take
            });
            if pass || gate.changed().await.is_err() {
                break;
            }
        }
        let d = self.delay_us.load(Ordering::SeqCst);
        if d > 0 {
            tokio::time::sleep(Duration::from_micros(d)).await;
        }
        self.appends.fetch_add(1, Ordering::SeqCst);
        let scripted = self.script.lock().unwrap().pop_front();
        let failing = match scripted {
            Some(ok) => !ok,
            None => self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        };
        if failing {
            return Err(StoreError::Unavailable {
                message: "test store is down".into(),
                source: None,
            });
        }
        self.mem.append(ops).await?;
        let lose = self
            .lose_reply_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            return Err(StoreError::Unavailable {
                message: "test store lost the reply".into(),
                source: None,
            });
        }
        Ok(())
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.mem.load(after, limit).await
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.mem.since(vv, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.mem.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.mem.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.mem.count().await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.mem.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.mem.put_meta(key, value).await
    }
}

/// Waits (up to 10 s) until `cond` holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What one persister run left in the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunAccount {
    pub transitions: u64,
    pub gaps: Vec<(u64, u64)>,
}

impl RunAccount {
    pub fn dropped(&self) -> u64 {
        self.gaps.iter().map(|(f, t)| t - f + 1).sum()
    }
}

/// Checks the §6 invariant for consecutive persister runs whose entries make up
/// `events` (one sled's events in event-id order), run `i` having published
/// `published[i]` transitions named by [`fired`]:
/// each run's entries are one contiguous segment; walking it, every transition is
/// exactly the next logical id and every gap (carrying that run's id) starts exactly
/// at the next logical id; so gaps are disjoint and in order, and
/// `transitions + Σ gap sizes == published`.
pub fn check_runs(events: &[LoggedEvent], runs: &[(RunId, u64)]) -> Vec<RunAccount> {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.event_id, i as u64, "event ids must be contiguous");
    }
    let mut it = events.iter().peekable();
    let mut out = Vec::new();
    for (r, &(run, published)) in runs.iter().enumerate() {
        let mut next = 0u64;
        let mut acc = RunAccount::default();
        while next < published {
            let e = it
                .next()
                .unwrap_or_else(|| panic!("run {r}: log ends at logical id {next} of {published}"));
            match &e.entry {
                Entry::Transition(t) => {
                    assert_eq!(
                        t.story_id,
                        format!("test_{next}"),
                        "run {r}: event #{}",
                        e.event_id
                    );
                    acc.transitions += 1;
                    next += 1;
                }
                Entry::Gap(g) => {
                    assert_eq!(g.run, run, "run {r}: gap #{} names another run", e.event_id);
                    assert_eq!(
                        g.from, next,
                        "run {r}: gap #{} must start at the next id",
                        e.event_id
                    );
                    assert!(
                        g.to >= g.from && g.to < published,
                        "run {r}: gap {g:?} out of range"
                    );
                    acc.gaps.push((g.from, g.to));
                    next = g.to + 1;
                }
                Entry::Unclean(u) => panic!("run {r}: unexpected unclean-shutdown sentinel {u:?}"),
            }
        }
        assert_eq!(next, published, "run {r}: logical ids accounted");
        out.push(acc);
    }
    assert!(it.next().is_none(), "entries after the last run");
    out
}

/// Opens (or reopens) a log over `store` as sled `key(1)`.
pub async fn open<S: OpStore>(store: S) -> Arc<EventLog<S>> {
    Arc::new(EventLog::open(store, key(1)).await.expect("open log"))
}
