//! Many requests reaching the store at once: a store that groups them into shared
//! commits (SQLite's and redb's writer thread, PostgreSQL's pool) keeps each
//! request's outcome its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use event_log_core::{OpRecord, OpStore, StoreError};
use tokio::runtime::Runtime;

use super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, load_all, op_at, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// Appenders in flight at once.
const TASKS: u8 = 32;

/// 32 tasks appending at once (each its own sled, four single-op calls, then one
/// three-op call; and all of them racing on one shared batch) lose nothing,
/// duplicate nothing, keep each author's order in `load`, and take increasing
/// positions.
pub fn concurrent_store_appenders<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("concurrent_store_appenders", rt.block_on(appenders(h)))
}

async fn appenders<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    concurrent_appends(Arc::new(store)).await
}

/// The workload of [`concurrent_store_appenders`] on `store` (for a backend's own
/// test that checks how its commits were grouped): `32 × 6` append calls.
pub async fn concurrent_appends<S: OpStore>(store: Arc<S>) -> Check {
    let shared = records(&chain(&key(200), 10, &[]));
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let (store, shared) = (store.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let own = records(&chain(&key(n + 1), 7, &[]));
            for op in &own[..4] {
                store.append(std::slice::from_ref(op)).await?;
            }
            store.append(&own[4..]).await?;
            store.append(&shared).await?;
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| format!("task panicked: {e}"))?
            .ctx("append")?;
    }
    let loaded = load_all(&*store, 1000).await.ctx("load")?;
    let total = usize::from(TASKS) * 7 + shared.len();
    ensure_eq!(loaded.len(), total, "ops loaded");
    ensure_eq!(store.count().await.ctx("count")?, total as u64, "count");
    let unique: HashSet<_> = loaded.iter().map(|(_, r)| r.id).collect();
    ensure_eq!(unique.len(), total, "distinct ops: none stored twice");
    ensure!(
        loaded.windows(2).all(|w| w[0].0 < w[1].0),
        "positions increase in load order"
    );
    let mut last: HashMap<_, u64> = HashMap::new();
    for (pos, r) in &loaded {
        let prev = last.insert(r.author, r.seq).unwrap_or(0);
        ensure_eq!(r.seq, prev + 1, "author order in load at {pos}");
    }
    let heads = store.heads().await.ctx("heads")?;
    ensure_eq!(heads.len(), usize::from(TASKS) + 1, "authors in heads");
    Ok(())
}

/// Of requests that reach the store together, one whose op conflicts with another
/// request's op fails alone with `Conflict` naming both, writing nothing of its
/// batch (not its innocent batch mate either); every other request commits.
pub fn group_conflict_fails_alone<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("group_conflict_fails_alone", rt.block_on(group_conflict(h)))
}

async fn group_conflict<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    conflicting_group(&store).await
}

/// The workload of [`group_conflict_fails_alone`] on `store` (for a backend's own
/// test that checks how its commits were grouped): 32 append calls at once, one of
/// them refused.
pub async fn conflicting_group<S: OpStore>(store: &S) -> Check {
    let contested = key(200);
    let held = OpRecord::new(&op_at(&contested, 1, None, 1), false);
    let rival = OpRecord::new(&op_at(&contested, 1, None, 2), false);
    let mate = records(&chain(&key(201), 1, &[])).remove(0);
    // join_all polls every future once, in order: all 32 requests are queued back
    // to back, the holder (5) before the rival (20).
    let mut batches: Vec<Vec<OpRecord>> = (0..30u8)
        .map(|n| records(&chain(&key(n), 1, &[])))
        .collect();
    batches.insert(5, vec![held.clone()]);
    batches.insert(20, vec![mate.clone(), rival.clone()]);
    let results = futures::future::join_all(batches.iter().map(|b| store.append(b))).await;

    // Which of the two wins is the store's order; exactly one must lose.
    let (winner, loser, lost_at) = match (&results[5], &results[20]) {
        (Ok(()), Err(_)) => (&held, &rival, 20),
        (Err(_), Ok(())) => (&rival, &held, 5),
        (a, b) => return Err(format!("exactly one of two rivals commits: {a:?}, {b:?}")),
    };
    for (i, r) in results.iter().enumerate() {
        if i == lost_at {
            ensure!(
                matches!(r, Err(StoreError::Conflict { existing, incoming, seq: 1, .. })
                    if *existing == winner.id && *incoming == loser.id),
                "the losing request fails with a Conflict naming both ops: {r:?}"
            );
        } else {
            ensure!(r.is_ok(), "request {i} commits: {r:?}");
        }
    }
    ensure!(
        store.get(&loser.id).await.ctx("get")?.is_none(),
        "the losing op is not stored"
    );
    if lost_at == 20 {
        ensure!(
            store.get(&mate.id).await.ctx("get")?.is_none(),
            "the losing request's batch mate is not stored"
        );
    }
    let loaded = load_all(store, 1000).await.ctx("load")?;
    let stored = if lost_at == 20 { 31 } else { 32 };
    ensure_eq!(loaded.len(), stored, "ops of the committed requests");
    ensure!(
        loaded.windows(2).all(|w| w[0].0 < w[1].0),
        "positions increase"
    );
    Ok(())
}
