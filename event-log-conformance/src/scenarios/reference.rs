//! Every read answers exactly as the reference store, `MemStore`, does for the same
//! appends.

use event_log_core::{AuthorId, MemStore, OpRecord, OpStore, Position, VersionVector};
use tokio::runtime::Runtime;

use super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, op_at, records};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// An evidence record of sled `n` at `seq` (a second op at a taken seq).
fn evidence(n: u8, seq: u64, salt: u64) -> OpRecord {
    OpRecord::new(&op_at(&key(n), seq, None, salt), true)
}

/// Appends every batch to the store under test and to a `MemStore`.
async fn both<S: OpStore>(store: &S, batches: &[Vec<OpRecord>]) -> Result<MemStore, String> {
    let mem = MemStore::new();
    for b in batches {
        store.append(b).await.ctx("append")?;
        mem.append(b).await.ctx("append to MemStore")?;
    }
    Ok(mem)
}

/// Three sleds, evidence ops sharing an `(author, seq)` with primary ops and with
/// each other: `since` for every limit (0 to n + 1) and several vectors (empty,
/// partial, holding an unknown author), `load` for every limit, and `heads`,
/// `count` and `get` give exactly `MemStore`'s answers; a vector at `u64::MAX`
/// holds everything of its author.
pub fn reads_match_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("reads_match_the_reference", rt.block_on(reads(h)))
}

async fn reads<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let batches = vec![
        records(&chain(&key(3), 4, &[])),
        records(&chain(&key(1), 5, &[])),
        vec![evidence(1, 3, 1), evidence(1, 3, 2)],
        records(&chain(&key(2), 3, &[])),
        vec![evidence(2, 3, 3), evidence(3, 1, 4)],
    ];
    let mem = both(&store, &batches).await?;
    let all: Vec<OpRecord> = batches.concat();
    let n = all.len();
    let author = |k: u8| AuthorId::from(&key(k).verifying_key());

    let mut vectors = vec![VersionVector::new()];
    let mut v = VersionVector::new();
    v.set(author(3), 2);
    vectors.push(v.clone());
    v.set(author(1), 5);
    vectors.push(v.clone());
    v.set(AuthorId([0xee; 32]), 3);
    vectors.push(v);
    for vv in &vectors {
        for limit in 0..=n + 1 {
            let got = store.since(vv, limit).await.ctx("since")?;
            let want = mem.since(vv, limit).await.ctx("MemStore since")?;
            ensure_eq!(got, want, "since({vv:?}, {limit})");
        }
    }
    for limit in 1..=n + 1 {
        let mut after = Position::START;
        let mut got = Vec::new();
        loop {
            let page = store.load(after, limit).await.ctx("load")?;
            let want = mem.load(after, limit).await.ctx("MemStore load")?;
            let strip =
                |p: &[(Position, OpRecord)]| p.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>();
            ensure_eq!(
                strip(&page),
                strip(&want),
                "load page after {after} at limit {limit}"
            );
            let Some((last, _)) = page.last() else { break };
            after = *last;
            got.extend(page.into_iter().map(|(_, r)| r));
        }
        ensure_eq!(
            got,
            all,
            "load pages at limit {limit}: every op once, in append order"
        );
    }
    ensure!(
        store
            .load(Position(u64::MAX), 5)
            .await
            .ctx("load")?
            .is_empty(),
        "nothing after the last position"
    );
    // (Not compared with MemStore, whose `vv + 1` overflows there.)
    let mut beyond = VersionVector::new();
    beyond.set(author(1), u64::MAX);
    let got = store.since(&beyond, n).await.ctx("since")?;
    ensure_eq!(
        got.len(),
        all.iter().filter(|r| r.author != author(1)).count(),
        "ops of the other authors"
    );
    ensure!(
        got.iter().all(|r| r.author != author(1)),
        "a vector at u64::MAX holds everything of its author"
    );
    ensure_eq!(
        store.heads().await.ctx("heads")?,
        mem.heads().await.ctx("MemStore heads")?,
        "heads"
    );
    ensure_eq!(store.count().await.ctx("count")?, n as u64, "count");
    for r in &all {
        let got = store.get(&r.id).await.ctx("get")?;
        ensure_eq!(got.as_ref(), Some(r), "get({})", r.id);
    }
    Ok(())
}

/// Evidence ops of several sleds, stored among primary ops (before and after the
/// primary of their seq, at seqs without one, and twice), come back from
/// `evidence()` ordered by `(author, seq, id)`, each once, as from `MemStore`; an
/// empty store has none.
pub fn evidence_matches_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once(
        "evidence_matches_the_reference",
        rt.block_on(evidence_case(h)),
    )
}

async fn evidence_case<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    ensure!(
        store.evidence().await.ctx("evidence")?.is_empty(),
        "a fresh store has no evidence"
    );
    let primaries = [
        records(&chain(&key(1), 3, &[])),
        records(&chain(&key(2), 2, &[])),
    ];
    let batches = vec![
        // Evidence before any primary of its seq, and at a seq never primary.
        vec![evidence(2, 1, 1), evidence(2, 7, 2)],
        primaries[1].clone(),
        primaries[0].clone(),
        vec![evidence(1, 1, 3), evidence(1, 1, 4)],
        vec![evidence(1, 2, 5), evidence(2, 1, 6)],
        // Stored twice: still once.
        vec![evidence(2, 7, 2)],
    ];
    let mem = both(&store, &batches).await?;
    let got = store.evidence().await.ctx("evidence")?;
    ensure_eq!(got.len(), 6, "evidence ops");
    ensure_eq!(
        got,
        mem.evidence().await.ctx("MemStore evidence")?,
        "as MemStore's"
    );
    ensure!(
        got.windows(2).all(|w| w[0] < w[1]),
        "ordered by (author, seq, id): {got:?}"
    );
    ensure!(
        !got.iter()
            .any(|k| primaries.iter().flatten().any(|p| p.id == k.id)),
        "no primary op among the evidence"
    );
    Ok(())
}
