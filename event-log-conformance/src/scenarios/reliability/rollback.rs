//! A store that lost its acknowledged tail never makes a sled sign a seq twice, and
//! `verify` reports the loss.

use event_log_core::{
    Error, EventLog, EventLogConfig, MemWatermark, OpStore, SharedWatermark, verify,
};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{key, load_all, transition};
use crate::harness::{StoreHarness, fresh_log};
use crate::{ensure, ensure_eq};

fn with_mark(w: &MemWatermark) -> EventLogConfig {
    EventLogConfig::default().with_watermark(Some(SharedWatermark::new(w.clone())))
}

/// Copies the first `keep` rows of `from` (in load order) into `to`, and, with
/// `meta`, the sled's checkpoint: a backup taken earlier, or a truncated tail.
async fn copy_prefix<S: OpStore, T: OpStore>(
    from: &S,
    to: &T,
    keep: usize,
    meta: Option<&str>,
) -> Check {
    for (_, r) in load_all(from, 100)
        .await
        .ctx("load")?
        .into_iter()
        .take(keep)
    {
        to.append(std::slice::from_ref(&r)).await.ctx("copy row")?;
    }
    if let Some(k) = meta {
        let v = from
            .get_meta(k)
            .await
            .ctx("get meta")?
            .ok_or("no checkpoint to copy")?;
        to.put_meta(k, &v).await.ctx("put meta")?;
    }
    Ok(())
}

/// Opened over a store restored from an older backup, a sled whose watermark says
/// it signed more refuses to append (`Error::RolledBack`, nothing written) until its
/// lost ops come back from a peer; then it continues after them, never re-signing.
pub fn rolled_back_store_never_resigns<H: StoreHarness>(
    h: &H,
    rt: &Runtime,
) -> Result<(), Failure> {
    once(
        "rolled_back_store_never_resigns",
        rt.block_on(rolled_back(h)),
    )
}

async fn rolled_back<H: StoreHarness>(h: &H) -> Check {
    let mark = MemWatermark::new();
    let (_g1, live) = h.create().await.ctx("create")?;
    let log = EventLog::open_with(h.open(&live).await.ctx("open")?, key(0), with_mark(&mark))
        .await
        .ctx("open log")?;
    for i in 0..5 {
        log.append_transition(transition(i)).await.ctx("append")?;
    }
    log.close().await.ctx("close")?;
    let (_g2, restored) = h.create().await.ctx("create")?;
    let backup = h.open(&restored).await.ctx("open backup")?;
    // (A closed log's store is closed: the copy reads through a new handle.)
    let source = h.open(&live).await.ctx("reopen")?;
    copy_prefix(&source, &backup, 3, None).await?;
    let back = EventLog::open_with(backup, key(0), with_mark(&mark))
        .await
        .ctx("open over the backup")?;
    ensure_eq!(back.missing().len(), 1, "the loss is reported at open");
    match back.append_transition(transition(9)).await {
        Err(Error::RolledBack { held, signed }) => {
            ensure_eq!((held, signed), (3, 5), "held and signed seqs");
        }
        Ok(e) => {
            return Err(format!(
                "re-signed seq {} over a rolled-back store",
                e.event_id + 1
            ));
        }
        Err(e) => return Err(format!("expected RolledBack, found {e}")),
    }
    ensure_eq!(
        back.store().count().await.ctx("count")?,
        3,
        "nothing written"
    );
    // The lost ops come back from a peer: the live store, read by a log opened
    // read-only over it (the closed log's store is closed).
    let peer = EventLog::open_with(
        source,
        key(0),
        EventLogConfig::default().with_read_only(true),
    )
    .await
    .ctx("open the live store read-only")?;
    back.merge(
        peer.export_since(&back.version_vector())
            .await
            .ctx("export")?,
    )
    .await
    .ctx("take the ops back")?;
    let e = back
        .append_transition(transition(9))
        .await
        .ctx("append after recovery")?;
    ensure_eq!(e.event_id, 5, "continues after the ops it signed");
    ensure!(back.equivocations().is_empty(), "no seq signed twice");
    ensure!(back.missing().is_empty(), "nothing missing any more");
    Ok(())
}

/// With the newest rows gone but the sled's signed checkpoint left (a truncated
/// tail), `verify` reports the missing acknowledged ops and open refuses to
/// re-sign them.
pub fn truncated_tail_detected<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("truncated_tail_detected", rt.block_on(truncated(h)))
}

async fn truncated<H: StoreHarness>(h: &H) -> Check {
    let (_g1, live, log) = fresh_log(h, key(0)).await?;
    for i in 0..5 {
        log.append_transition(transition(i)).await.ctx("append")?;
    }
    log.close().await.ctx("close: saves the checkpoint")?;
    let ckpt = format!("replay-checkpoint/{}", log.sled_id());
    let (_g2, cut) = h.create().await.ctx("create")?;
    let store = h.open(&cut).await.ctx("open cut")?;
    let source = h.open(&live).await.ctx("reopen")?;
    copy_prefix(&source, &store, 3, Some(&ckpt)).await?;
    let report = verify(&store, &EventLogConfig::default(), &[], |_| {})
        .await
        .ctx("verify")?;
    ensure!(
        !report.is_clean(),
        "a truncated tail is not clean: {report:?}"
    );
    ensure_eq!(report.damaged, 0, "no damaged row");
    ensure_eq!(report.missing.len(), 1, "one sled misses ops");
    let m = report.missing[0];
    ensure_eq!(
        (m.sled, m.held, m.acknowledged),
        (log.sled_id(), 3, 5),
        "the sled, what the store holds, what was acknowledged"
    );
    let clean = verify(&source, &EventLogConfig::default(), &[], |_| {})
        .await
        .ctx("verify the intact store")?;
    ensure!(clean.is_clean(), "the intact store is clean: {clean:?}");
    ensure_eq!(clean.valid, 5, "ops verified");
    let reopened = EventLog::open(store, key(0))
        .await
        .ctx("open the cut store")?;
    ensure!(
        matches!(
            reopened.append_transition(transition(9)).await,
            Err(Error::RolledBack { held: 3, signed: 5 })
        ),
        "appends wait for the missing ops"
    );
    Ok(())
}
