//! [`FaultStore`]: a store wrapper with knobs for the faults tests need to inject,
//! shared by the suite, the core's and the bus's tests instead of a hand-written
//! wrapper per test file.
//!
//! Every knob acts on appends (`append` and `append_after`), which pass, in order:
//! the gate ([`FaultStore::set_gate`]), the turn of a pipelined store
//! ([`FaultStore::pipelined`]), the delay ([`FaultStore::set_delay`]), then get their
//! number (1, 2, ...) and their fate: failed before writing, written, or written
//! with the answer lost. Reads pass straight through (but `load` skips hidden ops).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use event_log_core::{
    AuthorId, Causal, OpId, OpKey, OpRecord, OpStore, Position, StoreDescription, StoreError,
    VersionVector,
};
use parking_lot::Mutex;
use tokio::sync::watch;

/// A closed gate of a [`FaultStore`]: appends wait until it is dropped.
pub struct Gate(Arc<watch::Sender<(bool, u64)>>);

impl Drop for Gate {
    fn drop(&mut self) {
        self.0.send_modify(|g| g.0 = true);
    }
}

#[derive(Default)]
struct Knobs {
    /// Ops `load` does not return (rows that committed after the page covering
    /// their position was read, as concurrent writers of a shared PostgreSQL schema
    /// can make happen).
    hidden_from_load: HashSet<OpId>,
    /// Appends (by number) that fail before writing.
    fail_appends: HashSet<u64>,
    /// Appends (by number) that write, then report an error.
    lose_answers: HashSet<u64>,
    /// The next appends succeed (`true`) or fail before writing (`false`).
    script: VecDeque<bool>,
    /// How many of the next unscripted appends fail before writing.
    fail_next: u64,
    /// How many of the next appends that write then lose the answer.
    lose_next: u64,
    /// How long every append waits before writing.
    delay: Duration,
}

/// Calls taking effect one at a time in the order they started, as on one
/// database connection with several statements in flight.
struct Lane {
    depth: usize,
    tickets: AtomicU64,
    done: watch::Sender<u64>,
}

/// Wraps a store; every knob is off until set. Cloning shares the store and the
/// knobs.
pub struct FaultStore<S> {
    inner: Arc<S>,
    knobs: Arc<Mutex<Knobs>>,
    /// Open, and how many appends may pass while it is closed.
    gate: Arc<watch::Sender<(bool, u64)>>,
    lane: Option<Arc<Lane>>,
    entered: Arc<AtomicU64>,
    appends: Arc<AtomicU64>,
    calls: Arc<AtomicUsize>,
}

impl<S> Clone for FaultStore<S> {
    fn clone(&self) -> Self {
        FaultStore {
            inner: self.inner.clone(),
            knobs: self.knobs.clone(),
            gate: self.gate.clone(),
            lane: self.lane.clone(),
            entered: self.entered.clone(),
            appends: self.appends.clone(),
            calls: self.calls.clone(),
        }
    }
}

