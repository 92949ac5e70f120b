//! Sleds sharing one store follow each other exactly as sync would: however far
//! behind, forks included, and rows that committed late are not skipped.

use crate::read::ReadAll;
use std::sync::Arc;

use event_log_core::{EventLog, EventLogConfig, Limits, MemStore, OpRecord, OpStore, SigningKey};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fault::FaultStore;
use crate::fixture::{chain, key, summary, transition};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

const PAGE: usize = 16;

fn config(per_author: usize) -> EventLogConfig {
    EventLogConfig::default()
        .with_replay_page(PAGE)
        .with_limits(Limits {
            max_buffered_per_author: per_author,
            ..Limits::default()
        })
}

/// Two keys whose authors sort `(first, second)` by their bytes, as `since` pages.
fn sorted_keys(a: u8, b: u8) -> (SigningKey, SigningKey) {
    let (ka, kb) = (key(a), key(b));
    if ka.verifying_key().to_bytes() < kb.verifying_key().to_bytes() {
        (ka, kb)
    } else {
        (kb, ka)
    }
}

/// A follower lagging 10 × `replay_page` behind, whose first pages hold only ops
/// waiting for another sled's op further on, catches up completely in one call
/// (with a roomy buffer, and with one smaller than the lag).
pub fn follower_catches_up_any_lag<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("follower_catches_up_any_lag", rt.block_on(any_lag(h)))
}

async fn any_lag<H: StoreHarness>(h: &H) -> Check {
    for per_author in [10_000, PAGE + 4] {
        let (_guard, _loc, store) = fresh_store(h).await?;
        let store = Arc::new(store);
        let (first, second) = sorted_keys(1, 2);
        let n = (10 * PAGE) as u64;
        // The author `since` pages second writes first; the author paged first then
        // builds on it, so every op of the first pages waits for an op beyond them.
        let later = EventLog::open_with(store.clone(), second, config(per_author))
            .await
            .ctx("open second")?;
        for i in 0..n {
            later.append_transition(transition(i)).await.ctx("append")?;
        }
        let earlier = EventLog::open_with(store.clone(), first, config(per_author))
            .await
            .ctx("open first")?;
        for i in 0..n {
            earlier
                .append_transition(transition(i))
                .await
                .ctx("append")?;
        }
        let follower = EventLog::open_with(store.clone(), key(3), config(per_author))
            .await
            .ctx("open follower")?;
        // The follower opened after: it replayed. Write more behind its back.
        for i in n..2 * n {
            later.append_transition(transition(i)).await.ctx("append")?;
        }
        earlier.catch_up().await.ctx("earlier catches up")?;
        for i in n..2 * n {
            earlier
                .append_transition(transition(i))
                .await
                .ctx("append")?;
        }
        follower.catch_up().await.ctx("catch up")?;
        ensure_eq!(
            follower.visible_len() as u64,
            4 * n,
            "per-author quota {per_author}: events after one catch_up"
        );
        ensure_eq!(
            summary(&follower).await.ctx("read")?,
            summary(&earlier).await.ctx("read")?,
            "same events as the writer"
        );
        ensure_eq!(
            follower.all_timeline().await.ctx("read")?,
            earlier.all_timeline().await.ctx("read")?,
            "same timeline"
        );
    }
    Ok(())
}

/// A second op of a sled at a seq a follower already holds (equivocation evidence)
/// reaches followers of the shared store: every sled on it shows the same
/// timeline and equivocations, whichever of them merged the fork.
pub fn followers_see_equivocation<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("followers_see_equivocation", rt.block_on(equivocation(h)))
}

async fn equivocation<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let store = Arc::new(store);
    let a = EventLog::open(store.clone(), key(0)).await.ctx("a")?;
    let b = EventLog::open(store.clone(), key(1)).await.ctx("b")?;
    let c = EventLog::open(store.clone(), key(2)).await.ctx("c")?;
    a.append_transition(transition(0)).await.ctx("append")?;
    // An equivocating sled: two processes with one key, each on its own store.
    let twins = [
        EventLog::open(MemStore::new(), key(5)).await.ctx("twin")?,
        EventLog::open(MemStore::new(), key(5)).await.ctx("twin")?,
    ];
    for (t, twin) in twins.iter().enumerate() {
        for i in 0..3 {
            twin.append_transition(transition(100 * t as u64 + i))
                .await
                .ctx("twin append")?;
        }
    }
    let mut fork = Vec::new();
    for twin in &twins {
        fork.push(twin.export_since(&Default::default()).await.ctx("export")?);
    }
    let [fork_a, fork_c] = <[_; 2]>::try_from(fork).map_err(|_| "two branches".to_string())?;
    a.merge(fork_a).await.ctx("a merges one branch")?;
    b.catch_up().await.ctx("b follows")?;
    ensure_eq!(b.equivocations().len(), 0, "no fork known yet");
    // A sled that has not caught up merges the other branch: the store holds the
    // first as primary, so this one must become evidence, not a conflict.
    c.merge(fork_c)
        .await
        .map_err(|e| format!("merging the other branch must not fail: {e}"))?;
    for (name, log) in [("a", &a), ("b", &b)] {
        log.catch_up().await.ctx("follow")?;
        ensure_eq!(
            log.equivocations(),
            c.equivocations(),
            "{name}: equivocations as the sled that merged the fork"
        );
        ensure_eq!(
            log.all_timeline().await.ctx("read")?,
            c.all_timeline().await.ctx("read")?,
            "{name}: timeline"
        );
    }
    ensure_eq!(c.equivocations().len(), 3, "three seqs held twice");
    ensure!(
        c.all_events()
            .await
            .ctx("read")?
            .iter()
            .all(|e| e.sled_id != twins[0].sled_id()),
        "the equivocating sled left the view"
    );
    Ok(())
}

/// Rows that committed after the replay page covering their position was read
/// (concurrent writers of a shared store) are found by open all the same: no op
/// is "stored before its dependencies" and none is skipped.
pub fn late_rows_replayed<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("late_rows_replayed", rt.block_on(late_rows(h)))
}

async fn late_rows<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let store = FaultStore::new(store);
    let a = chain(&key(1), 3, &[]);
    let b = chain(&key(2), 2, &[&a[1]]);
    let rows: Vec<OpRecord> = a
        .iter()
        .chain(&b)
        .map(|o| OpRecord::new(o, false))
        .collect();
    store.inner().append(&rows).await.ctx("append")?;
    store.hide_from_load([a[1].id()]);
    let log = EventLog::open(store, key(0))
        .await
        .map_err(|e| format!("open over a row load skipped: {e}"))?;
    ensure_eq!(log.visible_len(), 5, "every op visible");
    ensure_eq!(log.damage().len(), 0, "no damage reported");
    Ok(())
}
