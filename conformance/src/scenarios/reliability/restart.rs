//! A sled restarted while its previous process's last write was still on its way
//! does not fail its own appends.

use event_log_core::{EventLog, MemStore, OpRecord, OpStore, VersionVector};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{key, load_all, transition};
use crate::harness::StoreHarness;
use crate::{ensure, ensure_eq};

/// The previous process's last append commits after the new process opened (a
/// statement still running on a server when its client was killed): the new
/// process's next append is not a `Conflict` error; the log catches up (the late op
/// is this sled's, signed before) and takes the next seq.
pub fn own_late_write_resolved<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("own_late_write_resolved", rt.block_on(late_write(h)))
}

async fn late_write<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc) = h.create().await.ctx("create")?;
    let store = h.open(&loc).await.ctx("open")?;
    {
        let log = EventLog::open(store, key(0)).await.ctx("first process")?;
        for i in 0..2 {
            log.append_transition(transition(i)).await.ctx("append")?;
        }
    }
    // What the killed process signed last: seq 3, continuing its chain.
    let rows = load_all(&h.open(&loc).await.ctx("open")?, 100)
        .await
        .ctx("load")?;
    let copy = MemStore::new();
    for (_, r) in &rows {
        copy.append(std::slice::from_ref(r)).await.ctx("copy")?;
    }
    let ghost = EventLog::open(copy, key(0)).await.ctx("ghost")?;
    let late = ghost
        .append_transition(transition(2))
        .await
        .ctx("ghost append")?;
    let late_rec = ghost
        .store()
        .since(&VersionVector::new(), 100)
        .await
        .ctx("since")?
        .into_iter()
        .find(|r| r.id == late.op_id)
        .ok_or("the ghost's op")?;
    // The new process opens, then the old one's statement commits.
    let store = h.open(&loc).await.ctx("reopen")?;
    let log = EventLog::open(store, key(0)).await.ctx("new process")?;
    log.store()
        .append(&[OpRecord { ..late_rec }])
        .await
        .ctx("late commit")?;
    let e = log
        .append_transition(transition(3))
        .await
        .map_err(|e| format!("the new process's append must not fail: {e}"))?;
    ensure_eq!(e.event_id, 3, "the append takes the seq after the late op");
    ensure!(log.contains(&late.op_id), "the late op is in the view");
    ensure_eq!(log.len(), 4, "events");
    Ok(())
}