impl<S: OpStore> FaultStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        FaultStore {
            inner: Arc::new(inner),
            knobs: Arc::default(),
            gate: Arc::new(watch::channel((true, 0)).0),
            lane: None,
            entered: Arc::default(),
            appends: Arc::default(),
            calls: Arc::default(),
        }
    }

    /// Wraps `inner` as a store that pipelines `depth` ordered appends: appends take
    /// a ticket when first polled and take effect strictly in ticket order, after a
    /// varying delay (so calls overlap in flight).
    pub fn pipelined(inner: S, depth: usize) -> Self {
        FaultStore {
            lane: Some(Arc::new(Lane {
                depth,
                tickets: AtomicU64::new(0),
                done: watch::Sender::new(0),
            })),
            ..Self::new(inner)
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `load` stops returning these ops (other reads still do).
    pub fn hide_from_load(&self, ids: impl IntoIterator<Item = OpId>) {
        self.knobs.lock().hidden_from_load.extend(ids);
    }

    /// The `n`th append from now fails with `Unavailable` before writing.
    pub fn fail_append(&self, n: u64) {
        let base = self.appends.load(Ordering::SeqCst);
        self.knobs.lock().fail_appends.insert(base + n);
    }

    /// The `n`th append from now writes, then reports `Unavailable` (an answer lost
    /// on the way back).
    pub fn lose_answer(&self, n: u64) {
        let base = self.appends.load(Ordering::SeqCst);
        self.knobs.lock().lose_answers.insert(base + n);
    }

    /// The next `n` appends fail before writing (a script, while it lasts, decides
    /// instead).
    pub fn fail_next(&self, n: u64) {
        self.knobs.lock().fail_next = n;
    }

    /// How many of the appends [`FaultStore::fail_next`] set are still to fail.
    pub fn failures_left(&self) -> u64 {
        self.knobs.lock().fail_next
    }

    /// The next `n` appends that write report a failure afterwards (replies lost).
    pub fn lose_reply_next(&self, n: u64) {
        self.knobs.lock().lose_next = n;
    }

    /// The next appends succeed (`true`) or fail without writing (`false`), in this
    /// order; then [`FaultStore::fail_next`] applies again.
    pub fn script(&self, outcomes: &[bool]) {
        self.knobs.lock().script.extend(outcomes);
    }

    /// Every append waits `delay` before writing, like a real sync.
    pub fn set_delay(&self, delay: Duration) {
        self.knobs.lock().delay = delay;
    }

    /// Opens or closes the gate: while it is closed, appends wait at it.
    pub fn set_gate(&self, open: bool) {
        self.gate.send_modify(|g| g.0 = open);
    }

    /// Lets `n` more appends through the closed gate.
    pub fn let_through(&self, n: u64) {
        self.gate.send_modify(|g| g.1 += n);
    }

    /// Closes the gate until the returned guard is dropped (an append already past
    /// the gate is not held).
    pub fn close_gate(&self) -> Gate {
        self.set_gate(false);
        Gate(self.gate.clone())
    }

    /// Append calls that reached the wrapper (before the gate).
    pub fn entered(&self) -> u64 {
        self.entered.load(Ordering::SeqCst)
    }

    /// Append calls past the gate (numbered so far).
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::SeqCst)
    }

    /// Store calls made through the wrapper.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    fn injected(what: &str) -> StoreError {
        StoreError::Unavailable {
            message: format!("injected fault: {what}"),
            source: None,
        }
    }

    /// Waits while the gate is closed and lets none through.
    async fn pass_gate(&self) {
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
                return;
            }
        }
    }

    /// This append's fate, by its number: (fails before writing, loses its answer).
    fn fate(&self, n: u64) -> (bool, bool) {
        let mut k = self.knobs.lock();
        let fail = k.fail_appends.contains(&n)
            || match k.script.pop_front() {
                Some(ok) => !ok,
                None => k
                    .fail_next
                    .checked_sub(1)
                    .map(|left| k.fail_next = left)
                    .is_some(),
            };
        let lose = !fail
            && (k.lose_answers.contains(&n)
                || k.lose_next
                    .checked_sub(1)
                    .map(|left| k.lose_next = left)
                    .is_some());
        (fail, lose)
    }

    async fn faulty_append(
        &self,
        write: impl Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        self.call();
        self.entered.fetch_add(1, Ordering::SeqCst);
        let ticket = self
            .lane
            .as_ref()
            .map(|lane| lane.tickets.fetch_add(1, Ordering::SeqCst));
        self.pass_gate().await;
        if let (Some(lane), Some(ticket)) = (&self.lane, ticket) {
            tokio::time::sleep(Duration::from_micros(200 * (ticket % 4))).await;
            let mut done = lane.done.subscribe();
            // The sender lives in `lane`: waiting cannot fail.
            let _ = done.wait_for(|d| *d == ticket).await;
        }
        let result = self.fated_append(write).await;
        if let Some(lane) = &self.lane {
            lane.done.send_modify(|d| *d += 1);
        }
        result
    }

    async fn fated_append(
        &self,
        write: impl Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let delay = self.knobs.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let (fail, lose) = self.fate(n);
        if fail {
            return Err(Self::injected("append failed before writing"));
        }
        write.await?;
        if lose {
            return Err(Self::injected("append written, answer lost"));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: OpStore> OpStore for FaultStore<S> {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.faulty_append(self.inner.append(ops)).await
    }
    fn append_pipeline(&self) -> usize {
        self.lane
            .as_ref()
            .map_or_else(|| self.inner.append_pipeline(), |lane| lane.depth)
    }
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.faulty_append(self.inner.append_after(after, ops))
            .await
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.call();
        let mut after = after;
        loop {
            let mut page = self.inner.load(after, limit).await?;
            let Some((last, _)) = page.last() else {
                return Ok(page);
            };
            let last = *last;
            {
                let k = self.knobs.lock();
                page.retain(|(_, r)| !k.hidden_from_load.contains(&r.id));
            }
            if !page.is_empty() {
                return Ok(page);
            }
            // Everything of this page hidden: go on past it, as a real page would.
            after = last;
        }
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.call();
        self.inner.since(vv, limit).await
    }
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        self.call();
        self.inner.author_ops(author, after, limit).await
    }
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.call();
        self.inner.timeline(after, limit).await
    }
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        self.call();
        self.inner.story_ops(story, after, limit).await
    }
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        self.call();
        self.inner.keyed(author, key, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.call();
        self.inner.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.call();
        self.inner.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.call();
        self.inner.count().await
    }
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        self.call();
        self.inner.evidence().await
    }
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        self.inner.acquire_sled(sled).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_meta(key, value).await
    }
    fn describe(&self) -> StoreDescription {
        self.inner.describe()
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}
