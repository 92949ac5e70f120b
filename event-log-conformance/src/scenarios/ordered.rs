//! Ordered appends (`OpStore::append_after`): the guard, and for stores that pipeline,
//! the order of calls in flight together.

use event_log_core::{OpId, OpStore, StoreError};
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, load_all, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// An ordered append writes only after a stored predecessor (else it fails with
/// `MissingPredecessor` and writes nothing); with the store's pipeline full, calls
/// take effect in call order, and every call behind one that failed writes nothing.
pub fn ordered_append<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    // (ops in the chain, ops per call, which call is sabotaged if any)
    let strat = (4u64..40, 1usize..6, proptest::option::of(0usize..8));
    prop("ordered_append", 16, strat, |(n, per_call, sabotage)| {
        rt.block_on(ordered_case(h, n, per_call, sabotage))
    })
}

async fn ordered_case<H: StoreHarness>(
    h: &H,
    n: u64,
    per_call: usize,
    sabotage: Option<usize>,
) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let ops = chain(&key(1), n, &[]);

    // The guard, one call at a time.
    let stranger = OpId([0xAB; 32]);
    match store
        .append_after(Some(&stranger), &records(&ops[..1]))
        .await
    {
        Err(StoreError::MissingPredecessor { after }) => {
            ensure_eq!(after, stranger, "MissingPredecessor names the missing op")
        }
        other => {
            return Err(format!(
                "append_after an op that is not stored must fail with MissingPredecessor, \
                 got {other:?}"
            ));
        }
    }
    ensure_eq!(
        store.count().await.ctx("count")?,
        0,
        "a refused append wrote"
    );
    store
        .append_after(None, &records(&ops[..1]))
        .await
        .ctx("append_after(None)")?;
    store
        .append_after(Some(&ops[0].id()), &records(&ops[..1]))
        .await
        .ctx("repeating an ordered append is idempotent")?;
    ensure_eq!(
        store.count().await.ctx("count")?,
        1,
        "ops after the first call"
    );

    // The rest of the chain as calls in flight together, each continuing the one
    // before; `join_all` polls them first in order, as a log's pipeline does. One
    // call may be sabotaged: it continues an op that does not exist.
    let rest = &ops[1..];
    let calls: Vec<&[event_log_core::SignedOp]> = rest.chunks(per_call).collect();
    let sabotage = sabotage.filter(|s| *s < calls.len());
    let batches: Vec<_> = calls.iter().map(|c| records(c)).collect();
    let mut prev = ops[0].id();
    let mut futures = Vec::new();
    for (i, (chunk, batch)) in calls.iter().zip(&batches).enumerate() {
        let after = if Some(i) == sabotage { stranger } else { prev };
        prev = chunk[chunk.len() - 1].id();
        let store = &store;
        futures.push(async move { store.append_after(Some(&after), batch).await });
    }
    let pipelined = store.append_pipeline() > 1;
    let results = if pipelined {
        futures::future::join_all(futures).await
    } else {
        // A store without pipelining is called one call at a time.
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await);
        }
        out
    };
    let mut written = 1;
    for (i, (r, chunk)) in results.iter().zip(&calls).enumerate() {
        match sabotage {
            Some(s) if i >= s => {
                ensure!(
                    matches!(r, Err(StoreError::MissingPredecessor { .. })),
                    "call {i} continues a call that wrote nothing (call {s} was refused): \
                     it must fail with MissingPredecessor, got {r:?}"
                );
            }
            _ => {
                ensure!(r.is_ok(), "call {i} of {} failed: {r:?}", calls.len());
                written += chunk.len();
            }
        }
    }
    let loaded = load_all(&store, 1000).await.ctx("load")?;
    let ids: Vec<OpId> = loaded.iter().map(|(_, r)| r.id).collect();
    let want: Vec<OpId> = ops[..written].iter().map(|o| o.id()).collect();
    ensure_eq!(
        ids,
        want,
        "the stored ops are the chain's prefix up to the refused call, in call order"
    );
    Ok(())
}
