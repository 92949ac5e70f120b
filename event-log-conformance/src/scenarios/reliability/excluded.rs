//! A sled excluded from the view for equivocating cannot append into the void.

use event_log_core::{Error, EventLog, MemStore, OpStore};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{key, transition};
use crate::harness::{StoreHarness, fresh_log};
use crate::{ensure, ensure_eq};

/// Once this sled is excluded (two of its ops at one seq), every append fails with
/// `Error::Excluded` naming the seq, writes nothing, and says a new key is needed.
pub fn excluded_sled_refuses_appends<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("excluded_sled_refuses_appends", rt.block_on(excluded(h)))
}

async fn excluded<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, log) = fresh_log(h, key(0)).await?;
    for i in 0..3 {
        log.append_transition(transition(i)).await.ctx("append")?;
    }
    // The same key, elsewhere, signs other content at seqs 1 and 2.
    let twin = EventLog::open(MemStore::new(), key(0)).await.ctx("twin")?;
    for i in 10..12 {
        twin.append_transition(transition(i))
            .await
            .ctx("twin append")?;
    }
    let fork = twin.export_since(&Default::default()).await.ctx("export")?;
    log.merge(fork).await.ctx("merge the fork")?;
    ensure_eq!(
        log.equivocations().len(),
        2,
        "equivocations after the merge"
    );
    let stored = log.store().count().await.ctx("count")?;
    for attempt in 0..2 {
        match log.append_transition(transition(20)).await {
            Err(Error::Excluded { sled, seq }) => {
                ensure_eq!(sled, log.sled_id(), "the sled named");
                ensure_eq!(seq, 1, "the seq it is excluded from");
                let text = Error::Excluded { sled, seq }.to_string();
                ensure!(
                    text.contains("new key"),
                    "the message says how to go on: {text}"
                );
            }
            Ok(e) => {
                return Err(format!(
                    "attempt {attempt}: an excluded sled's append returned Ok (event {}), invisible in every view",
                    e.event_id
                ));
            }
            Err(e) => return Err(format!("attempt {attempt}: expected Excluded, found {e}")),
        }
    }
    ensure_eq!(
        log.store().count().await.ctx("count")?,
        stored,
        "nothing written"
    );
    Ok(())
}
