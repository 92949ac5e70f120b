//! A sled restarted while its previous process's last write was still on its way
//! does not fail its own appends.

use crate::read::ReadAll;
use event_log_core::{Entry, Error, EventLog, MemStore, OpRecord, OpStore, VersionVector};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fault::FaultStore;
use crate::fixture::{key, load_all, transition};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// The previous process's last append commits after the new process opened (a
/// statement still running on a server when its client was killed): the new
/// process's next append is not a `Conflict` error; the log catches up (the late op
/// is this sled's, signed before) and takes the next seq.
pub fn own_late_write_resolved<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("own_late_write_resolved", rt.block_on(late_write(h)))
}

async fn late_write<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
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
    ensure_eq!(log.visible_len(), 4, "events");
    Ok(())
}

/// An append whose outcome was unknown (in doubt: not stored, as it turns out) while
/// the sled's previous process stored its own last op at the same seq: the in-doubt
/// entry is never dropped. The next append finds the seq taken, catches up, signs the
/// in-doubt entry again at a new seq and writes it once, then its own.
pub fn in_doubt_never_dropped<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("in_doubt_never_dropped", rt.block_on(in_doubt(h)))
}

async fn in_doubt<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    let store = FaultStore::new(store);
    let log = EventLog::open(store.clone(), key(0))
        .await
        .ctx("open the log")?;
    log.append_transition(transition(0)).await.ctx("append")?;
    // What the previous process signed last, at seq 2 (on a copy: it never reached
    // this log).
    let copy = MemStore::new();
    for (_, r) in load_all(store.inner(), 100).await.ctx("load")? {
        copy.append(std::slice::from_ref(&r)).await.ctx("copy")?;
    }
    let ghost = EventLog::open(copy, key(0)).await.ctx("ghost")?;
    let late = ghost
        .append_transition(transition(1))
        .await
        .ctx("ghost append")?;
    let late_rec = ghost
        .store()
        .get(&late.op_id)
        .await
        .ctx("get")?
        .ok_or("the ghost's op")?;

    store.fail_append(1);
    let r = log.append_transition(transition(2)).await;
    ensure!(
        matches!(r, Err(Error::InDoubt { .. })),
        "a failed append is in doubt: {r:?}"
    );
    ensure_eq!(log.in_doubt().await, 1, "entries in doubt");
    store
        .inner()
        .append(std::slice::from_ref(&late_rec))
        .await
        .ctx("late commit")?;

    let e = log
        .append_transition(transition(3))
        .await
        .map_err(|e| format!("the next append must not fail: {e}"))?;
    ensure_eq!(log.in_doubt().await, 0, "entries in doubt");
    ensure_eq!(log.visible_len(), 4, "events");
    ensure!(
        log.contains(&late.op_id),
        "the previous process's op is in the view"
    );
    let stamps: Vec<i64> = log
        .all_events()
        .await
        .ctx("read")?
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Transition(t) => Some(t.at.timestamp() - 1_790_000_000),
            _ => None,
        })
        .collect();
    ensure_eq!(
        stamps,
        vec![0, 1, 2, 3],
        "each entry once, the in-doubt one signed again after the late op"
    );
    ensure_eq!(e.event_id, 3, "the new append comes last");
    // And the store agrees, after a restart.
    log.close().await.ctx("close")?;
    drop(store);
    let reopened = EventLog::open(h.open(&loc).await.ctx("reopen")?, key(0))
        .await
        .ctx("reopen the log")?;
    ensure_eq!(reopened.visible_len(), 4, "events after reopening");
    Ok(())
}
