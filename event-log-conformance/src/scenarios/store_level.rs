//! The store contract itself: round trip, idempotency, conflicts.

use event_log_core::{OpRecord, OpStore, StoreError, VersionVector};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::{once, prop};
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, load_all, op_at, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// Appended ops load back byte-identical, in append order, with correct heads and
/// `get`/`count`.
pub fn round_trip<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let strat = (prop::collection::vec(1u64..12, 1..4), 1usize..6);
    prop("round_trip", 32, strat, |(lens, batch)| {
        rt.block_on(async {
            let (_guard, _loc, store) = fresh_store(h).await?;
            let mut all = Vec::new();
            let mut vv = VersionVector::new();
            for (i, n) in lens.iter().enumerate() {
                let ops = chain(&key(i as u8), *n, &[]);
                vv.set(ops[0].author(), *n);
                all.extend(ops);
            }
            for chunk in all.chunks(batch) {
                store.append(&records(chunk)).await.ctx("append")?;
            }
            let loaded = load_all(&store, 1000).await.ctx("load")?;
            ensure_eq!(loaded.len(), all.len(), "ops loaded");
            let mut last = 0;
            for ((pos, rec), op) in loaded.iter().zip(&all) {
                ensure!(
                    pos.0 > last,
                    "positions must increase: {} after {}",
                    pos.0,
                    last
                );
                last = pos.0;
                ensure_eq!(rec.id, op.id(), "id at {pos}");
                ensure!(rec.bytes == op.bytes(), "bytes at {pos} must be identical");
                ensure_eq!(
                    (rec.author, rec.seq, rec.evidence),
                    (op.author(), op.seq(), false),
                    "row fields at {pos}"
                );
                ensure_eq!(rec.payload.as_bytes(), op.payload(), "payload at {pos}");
            }
            ensure_eq!(store.heads().await.ctx("heads")?, vv, "heads");
            ensure_eq!(store.count().await.ctx("count")?, all.len() as u64, "count");
            for op in &all {
                let got = store.get(&op.id()).await.ctx("get")?;
                ensure_eq!(
                    got.map(|r| r.bytes),
                    Some(op.bytes().to_vec()),
                    "get({})",
                    op.id()
                );
            }
            let missing = store
                .get(&event_log_core::OpId([9; 32]))
                .await
                .ctx("get missing")?;
            ensure!(missing.is_none(), "get of an unknown id must be None");
            Ok(())
        })
    })
}

/// Re-appending known ops, alone or mixed with new ones, changes nothing but adds
/// the new ones after everything else; an op twice in one call is stored once.
pub fn idempotent_append<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let strat = (2u64..16, any::<prop::sample::Index>(), any::<bool>());
    prop("idempotent_append", 32, strat, |(n, cut, mixed)| {
        rt.block_on(async {
            let (_guard, _loc, store) = fresh_store(h).await?;
            let ops = chain(&key(1), n, &[]);
            let k = cut.index(ops.len() - 1) + 1;
            store
                .append(&records(&ops[..k]))
                .await
                .ctx("first append")?;
            let before = load_all(&store, 100).await.ctx("load")?;
            store.append(&records(&ops[..k])).await.ctx("re-append")?;
            let again = load_all(&store, 100).await.ctx("load")?;
            ensure!(again == before, "re-appending known ops changed the store");
            if mixed {
                // known ops mixed with new ones
                store.append(&records(&ops)).await.ctx("mixed append")?;
            } else {
                store.append(&records(&ops[k..])).await.ctx("append rest")?;
            }
            let after = load_all(&store, 100).await.ctx("load")?;
            let ids: Vec<_> = after.iter().map(|(_, r)| r.id).collect();
            let want: Vec<_> = ops.iter().map(|o| o.id()).collect();
            ensure_eq!(ids, want, "each op exactly once, in append order");
            ensure!(
                after[..k] == before[..],
                "known rows (positions included) unchanged"
            );
            ensure_eq!(store.count().await.ctx("count")?, n, "count");
            // A new op twice in one call is stored once.
            let extra = records(&chain(&key(2), 1, &[]));
            let twice = [extra[0].clone(), extra[0].clone()];
            store.append(&twice).await.ctx("an op twice in one call")?;
            ensure_eq!(store.count().await.ctx("count")?, n + 1, "count");
            Ok(())
        })
    })
}

