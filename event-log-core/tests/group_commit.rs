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
