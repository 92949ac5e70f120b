//! Retried appends: a key makes a retry return the first event; a dropped append
//! that no writer took yet is withdrawn.

use std::sync::Arc;
use std::time::Duration;

use event_log_core::{Error, EventLog, OpStore, Transition};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fault::FaultStore;
use crate::fixture::{chain, key, transition};
use crate::harness::{StoreHarness, close_log, fresh_log, fresh_store, open_log};
use crate::{ensure, ensure_eq};

fn keyed(story: &str, k: &str) -> Transition {
    Transition::now(story, "backlog", "coding", "Retry").with_idempotency_key(k)
}

/// An append whose idempotency key this sled used before returns the first event
/// (also after a reopen, and for concurrent retries) and writes nothing; the same
/// key on other content is `Error::IdempotencyKeyReused`.
pub fn idempotent_retries<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("idempotent_retries", rt.block_on(retries(h)))
}

async fn retries<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, log) = fresh_log(h, key(0)).await?;
    let first = log
        .append_transition(keyed("s-1", "k-1"))
        .await
        .ctx("append")?;
    std::thread::sleep(Duration::from_millis(2)); // a retry has a later timestamp
    let again = log
        .append_transition(keyed("s-1", "k-1"))
        .await
        .ctx("retry")?;
    ensure_eq!(again, first, "a retry returns the first event");
    ensure_eq!(log.store().count().await.ctx("count")?, 1, "ops stored");
    match log.append_transition(keyed("s-2", "k-1")).await {
        Err(Error::IdempotencyKeyReused { key, existing }) => {
            ensure_eq!(key, "k-1", "the key named");
            ensure_eq!(existing, first.event_id, "the event holding it");
        }
        other => {
            return Err(format!(
                "other content under a used key: {:?}",
                other.map(|e| e.event_id)
            ));
        }
    }
    // Concurrent retries of a new key: one op.
    let log = Arc::new(log);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move { log.append_transition(keyed("s-3", "k-2")).await })
        })
        .collect();
    let mut events = Vec::new();
    for c in calls {
        events.push(
            c.await
                .map_err(|e| e.to_string())?
                .ctx("concurrent retry")?,
        );
    }
    ensure!(
        events.windows(2).all(|w| w[0] == w[1]),
        "concurrent retries return one event: {:?}",
        events.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    ensure_eq!(log.store().count().await.ctx("count")?, 2, "ops stored");
    let log = Arc::into_inner(log).ok_or("log still shared")?;
    close_log(log).await?;
    let log = open_log(h, &loc, key(0)).await?;
    let after = log
        .append_transition(keyed("s-1", "k-1"))
        .await
        .ctx("retry after reopen")?;
    ensure_eq!(after, first, "the key survives a reopen");
    ensure_eq!(log.store().count().await.ctx("count")?, 2, "ops stored");
    let plain = log.append_transition(transition(5)).await.ctx("unkeyed")?;
    ensure_eq!(plain.event_id, 2, "unkeyed appends are unaffected");
    Ok(())
}

/// An append whose future is dropped (a caller's timeout) while it still waits for
/// a writer is withdrawn: it is never written.
pub fn dropped_append_withdrawn<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("dropped_append_withdrawn", rt.block_on(withdrawn(h)))
}

async fn withdrawn<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let store = FaultStore::new(store);
    let log = Arc::new(
        EventLog::open(store.clone(), key(0))
            .await
            .ctx("open log")?,
    );
    // A merge holds the writer while its store call waits at a closed gate.
    let gate = store.close_gate();
    let remote = chain(&key(1), 1, &[]);
    let merging = {
        let log = log.clone();
        tokio::spawn(async move { log.merge(vec![remote[0].to_raw()]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let timed_out = tokio::time::timeout(
        Duration::from_millis(50),
        log.append_transition(transition(1)),
    )
    .await;
    ensure!(timed_out.is_err(), "the append waited behind the merge");
    drop(gate);
    merging.await.map_err(|e| e.to_string())?.ctx("merge")?;
    let next = log.append_transition(transition(2)).await.ctx("append")?;
    ensure_eq!(next.event_id, 0, "the dropped append took no seq");
    ensure_eq!(
        log.store().count().await.ctx("count")?,
        2,
        "the merged op and one append"
    );
    Ok(())
}