/// A primary op on a taken `(author, seq)` fails the whole batch with a conflict
/// naming both ops, and writes nothing; evidence ops may share an `(author, seq)`.
pub fn conflict_rejected_atomically<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once(
        "conflict_rejected_atomically",
        rt.block_on(conflict_case(h)),
    )
}

async fn conflict_case<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let a = key(1);
    let first = op_at(&a, 1, None, 1);
    let rival = op_at(&a, 1, None, 2);
    let other = chain(&key(2), 2, &[]);
    store
        .append(&records(std::slice::from_ref(&first)))
        .await
        .ctx("append first")?;
    let before = load_all(&store, 100).await.ctx("load")?;

    // A batch with a new good op and a conflicting op: all refused.
    let mut batch = records(&other);
    batch.push(OpRecord::new(&rival, false));
    match store.append(&batch).await {
        Err(StoreError::Conflict {
            author,
            seq,
            existing,
            incoming,
        }) => {
            ensure_eq!(
                (author, seq),
                (first.author(), 1),
                "conflict names the (author, seq)"
            );
            ensure_eq!(existing, first.id(), "conflict names the existing op");
            ensure_eq!(incoming, rival.id(), "conflict names the incoming op");
        }
        other => return Err(format!("expected a Conflict error, found {other:?}")),
    }
    ensure!(
        load_all(&store, 100).await.ctx("load")? == before,
        "a refused batch must write nothing"
    );

    // Two primary ops with one (author, seq) in one batch conflict too.
    let b = key(3);
    let x = op_at(&b, 1, None, 3);
    let y = op_at(&b, 1, None, 4);
    let r = store.append(&records(&[x.clone(), y.clone()])).await;
    ensure!(
        matches!(r, Err(StoreError::Conflict { existing, incoming, .. })
            if existing == x.id() && incoming == y.id()),
        "two primaries at one seq in one batch: expected a Conflict naming the first as \
         existing, the second as incoming, found {r:?}"
    );
    ensure!(
        load_all(&store, 100).await.ctx("load")? == before,
        "a refused batch must write nothing"
    );

    // Evidence may share the (author, seq).
    store
        .append(&[OpRecord::new(&rival, true)])
        .await
        .ctx("append evidence")?;
    let after = load_all(&store, 100).await.ctx("load")?;
    ensure_eq!(after.len(), 2, "evidence op stored beside the primary");
    ensure!(after[1].1.evidence, "evidence flag kept");
    // A primary op on that seq still conflicts with the primary one.
    let third = op_at(&a, 1, None, 5);
    let r = store.append(&records(&[third])).await;
    ensure!(
        matches!(r, Err(StoreError::Conflict { existing, .. }) if existing == first.id()),
        "a primary op beside evidence still conflicts with the primary: {r:?}"
    );
    // And the good ops of the refused batch can be appended alone.
    store
        .append(&records(&other))
        .await
        .ctx("append the good ops")?;
    ensure_eq!(store.count().await.ctx("count")?, 4, "count");
    Ok(())
}

/// Meta values (the log's replay checkpoints) read back exactly as last written,
/// also after a reopen. Optional: a store that keeps none returns `None` throughout.
pub fn meta_round_trip<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("meta_round_trip", rt.block_on(meta_case(h)))
}

async fn meta_case<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    ensure_eq!(
        store.get_meta("k").await.ctx("get_meta")?,
        None,
        "meta of a fresh store"
    );
    store.put_meta("k", b"first").await.ctx("put_meta")?;
    let Some(v) = store.get_meta("k").await.ctx("get_meta")? else {
        // The optional capability is absent: nothing may ever come back.
        store.put_meta("k", b"second").await.ctx("put_meta")?;
        ensure_eq!(
            store.get_meta("k").await.ctx("get_meta")?,
            None,
            "a store without meta"
        );
        return Ok(());
    };
    ensure_eq!(v, b"first".to_vec(), "meta value read back");
    let big = vec![0xA5u8; 4096];
    store.put_meta("k", &big).await.ctx("put_meta")?;
    store.put_meta("other", b"x").await.ctx("put_meta")?;
    drop(store);
    let store = h.open(&loc).await.ctx("reopen")?;
    ensure_eq!(
        store.get_meta("k").await.ctx("get_meta")?,
        Some(big),
        "meta value after overwrite and reopen"
    );
    ensure_eq!(
        store.get_meta("other").await.ctx("get_meta")?,
        Some(b"x".to_vec()),
        "second key"
    );
    ensure_eq!(
        store.get_meta("missing").await.ctx("get_meta")?,
        None,
        "unknown key"
    );
    Ok(())
}
