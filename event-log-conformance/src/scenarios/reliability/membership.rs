//! Only the deployment's members may author; nobody may flood the others out.

use event_log_core::{
    DamageKind, EventLog, EventLogConfig, Limits, Membership, MergeRejected, OpId, OpRecord,
    OpStore, Rejected, SignedOp,
};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, op_at};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

fn member_config(limits: Limits) -> EventLogConfig {
    EventLogConfig::default()
        .with_members(Some(Membership::new(
            [0, 1, 2]
                .map(|k| key(k).verifying_key())
                .map(|k| (&k).into()),
        )))
        .with_limits(limits)
}

/// With a membership, ops of other keys are refused by merges with
/// `Rejected::NotMember`, counted by reason, never stored; such ops found in the
/// store are kept out of the view and reported; members' ops apply.
pub fn non_members_refused<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("non_members_refused", rt.block_on(non_members(h)))
}

async fn non_members<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let stranger = chain(&key(7), 3, &[]);
    // Stored before the membership was configured.
    let old = chain(&key(8), 1, &[]);
    store
        .append(&[OpRecord::new(&old[0], false)])
        .await
        .ctx("append")?;
    let log = EventLog::open_with(store, key(0), member_config(Limits::default()))
        .await
        .ctx("open")?;
    ensure!(
        matches!(
            log.damage().first().map(|d| &d.kind),
            Some(DamageKind::Rejected(Rejected::NotMember { .. }))
        ),
        "a non-member's stored op is reported: {:?}",
        log.damage()
    );
    ensure_eq!(log.visible_len(), 0, "and kept out of the view");
    let report = log
        .merge(stranger.iter().map(SignedOp::to_raw).collect())
        .await
        .ctx("merge")?;
    ensure_eq!(report.rejected().len(), 3, "every stranger op refused");
    ensure!(
        report
            .rejected()
            .iter()
            .all(|d| matches!(d.result, Err(MergeRejected::Op(Rejected::NotMember { .. })))),
        "refused as non-member: {:?}",
        report.rejected()
    );
    ensure_eq!(
        log.stats().rejected_by_reason.get("not_member").copied(),
        Some(3),
        "counted by reason"
    );
    ensure_eq!(log.store().count().await.ctx("count")?, 1, "none stored");
    let member = chain(&key(1), 2, &[]);
    let report = log
        .merge(member.iter().map(SignedOp::to_raw).collect())
        .await
        .ctx("merge member")?;
    ensure_eq!(report.applied(), 2, "a member's ops apply");
    Ok(())
}

/// One member feeding ops that can only wait (their deps never come) fills only
/// its own share of the buffer: another member's waiting op is still buffered and
/// applies once its dep arrives.
pub fn buffer_flood_is_contained<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("buffer_flood_is_contained", rt.block_on(flood(h)))
}

async fn flood<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc) = h.create().await.ctx("create")?;
    let limits = Limits {
        max_buffered: 64,
        max_buffered_per_author: 8,
        ..Limits::default()
    };
    let log = EventLog::open_with(
        h.open(&loc).await.ctx("open")?,
        key(0),
        member_config(limits),
    )
    .await
    .ctx("open")?;
    // Member 1 sends 100 ops that each wait for an op nobody has.
    let ghost = op_at(&key(1), 1, None, 999);
    let orphans: Vec<SignedOp> = (0..100u64)
        .map(|i| op_at(&key(1), 2, Some(&ghost), i))
        .collect();
    let report = log
        .merge(orphans.iter().map(SignedOp::to_raw).collect())
        .await
        .ctx("flood")?;
    ensure_eq!(report.buffered(), 8, "the flooder's share of the buffer");
    // Another member's op waiting for its dep still finds room, and applies.
    let honest = chain(&key(2), 2, &[]);
    let report = log
        .merge(vec![honest[1].to_raw()])
        .await
        .ctx("honest waits")?;
    ensure_eq!(
        report.buffered(),
        1,
        "another member's op still gets buffer room"
    );
    log.merge(vec![honest[0].to_raw()]).await.ctx("honest")?;
    let ids: Vec<OpId> = honest.iter().map(SignedOp::id).collect();
    ensure!(
        ids.iter().all(|id| log.contains(id)),
        "a member's chain applies despite the flood"
    );
    Ok(())
}
