//! Paging through `load` and `since`.

use std::collections::HashMap;

use event_log_core::{OpId, OpRecord, OpStore, VersionVector};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Context, Failure};
use crate::fixture::{chain, key, op_at, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// `load(position, limit)` and `since(vv, limit)` page through everything exactly
/// once for any limit ≥ 1, evidence ops included; `since` from a partial vector
/// returns exactly the ops above it.
pub fn pagination<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let strat = (
        prop::collection::vec(1u64..8, 1..4),
        1usize..10,
        prop::collection::vec(0u64..8, 4),
    );
    prop("pagination", 24, strat, |(lens, limit, partial)| {
        rt.block_on(async {
            let (_guard, _loc, store) = fresh_store(h).await?;
            let mut all: Vec<OpRecord> = Vec::new();
            for (i, n) in lens.iter().enumerate() {
                let ops = chain(&key(i as u8), *n, &[]);
                store.append(&records(&ops)).await.ctx("append")?;
                all.extend(records(&ops));
            }
            // An evidence op sharing sled 0's seq 1.
            let ev = OpRecord::new(&op_at(&key(0), 1, None, 99), true);
            store
                .append(std::slice::from_ref(&ev))
                .await
                .ctx("append evidence")?;
            all.push(ev);

            // load
            let mut after = event_log_core::Position::START;
            let mut seen: Vec<OpId> = Vec::new();
            loop {
                let page = store.load(after, limit).await.ctx("load")?;
                ensure!(
                    page.len() <= limit,
                    "load returned {} > limit {limit}",
                    page.len()
                );
                let Some((last, _)) = page.last() else { break };
                ensure!(*last > after, "load went backwards");
                after = *last;
                seen.extend(page.iter().map(|(_, r)| r.id));
            }
            let want: Vec<OpId> = all.iter().map(|r| r.id).collect();
            ensure_eq!(
                seen,
                want,
                "load pages visit every op once, in append order"
            );

            // since, from nothing
            let mut vv = VersionVector::new();
            let mut got: HashMap<OpId, usize> = HashMap::new();
            for _ in 0..all.len() + 2 {
                let page = store.since(&vv, limit).await.ctx("since")?;
                if page.is_empty() {
                    break;
                }
                for w in page.windows(2) {
                    ensure!(
                        (w[0].author, w[0].seq, w[0].id) < (w[1].author, w[1].seq, w[1].id),
                        "since must order by (author, seq, id)"
                    );
                }
                for r in &page {
                    *got.entry(r.id).or_default() += 1;
                    vv.raise(r.author, r.seq);
                }
            }
            ensure_eq!(got.len(), all.len(), "since pages reach every op");
            ensure!(
                got.values().all(|&c| c == 1),
                "since pages visit each op exactly once"
            );
            ensure!(
                store.since(&vv, limit).await.ctx("since")?.is_empty(),
                "nothing after the full vector"
            );

            // since, from a partial vector
            let mut pvv = VersionVector::new();
            for (i, n) in lens.iter().enumerate() {
                pvv.set(
                    event_log_core::AuthorId::from(&key(i as u8).verifying_key()),
                    partial[i].min(*n),
                );
            }
            let page = store.since(&pvv, usize::MAX).await.ctx("since partial")?;
            let mut want: Vec<OpId> = all
                .iter()
                .filter(|r| r.seq > pvv.get(&r.author))
                .map(|r| r.id)
                .collect();
            want.sort();
            let mut ids: Vec<OpId> = page.iter().map(|r| r.id).collect();
            ids.sort();
            ensure_eq!(
                ids,
                want,
                "since(partial vector) returns exactly the ops above it"
            );
            Ok(())
        })
    })
}
