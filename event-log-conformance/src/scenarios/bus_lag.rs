//! The bus on this backend: every transition published is persisted or named by a
//! gap sentinel, across restarts.

use crate::read::ReadAll;
use std::sync::Arc;

use event_log_bus::{PersisterConfig, PersisterStats, TransitionBus, spawn_persister};
use event_log_core::{Entry, EventLog, LoggedEvent, OpStore, Transition};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Check, Context, Failure};
use crate::fixture::key;
use crate::harness::StoreHarness;
use crate::{ensure, ensure_eq};

#[derive(Debug, Clone)]
struct Run {
    capacity: usize,
    /// (transitions published back to back, then pause in ms)
    bursts: Vec<(u64, u64)>,
}

fn run_plan() -> impl Strategy<Value = Run> {
    (1usize..17, prop::collection::vec((1u64..40, 0u64..3), 1..6))
        .prop_map(|(capacity, bursts)| Run { capacity, bursts })
}

/// Two persister runs with random bus capacities, bursts and pauses, and a reopen
/// between and after them: per run, persisted transitions + Σ gap sizes = published,
/// gap ranges are disjoint and in order, each gap names its own run, and all of it
/// holds after the reopen.
pub fn bus_lag<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    prop("bus_lag", 12, (run_plan(), run_plan()), |(a, b)| {
        rt.block_on(async {
            let (_guard, loc) = h.create().await.ctx("create")?;
            let mut runs: Vec<(PersisterStats, u64)> = Vec::new();
            for (r, plan) in [a, b].into_iter().enumerate() {
                let log = Arc::new(
                    EventLog::open(h.open(&loc).await.ctx("open")?, key(0))
                        .await
                        .ctx("open log")?,
                );
                let (stats, published) = one_run(&log, r, &plan).await?;
                runs.push((stats, published));
                check_runs(
                    &log.all_sled_events(&log.sled_id()).await.ctx("read")?,
                    &runs,
                )?;
                let log = Arc::try_unwrap(log).map_err(|_| "log still shared".to_string())?;
                log.close().await.ctx("close")?;
            }
            ensure!(
                runs[0].0.run != runs[1].0.run,
                "two runs must carry different run ids"
            );
            let log = EventLog::open(h.open(&loc).await.ctx("reopen")?, key(0))
                .await
                .ctx("reopen log")?;
            check_runs(
                &log.all_sled_events(&log.sled_id()).await.ctx("read")?,
                &runs,
            )
        })
    })
}

async fn one_run<S: OpStore>(
    log: &Arc<EventLog<S>>,
    r: usize,
    plan: &Run,
) -> Result<(PersisterStats, u64), String> {
    let bus = TransitionBus::new(plan.capacity).map_err(|e| e.to_string())?;
    let persister = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
    let mut published = 0u64;
    for &(n, pause) in &plan.bursts {
        for _ in 0..n {
            bus.publish(Transition::now(format!("r{r}-{published}"), "a", "b", "E"));
            published += 1;
        }
        if pause > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
    }
    let stats = persister.shutdown().await.ctx("persister")?;
    ensure!(
        stats.is_settled(),
        "run {r}: persister not settled: {stats:?}"
    );
    ensure_eq!(
        stats.persisted + stats.dropped,
        published,
        "run {r}: persisted + dropped"
    );
    Ok((stats, published))
}

/// Walks one sled's events: each run's entries account for logical ids 0..published
/// exactly once, in order.
fn check_runs(events: &[LoggedEvent], runs: &[(PersisterStats, u64)]) -> Check {
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    ensure_eq!(
        ids,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "contiguous event ids"
    );
    let mut i = 0;
    for (r, (stats, published)) in runs.iter().enumerate() {
        let mut next = 0u64;
        let (mut persisted, mut dropped) = (0u64, 0u64);
        while next < *published {
            let e = events
                .get(i)
                .ok_or_else(|| format!("run {r}: log ends at logical id {next} of {published}"))?;
            i += 1;
            match &e.entry {
                Entry::Transition(t) => {
                    ensure_eq!(
                        t.story_id,
                        format!("r{r}-{next}"),
                        "run {r}: transition at event {}",
                        e.event_id
                    );
                    next += 1;
                    persisted += 1;
                }
                Entry::Gap(g) => {
                    ensure_eq!(g.run, stats.run, "run {r}: gap names its run");
                    ensure_eq!(g.from, next, "run {r}: gap starts at the next logical id");
                    ensure!(
                        g.to >= g.from && g.to < *published,
                        "run {r}: gap {}..={} out of range",
                        g.from,
                        g.to
                    );
                    dropped += g.len();
                    next = g.to + 1;
                }
                Entry::Unclean(u) => {
                    return Err(format!(
                        "run {r}: unexpected unclean-shutdown sentinel {u:?} (every run shut down cleanly)"
                    ));
                }
            }
        }
        ensure_eq!(
            (persisted, dropped),
            (stats.persisted, stats.dropped),
            "run {r}: log matches counters"
        );
    }
    ensure_eq!(i, events.len(), "no entries beyond the runs");
    Ok(())
}
