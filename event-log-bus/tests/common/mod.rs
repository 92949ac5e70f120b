//! Shared test helpers: keys, transitions named by logical id, a controllable store,
//! and the per-run invariant check.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

pub use event_log_conformance::fault::FaultStore;
use event_log_core::{
    Entry, EventLog, EventLogConfig, LoggedEvent, MemStore, OpStore, RunId, SigningKey, Transition,
};

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The transition published as logical id `i`: its story names the id.
pub fn fired(i: u64) -> Transition {
    Transition::now(format!("test_{i}"), "backlog", "coding", "DepsMet")
}

#[allow(unused_imports)]
pub use event_log_conformance::scenarios::cases;

/// A MemStore that can fail the next N appends (`StoreError::Unavailable`), follow a
/// script of outcomes, slow every append down, or hold appends behind a closed gate:
/// the suite's fault-injecting wrapper. Clones share everything.
pub type TestStore = FaultStore<MemStore>;

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

/// Opens a read-only log (every append refused) over `store` as sled `key(1)`.
pub async fn open_read_only<S: OpStore>(store: S) -> Arc<EventLog<S>> {
    let config = EventLogConfig::default().with_read_only(true);
    let log = EventLog::open_with(store, key(1), config).await;
    Arc::new(log.expect("open a read-only log"))
}
