//! Restart programs: random appends, merges from other sleds, clean reopens and
//! crashes (drops without close).

use crate::read::ReadAll;
use event_log_core::{Entry, EventLog, MemStore, OpStore};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{entry, key, summary};
use crate::harness::StoreHarness;
use crate::{ensure, ensure_eq};

/// One step of a restart program.
#[derive(Debug, Clone)]
pub enum Step {
    /// Our sled appends `n` entries (the last is a gap if `gap`), one call each or
    /// all in one call.
    Append {
        /// How many.
        n: u64,
        /// Last one is a gap sentinel.
        gap: bool,
        /// One `append_all` call.
        batch: bool,
    },
    /// Another sled appends `n` entries on its own store and we merge them.
    Remote {
        /// Which other sled (1 or 2).
        sled: u8,
        /// How many.
        n: u64,
    },
    /// Close the log and open it again.
    Reopen,
    /// Drop the log without closing, then open it again.
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..5, any::<bool>(), any::<bool>()).prop_map(|(n, gap, batch)| Step::Append { n, gap, batch }),
        2 => (1u8..3, 1u64..4).prop_map(|(sled, n)| Step::Remote { sled, n }),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

/// After every reopen (clean or after a crash), every acknowledged entry of every
/// sled is there in order, seqs are contiguous from 0 per sled, and the next append
/// continues the sequence.
pub fn restart_programs<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let strat = prop::collection::vec(step(), 1..16);
    prop("restart_programs", 24, strat, |program| {
        rt.block_on(run(h, program))
    })
}

async fn run<H: StoreHarness>(h: &H, program: Vec<Step>) -> Check {
    let (_guard, loc) = h.create().await.ctx("create")?;
    let mut log = Some(
        EventLog::open(h.open(&loc).await.ctx("open")?, key(0))
            .await
            .ctx("open log")?,
    );
    let remotes = [
        EventLog::open(MemStore::new(), key(1))
            .await
            .ctx("remote")?,
        EventLog::open(MemStore::new(), key(2))
            .await
            .ctx("remote")?,
    ];
    // The model: what every sled acknowledged, in order.
    let mut acked: Vec<(String, u64, Entry)> = Vec::new();
    let mut next_own = 0u64;
    let mut i = 0u64;
    for step in program {
        let Some(l) = log.as_ref() else {
            return Err("log missing".into());
        };
        match step {
            Step::Append { n, gap, batch } => {
                let entries: Vec<Entry> = (0..n).map(|k| entry(i + k, gap && k == n - 1)).collect();
                i += n;
                let events = if batch {
                    l.append_all(entries.clone()).await.ctx("append_all")?
                } else {
                    let mut v = Vec::new();
                    for e in entries.clone() {
                        v.push(l.append(e).await.ctx("append")?);
                    }
                    v
                };
                for (e, want) in events.iter().zip(entries) {
                    ensure_eq!(e.event_id, next_own, "acknowledged event id");
                    acked.push((l.sled_id().to_hex(), e.event_id, want));
                    next_own += 1;
                }
            }
            Step::Remote { sled, n } => {
                let r = &remotes[sled as usize - 1];
                for k in 0..n {
                    let e = r
                        .append(entry(500 + i + k, false))
                        .await
                        .ctx("remote append")?;
                    acked.push((r.sled_id().to_hex(), e.event_id, e.entry));
                }
                i += n;
                let report = l
                    .merge(r.export_since(&l.version_vector()).await.ctx("export")?)
                    .await
                    .ctx("merge")?;
                ensure!(
                    report.rejected().is_empty(),
                    "merge rejected genuine ops: {:?}",
                    report.rejected()
                );
                ensure_eq!(report.applied() as u64, n, "ops applied by merge");
            }
            Step::Reopen | Step::Crash => {
                let old = log.take().ok_or("log missing")?;
                if matches!(step, Step::Reopen) {
                    old.close().await.ctx("close")?;
                }
                drop(old);
                let reopened = EventLog::open(h.open(&loc).await.ctx("reopen store")?, key(0))
                    .await
                    .ctx("reopen log")?;
                let mut want = acked.clone();
                want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                ensure_eq!(
                    summary(&reopened).await.ctx("read")?,
                    want,
                    "entries after reopen"
                );
                for sled in [
                    &reopened.sled_id(),
                    &remotes[0].sled_id(),
                    &remotes[1].sled_id(),
                ] {
                    let ids: Vec<u64> = reopened
                        .all_sled_events(sled)
                        .await
                        .ctx("read")?
                        .iter()
                        .map(|e| e.event_id)
                        .collect();
                    ensure_eq!(
                        ids,
                        (0..ids.len() as u64).collect::<Vec<_>>(),
                        "contiguous event ids of sled {}",
                        sled.short()
                    );
                }
                log = Some(reopened);
            }
        }
    }
    // The next append continues the sequence.
    let l = log.as_ref().ok_or("log missing")?;
    let e = l.append(entry(9999, false)).await.ctx("final append")?;
    ensure_eq!(e.event_id, next_own, "next event id after the program");
    ensure_eq!(
        l.store().count().await.ctx("count")?,
        acked.len() as u64 + 1,
        "ops stored"
    );
    Ok(())
}
