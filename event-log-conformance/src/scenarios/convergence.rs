//! Several sleds, each on its own store of the backend, converging.

use crate::read::ReadAll;
use event_log_core::{EventLog, MemStore, OpStore, RawOp, sync};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{entry, key};
use crate::harness::StoreHarness;
use crate::{ensure, ensure_eq};

#[derive(Debug, Clone)]
struct Plan {
    sleds: usize,
    /// Entries each sled appends before and after a partial sync.
    first: Vec<u64>,
    second: Vec<u64>,
    /// Pairwise syncs between the phases.
    syncs: Vec<(usize, usize)>,
    /// Delivery: a permutation seed and duplicates, chunk size.
    order: Vec<prop::sample::Index>,
    chunk: usize,
    /// Equivocator appends on two branches this many entries each.
    equivocate: u64,
}

fn plan() -> impl Strategy<Value = Plan> {
    (2usize..5).prop_flat_map(|sleds| {
        (
            Just(sleds),
            prop::collection::vec(0u64..4, sleds),
            prop::collection::vec(0u64..4, sleds),
            prop::collection::vec((0..sleds, 0..sleds), 0..4),
            prop::collection::vec(any::<prop::sample::Index>(), 0..80),
            1usize..8,
            1u64..3,
        )
            .prop_map(
                |(sleds, first, second, syncs, order, chunk, equivocate)| Plan {
                    sleds,
                    first,
                    second,
                    syncs,
                    order,
                    chunk,
                    equivocate,
                },
            )
    })
}

/// 2–4 sleds on stores of this backend exchange ops in random order, with
/// duplicates and an equivocating sled, and reach identical views, version vectors
/// and equivocation reports — also after each reopens.
pub fn multi_sled_convergence<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    prop("multi_sled_convergence", 16, plan(), |p| {
        rt.block_on(run(h, p))
    })
}

async fn run<H: StoreHarness>(h: &H, p: Plan) -> Check {
    let mut guards = Vec::new();
    let mut locs = Vec::new();
    let mut logs = Vec::new();
    for s in 0..p.sleds {
        let (g, loc) = h.create().await.ctx("create")?;
        logs.push(
            EventLog::open(h.open(&loc).await.ctx("open")?, key(s as u8))
                .await
                .ctx("open log")?,
        );
        guards.push(g);
        locs.push(loc);
    }
    let mut n = 0u64;
    for (s, log) in logs.iter().enumerate() {
        for _ in 0..p.first[s] {
            n += 1;
            log.append(entry(n, false)).await.ctx("append")?;
        }
    }
    for &(a, b) in &p.syncs {
        if a != b {
            sync(&logs[a], &logs[b]).await.ctx("sync")?;
        }
    }
    for (s, log) in logs.iter().enumerate() {
        for _ in 0..p.second[s] {
            n += 1;
            log.append(entry(n, true)).await.ctx("append")?;
        }
    }
    // An equivocating sled: one key, two stores, two different histories.
    let eq_key = key(77);
    let branch_a = EventLog::open(MemStore::new(), eq_key.clone())
        .await
        .ctx("eq a")?;
    let branch_b = EventLog::open(MemStore::new(), eq_key).await.ctx("eq b")?;
    for k in 0..p.equivocate {
        branch_a
            .append(entry(7000 + k, false))
            .await
            .ctx("eq append")?;
        branch_b
            .append(entry(8000 + k, false))
            .await
            .ctx("eq append")?;
    }

    // Every op that exists, then a random delivery order with duplicates.
    let mut all: Vec<RawOp> = Vec::new();
    for log in &logs {
        all.extend(log.export_since(&Default::default()).await.ctx("export")?);
    }
    all.extend(
        branch_a
            .export_since(&Default::default())
            .await
            .ctx("export")?,
    );
    all.extend(
        branch_b
            .export_since(&Default::default())
            .await
            .ctx("export")?,
    );
    for (s, log) in logs.iter().enumerate() {
        let mut delivery = all.clone();
        for (k, idx) in p.order.iter().enumerate() {
            let len = delivery.len();
            if k % 3 == 0 {
                let op = delivery[idx.index(len)].clone();
                delivery.push(op); // duplicate
            } else {
                delivery.swap(idx.index(len), (k * 7 + s) % len);
            }
        }
        let len = delivery.len().max(1);
        delivery.rotate_left(s % len);
        for chunk in delivery.chunks(p.chunk) {
            let report = log.merge(chunk.to_vec()).await.ctx("merge")?;
            ensure!(
                report.rejected().is_empty(),
                "genuine ops rejected: {:?}",
                report.rejected()
            );
        }
    }
    check_same(&logs, "after delivery").await?;
    let eq_author = branch_a.sled_id();
    for log in &logs {
        ensure!(
            log.all_sled_events(&eq_author)
                .await
                .ctx("read")?
                .is_empty(),
            "the equivocating sled's entries must leave the view (from seq 1)"
        );
        ensure_eq!(
            log.equivocations().len() as u64,
            p.equivocate,
            "equivocations reported (one per seq)"
        );
    }
    // Reopen every sled; views stay identical.
    let mut reopened = Vec::new();
    for (s, log) in logs.into_iter().enumerate() {
        log.close().await.ctx("close")?;
        drop(log);
        reopened.push(
            EventLog::open(h.open(&locs[s]).await.ctx("reopen")?, key(s as u8))
                .await
                .ctx("reopen log")?,
        );
    }
    check_same(&reopened, "after reopen").await?;
    drop(guards);
    Ok(())
}

async fn check_same<S: OpStore>(logs: &[EventLog<S>], when: &str) -> Check {
    let first = &logs[0];
    let tl: Vec<_> = first
        .all_timeline()
        .await
        .ctx("read")?
        .iter()
        .map(|e| e.op_id)
        .collect();
    for (s, log) in logs.iter().enumerate().skip(1) {
        let other: Vec<_> = log
            .all_timeline()
            .await
            .ctx("read")?
            .iter()
            .map(|e| e.op_id)
            .collect();
        ensure_eq!(other, tl, "timeline of sled {s} {when}");
        ensure_eq!(
            log.version_vector(),
            first.version_vector(),
            "version vector of sled {s} {when}"
        );
        ensure_eq!(log.heads(), first.heads(), "heads of sled {s} {when}");
        ensure_eq!(
            log.equivocations(),
            first.equivocations(),
            "equivocations of sled {s} {when}"
        );
        ensure_eq!(
            log.all_events().await.ctx("read")?,
            first.all_events().await.ctx("read")?,
            "events of sled {s} {when}"
        );
    }
    Ok(())
}
