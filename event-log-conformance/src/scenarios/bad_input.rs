//! Bad input from peers.

use crate::read::ReadAll;
use bft_json_crdt::Op;
use event_log_core::{EventLog, MemStore, MergeRejected, OpStore, RawOp, Rejected, SignedOp};
use proptest::prelude::*;
use tokio::runtime::Runtime;

use super::prop;
use crate::failure::{Context, Failure};
use crate::fixture::{entry, key};
use crate::harness::{StoreHarness, fresh_log};
use crate::{ensure, ensure_eq};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    BadSignature,
    ForgedAuthor,
    WrongId,
    Truncated,
}

fn damage(op: &RawOp, how: Damage, cut: usize) -> RawOp {
    let mut raw = op.clone();
    match how {
        Damage::BadSignature => {
            let n = raw.bytes.len();
            raw.bytes[n - 1] ^= 0x40;
        }
        Damage::ForgedAuthor => {
            // Re-encode with a small-order "public key": nobody holds its secret.
            let genuine = SignedOp::from_bytes(&op.bytes, &Default::default()).expect("genuine op");
            let mut weak = [0u8; 32];
            weak[0] = 1;
            let forged = Op {
                author: bft_json_crdt::AuthorId(weak),
                seq: genuine.seq(),
                lamport: genuine.lamport(),
                deps: genuine.deps().to_vec(),
                payload: genuine.payload().to_vec(),
            }
            .with_signature(*genuine.signature());
            raw = forged.to_raw();
        }
        Damage::WrongId => raw.id.0[0] ^= 0xff,
        Damage::Truncated => raw.bytes.truncate(cut % raw.bytes.len()),
    }
    raw
}

/// Ops with a bad signature, a forged author, a wrong id or truncated bytes are
/// refused on merge with their typed reason; the store and the view are unchanged,
/// and genuine ops of the same batch still land.
pub fn bad_input_rejected<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    let how = prop_oneof![
        Just(Damage::BadSignature),
        Just(Damage::ForgedAuthor),
        Just(Damage::WrongId),
        Just(Damage::Truncated)
    ];
    let strat = (how, 1u64..6, any::<prop::sample::Index>(), any::<usize>());
    prop("bad_input_rejected", 32, strat, |(how, n, which, cut)| {
        rt.block_on(async {
            let (_guard, _loc, log) = fresh_log(h, key(0)).await?;
            log.append(entry(1, false)).await.ctx("append")?;
            let peer = EventLog::open(MemStore::new(), key(1)).await.ctx("peer")?;
            for i in 0..n {
                peer.append(entry(10 + i, false)).await.ctx("peer append")?;
            }
            let genuine = peer.export_since(&Default::default()).await.ctx("export")?;
            let v = which.index(genuine.len());
            let bad = damage(&genuine[v], how, cut);
            let count_before = log.store().count().await.ctx("count")?;
            let events_before = log.all_events().await.ctx("read")?;

            // The damaged op alone: refused, nothing changes.
            let report = log.merge(vec![bad.clone()]).await.ctx("merge")?;
            let d = &report.deliveries[0];
            let ok = matches!(
                (how, &d.result),
                (
                    Damage::BadSignature,
                    Err(MergeRejected::Op(Rejected::BadSignature { .. }))
                ) | (
                    Damage::ForgedAuthor,
                    Err(MergeRejected::Op(Rejected::ForgedAuthor { .. }))
                ) | (
                    Damage::WrongId,
                    Err(MergeRejected::Op(Rejected::BadId { .. }))
                ) | (
                    Damage::Truncated,
                    Err(MergeRejected::Op(Rejected::Malformed { .. }))
                )
            );
            ensure!(
                ok,
                "{how:?}: expected its typed rejection, found {:?}",
                d.result
            );
            ensure_eq!(
                log.store().count().await.ctx("count")?,
                count_before,
                "ops stored after a refused op"
            );
            ensure_eq!(
                log.all_events().await.ctx("read")?,
                events_before,
                "view after a refused op"
            );

            // Mixed with the genuine ops: only the damaged one is refused.
            let mut batch = genuine.clone();
            batch.insert(v, bad);
            let report = log.merge(batch).await.ctx("merge")?;
            ensure_eq!(report.rejected().len(), 1, "refused ops in a mixed batch");
            ensure_eq!(
                report.applied(),
                genuine.len(),
                "genuine ops applied from a mixed batch"
            );
            ensure_eq!(
                log.store().count().await.ctx("count")?,
                count_before + genuine.len() as u64,
                "ops stored"
            );
            ensure_eq!(
                log.all_sled_events(&peer.sled_id()).await.ctx("read")?,
                peer.all_events().await.ctx("read")?,
                "the peer's events"
            );
            Ok(())
        })
    })
}
