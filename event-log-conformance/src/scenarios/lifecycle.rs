//! A store's life: empty, odd payloads, closed, dropped, reopened.

use event_log_core::{OpRecord, OpStore, Position, StoreErrorKind, VersionVector};
use tokio::runtime::Runtime;

use super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, load_all, op_with, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// An empty append is a no-op; payloads no entry would have (empty, non-JSON,
/// quotes, a NUL, non-ASCII), with an evidence op in the same call, come back byte
/// for byte from `load`, `get` and `since`.
pub fn odd_payloads_round_trip<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("odd_payloads_round_trip", rt.block_on(odd_payloads(h)))
}

async fn odd_payloads<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    store.append(&[]).await.ctx("empty append")?;
    ensure_eq!(
        store.count().await.ctx("count")?,
        0,
        "count after an empty append"
    );
    ensure!(
        store
            .load(Position::START, 10)
            .await
            .ctx("load")?
            .is_empty(),
        "nothing loads"
    );
    ensure!(store.heads().await.ctx("heads")?.is_empty(), "no heads");
    let payloads: [&[u8]; 5] = [
        br#"{"story":"a","to":"done"}"#,
        b"",
        "{\"s\":\"\u{fc}n\u{ef} \\\"q\\\" \u{0}nul \u{1F600}\"}".as_bytes(),
        "\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{2713}".as_bytes(),
        b"not json at all",
    ];
    let mut ops: Vec<OpRecord> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| OpRecord::new(&op_with(&key(i as u8), 1, p), false))
        .collect();
    ops.push(OpRecord::new(
        &op_with(&key(0), 1, br#"{"fork":true}"#),
        true,
    ));
    store.append(&ops).await.ctx("append")?;
    let loaded: Vec<OpRecord> = load_all(&store, 100)
        .await
        .ctx("load")?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    ensure_eq!(loaded, ops, "load gives every op back, in append order");
    for r in &ops {
        let got = store.get(&r.id).await.ctx("get")?;
        ensure_eq!(got.as_ref(), Some(r), "get({})", r.id);
    }
    let mut want = ops.clone();
    want.sort_by_key(|r| (r.author, r.seq, r.id));
    let since = store.since(&VersionVector::new(), 100).await.ctx("since")?;
    ensure_eq!(since, want, "since gives every op back");
    Ok(())
}

/// Everything appended is there, at its position, after `close` and reopen and
/// after a drop without `close`; appends go on after the old positions. `close`
/// twice is fine, and a store that refuses calls once closed refuses them with
/// `Unavailable`.
pub fn close_then_reopen_keeps_everything<H: StoreHarness>(
    h: &H,
    rt: &Runtime,
) -> Result<(), Failure> {
    once(
        "close_then_reopen_keeps_everything",
        rt.block_on(close_reopen(h)),
    )
}

async fn close_reopen<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    let ops = records(&chain(&key(1), 20, &[]));
    store.append(&ops[..6]).await.ctx("append")?;
    for op in &ops[6..10] {
        store.append(std::slice::from_ref(op)).await.ctx("append")?;
    }
    let before = load_all(&store, 100).await.ctx("load")?;
    store.close().await.ctx("close")?;
    store.close().await.ctx("close again")?;
    // Optional: a store may keep working after close (MemStore does).
    if let Err(e) = store.count().await {
        ensure_eq!(
            e.kind(),
            StoreErrorKind::Unavailable,
            "count after close: {e}"
        );
        let e = store.append(&ops[10..11]).await.err();
        ensure_eq!(
            e.map(|e| e.kind()),
            Some(StoreErrorKind::Unavailable),
            "append after close"
        );
    }
    drop(store);
    let store = h.open(&loc).await.ctx("reopen")?;
    ensure_eq!(
        load_all(&store, 100).await.ctx("load")?,
        before,
        "rows after close and reopen"
    );
    for op in &ops[10..] {
        store.append(std::slice::from_ref(op)).await.ctx("append")?;
    }
    drop(store); // no close: dropping alone must lose nothing and release the store
    let store = h.open(&loc).await.ctx("reopen after a drop")?;
    let after = load_all(&store, 100).await.ctx("load")?;
    ensure_eq!(after.len(), ops.len(), "ops after the reopens");
    ensure_eq!(
        after[..before.len()].to_vec(),
        before,
        "the old rows, unchanged"
    );
    let rows: Vec<OpRecord> = after.iter().map(|(_, r)| r.clone()).collect();
    ensure_eq!(rows, ops, "every op, in append order");
    ensure!(
        after.windows(2).all(|w| w[0].0 < w[1].0),
        "new appends take positions after the old ones"
    );
    ensure_eq!(
        store.heads().await.ctx("heads")?.get(&ops[0].author),
        20,
        "head"
    );
    Ok(())
}
