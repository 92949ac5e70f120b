//! Appends the op limits would refuse anywhere are refused before signing, and a
//! configuration that could produce such ops is refused at open.

use event_log_core::{Error, EventLog, EventLogConfig, OpStore, Transition};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{key, transition};
use crate::harness::{StoreHarness, close_log, fresh_log, open_log};
use crate::{ensure, ensure_eq};

/// An entry whose op would exceed `Limits::max_payload` (a huge story id; control
/// characters JSON escapes six-fold) is refused with `Error::OverLimits` naming the
/// limit and the size, nothing is stored, and the store still opens.
pub fn over_limits_refused<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("over_limits_refused", rt.block_on(over_limits(h)))
}

async fn over_limits<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, log) = fresh_log(h, key(0)).await?;
    log.append_transition(transition(1)).await.ctx("append")?;
    let limit = log.config().limits.max_payload;
    let huge = Transition::now("s".repeat(70_000), "a", "b", "E");
    let escaped = Transition::now("s", "a", "b", "\u{1}".repeat(11_000));
    for (what, t) in [
        ("a 70,000-char story id", huge),
        ("11,000 control chars", escaped),
    ] {
        match log.append_transition(t).await {
            Err(Error::OverLimits {
                what: "payload",
                limit: l,
                actual,
            }) => {
                ensure_eq!(l, limit, "{what}: the limit named");
                ensure!(actual > limit, "{what}: the size named ({actual})");
            }
            Ok(e) => {
                return Err(format!(
                    "{what}: expected OverLimits, stored as event {}",
                    e.event_id
                ));
            }
            Err(e) => return Err(format!("{what}: expected OverLimits, found {e}")),
        }
    }
    // One over-limit entry in a batch refuses the batch, atomically.
    let batch = vec![
        transition(2).into(),
        Transition::now("s".repeat(70_000), "a", "b", "E").into(),
    ];
    ensure!(
        matches!(log.append_all(batch).await, Err(Error::OverLimits { .. })),
        "a batch holding an over-limit entry is refused"
    );
    ensure_eq!(log.store().count().await.ctx("count")?, 1, "ops stored");
    let next = log
        .append_transition(transition(3))
        .await
        .ctx("append after")?;
    ensure_eq!(next.event_id, 1, "the refused entries took no seq");
    close_log(log).await?;
    let log = open_log(h, &loc, key(0))
        .await
        .map_err(|e| format!("reopen: an over-limit append must not brick the store: {e}"))?;
    ensure_eq!(log.visible_len(), 2, "events after reopen");
    Ok(())
}

/// A configuration that could sign ops other sleds refuse, or that cannot work
/// (zero batch or page), is refused at open with `Error::Config` naming the field.
pub fn config_validated<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("config_validated", rt.block_on(config(h)))
}

async fn config<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc) = h.create().await.ctx("create")?;
    let limits = EventLogConfig::default().limits;
    let cases: Vec<(&str, EventLogConfig)> = vec![
        (
            "max_extra_deps",
            EventLogConfig::default().with_max_extra_deps(limits.max_deps),
        ),
        ("max_batch", EventLogConfig::default().with_max_batch(0)),
        ("replay_page", EventLogConfig::default().with_replay_page(0)),
    ];
    for (field, config) in cases {
        let store = h.open(&loc).await.ctx("open")?;
        match EventLog::open_with(store, key(0), config).await {
            Err(Error::Config(e)) => ensure_eq!(e.field, field, "the field named"),
            Err(e) => return Err(format!("{field}: expected Error::Config, found {e}")),
            Ok(_) => return Err(format!("{field}: a bad config was accepted")),
        }
    }
    let store = h.open(&loc).await.ctx("open")?;
    EventLog::open_with(store, key(0), EventLogConfig::default())
        .await
        .ctx("the default config")?;
    Ok(())
}
