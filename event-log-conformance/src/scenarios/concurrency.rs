//! Many tasks appending to one log.

use crate::read::ReadAll;
use std::sync::Arc;

use event_log_core::EventLog;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Context, Failure};
use crate::fixture::{entry, key};
use crate::harness::{StoreHarness, close_log, open_log};
use crate::{ensure, ensure_eq};

/// K tasks × M appends on one `EventLog` give K·M entries with seqs 0..K·M−1, no
/// duplicates, all present after a reopen.
pub fn concurrent_appenders<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let strat = (2usize..12, 1usize..12);
    prop("concurrent_appenders", 8, strat, |(k, m)| {
        rt.block_on(async {
            let (_guard, loc) = h.create().await.ctx("create")?;
            let log = Arc::new(
                EventLog::open(h.open(&loc).await.ctx("open")?, key(0))
                    .await
                    .ctx("open log")?,
            );
            let mut tasks = Vec::new();
            for t in 0..k {
                let log = log.clone();
                tasks.push(tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for j in 0..m {
                        let e = log.append(entry((t * 1000 + j) as u64, false)).await?;
                        ids.push(e.event_id);
                    }
                    Ok::<_, event_log_core::Error>(ids)
                }));
            }
            let mut ids = Vec::new();
            for t in tasks {
                let got = t
                    .await
                    .map_err(|e| format!("task panicked: {e}"))?
                    .ctx("append")?;
                ensure!(
                    got.windows(2).all(|w| w[0] < w[1]),
                    "one task's ids must increase: {got:?}"
                );
                ids.extend(got);
            }
            ids.sort_unstable();
            let want: Vec<u64> = (0..(k * m) as u64).collect();
            ensure_eq!(ids, want, "event ids of all appends");
            let log = Arc::try_unwrap(log).map_err(|_| "log still shared".to_string())?;
            close_log(log).await?;
            let reopened = open_log(h, &loc, key(0)).await?;
            let ids: Vec<u64> = reopened
                .all_events()
                .await
                .ctx("read")?
                .iter()
                .map(|e| e.event_id)
                .collect();
            ensure_eq!(ids, want, "event ids after reopen");
            Ok(())
        })
    })
}
