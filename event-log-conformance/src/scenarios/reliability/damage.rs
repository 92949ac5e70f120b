//! One bad row in a shared store must not stop every sled from opening.

use crate::read::ReadAll;
use std::collections::BTreeMap;

use bft_json_crdt::Op;
use event_log_core::{
    DamageKind, Error, EventLog, MemStore, OpId, OpRecord, OpStore, Rejected, SignedOp,
};
use tokio::runtime::Runtime;

use super::super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, entry, key, load_all, transition};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// A row whose readable payload column was edited in place (what a SQL shell shows is
/// not what was signed).
fn edited_payload(op: &SignedOp) -> OpRecord {
    let mut r = OpRecord::new(op, false);
    r.payload = r.payload.replace("coding", "shipped");
    assert_ne!(
        r.payload.as_bytes(),
        op.payload(),
        "the edit changes the column"
    );
    r
}

/// A row whose signed bytes were damaged (its id no longer matches).
fn garbled(op: &SignedOp) -> OpRecord {
    let mut r = OpRecord::new(op, false);
    let i = r.bytes.len() - 80;
    r.bytes[i] ^= 0x20;
    r
}

/// A sled's own ops, as its log would store them.
async fn own_ops(n: u64) -> Result<Vec<SignedOp>, String> {
    let log = EventLog::open(MemStore::new(), key(0))
        .await
        .ctx("own log")?;
    for i in 0..n {
        log.append_transition(transition(i))
            .await
            .ctx("own append")?;
    }
    let raw = log.export_since(&Default::default()).await.ctx("export")?;
    raw.iter()
        .map(|r| r.decode(&Default::default()).map_err(|e| e.to_string()))
        .collect()
}

/// Open succeeds over damaged and forged rows of other sleds: each is reported
/// (position, op id, typed reason) and counted, kept out of the view, and every
/// valid op stays visible; ops that depend on a damaged row are reported as
/// unreachable, not lost from the store.
pub fn damaged_rows_quarantined<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("damaged_rows_quarantined", rt.block_on(quarantined(h)))
}

async fn quarantined<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    let mine = own_ops(3).await?;
    let b = chain(&key(1), 5, &[]);
    let c = chain(&key(2), 3, &[]);
    let forged = Op {
        author: b[0].author(),
        seq: 9,
        lamport: 1,
        deps: vec![],
        payload: entry(77, false).to_payload(),
    }
    .with_signature([7; 64]);
    let liar = {
        let op = chain(&key(3), 1, &[]).remove(0);
        let mut r = OpRecord::new(&op, false);
        r.author = b[0].author();
        r.seq = 42;
        r
    };
    let mut rows: Vec<OpRecord> = mine.iter().map(|o| OpRecord::new(o, false)).collect();
    rows.extend([
        OpRecord::new(&b[0], false),
        OpRecord::new(&b[1], false),
        edited_payload(&b[2]),
        OpRecord::new(&b[3], false),
        OpRecord::new(&b[4], false),
        OpRecord::new(&c[0], false),
        garbled(&c[1]),
        OpRecord::new(&c[2], false),
        OpRecord::new(&forged, false),
        liar.clone(),
    ]);
    for r in &rows {
        store
            .append(std::slice::from_ref(r))
            .await
            .ctx("append row")?;
    }
    let positions: BTreeMap<OpId, u64> = load_all(&store, 100)
        .await
        .ctx("load")?
        .into_iter()
        .map(|(p, r)| (r.id, p.0))
        .collect();
    drop(store);
    let log = EventLog::open(h.open(&loc).await.ctx("reopen")?, key(0))
        .await
        .map_err(|e| format!("open must succeed over other sleds' damaged rows: {e}"))?;
    let visible: Vec<OpId> = log
        .all_events()
        .await
        .ctx("read")?
        .iter()
        .map(|e| e.op_id)
        .collect();
    let mut want: Vec<OpId> = mine.iter().map(|o| o.id()).collect();
    want.extend([b[0].id(), b[1].id(), c[0].id()]);
    want.sort();
    let mut got = visible.clone();
    got.sort();
    ensure_eq!(got, want, "the valid ops are visible, nothing else");
    let damage = log.damage();
    let kind_of = |id: OpId| damage.iter().find(|d| d.id == id).map(|d| d.kind.clone());
    let at = |id: OpId| damage.iter().find(|d| d.id == id).map(|d| d.position.0);
    ensure!(
        matches!(
            kind_of(b[2].id()),
            Some(DamageKind::RowMismatch {
                column: "payload",
                ..
            })
        ),
        "an edited payload column is damage naming the column: {:?}",
        kind_of(b[2].id())
    );
    ensure_eq!(
        at(b[2].id()),
        positions.get(&b[2].id()).copied(),
        "its position"
    );
    ensure!(
        matches!(
            kind_of(c[1].id()),
            Some(DamageKind::Rejected(Rejected::BadId { .. }))
        ),
        "garbled bytes: {:?}",
        kind_of(c[1].id())
    );
    ensure!(
        matches!(
            kind_of(forged.id()),
            Some(DamageKind::Rejected(Rejected::BadSignature { .. }))
        ),
        "a forged row: {:?}",
        kind_of(forged.id())
    );
    ensure!(
        matches!(
            kind_of(liar.id),
            Some(DamageKind::RowMismatch {
                column: "author",
                ..
            })
        ),
        "a row whose author column lies: {:?}",
        kind_of(liar.id)
    );
    for op in [&b[3], &b[4], &c[2]] {
        ensure!(
            matches!(kind_of(op.id()), Some(DamageKind::Unreachable { .. })),
            "an op depending on a damaged row is reported unreachable: {:?}",
            kind_of(op.id())
        );
    }
    ensure_eq!(log.open_stats().damaged, 7, "damaged rows counted");
    ensure_eq!(
        log.store().count().await.ctx("count")?,
        rows.len() as u64,
        "nothing removed from the store"
    );
    // The log goes on working.
    let e = log
        .append_transition(transition(9))
        .await
        .ctx("append after")?;
    ensure_eq!(e.event_id, 3, "own sequence continues");
    Ok(())
}

/// Damage to this sled's own chain refuses the open (the sled could not continue
/// its sequence), naming the row and how to recover.
pub fn own_chain_damage_refuses_open<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("own_chain_damage_refuses_open", rt.block_on(own_chain(h)))
}

async fn own_chain<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    let mine = own_ops(3).await?;
    store
        .append(&[
            OpRecord::new(&mine[0], false),
            edited_payload(&mine[1]),
            OpRecord::new(&mine[2], false),
        ])
        .await
        .ctx("append")?;
    drop(store);
    match EventLog::open(h.open(&loc).await.ctx("reopen")?, key(0)).await {
        Err(e @ Error::OwnChainDamaged { .. }) => {
            let Error::OwnChainDamaged { row } = &e else {
                unreachable!()
            };
            ensure_eq!(row.id, mine[1].id(), "the damaged op named");
            let text = e.to_string();
            ensure!(
                text.contains("seq 2") && text.contains("sync"),
                "the message names the seq and how to recover: {text}"
            );
            Ok(())
        }
        Err(e) => Err(format!("expected OwnChainDamaged, found {e}")),
        Ok(_) => Err("open succeeded over a broken own chain".into()),
    }
}
