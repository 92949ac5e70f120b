//! [`FaultStore`]: a store wrapper with knobs for the faults tests need to inject,
//! shared by the suite, the core's and the bus's tests instead of a hand-written
//! wrapper per test file.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use event_log_core::{
    AuthorId, OpId, OpKey, OpRecord, OpStore, Position, StoreError, VersionVector,
};
use parking_lot::Mutex;

/// A closed gate of a [`FaultStore`]: appends wait until it is dropped.
pub struct Gate(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>);

#[derive(Default)]
struct Knobs {
    /// Ops `load` does not return (rows that committed after the page covering
    /// their position was read, as concurrent writers of a shared PostgreSQL schema
    /// can make happen).
    hidden_from_load: HashSet<OpId>,
    /// Appends (counted from 1) that fail before writing.
    fail_appends: HashSet<u64>,
    /// Appends (counted from 1) that write, then report an error.
    lose_answers: HashSet<u64>,
}

/// Wraps a store; every knob is off until set. Cloning shares the store and the
/// knobs.
pub struct FaultStore<S> {
    inner: Arc<S>,
    knobs: Arc<Mutex<Knobs>>,
    gate: Arc<tokio::sync::RwLock<()>>,
    appends: Arc<AtomicU64>,
    calls: Arc<AtomicUsize>,
}

impl<S> Clone for FaultStore<S> {
    fn clone(&self) -> Self {
        FaultStore {
            inner: self.inner.clone(),
            knobs: self.knobs.clone(),
            gate: self.gate.clone(),
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
            gate: Arc::default(),
            appends: Arc::default(),
            calls: Arc::default(),
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

    /// Holds every append at the gate until the returned guard is dropped (an
    /// append already past the gate is not held).
    pub async fn close_gate(&self) -> Gate {
        Gate(self.gate.clone().write_owned().await)
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

    async fn faulty_append(
        &self,
        write: impl Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        self.call();
        let _open = self.gate.read().await;
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let (fail, lose) = {
            let k = self.knobs.lock();
            (k.fail_appends.contains(&n), k.lose_answers.contains(&n))
        };
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
        self.inner.append_pipeline()
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
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}
