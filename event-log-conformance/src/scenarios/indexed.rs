//! The indexed reads a log is served from: by author and seq, the causal timeline,
//! by story, by idempotency key. Each answers exactly as the reference store,
//! `MemStore`, for every limit, and pages resume without a hole or a repeat.

use crate::read::ReadAll;
use bft_json_crdt::Op;
use event_log_core::{
    AuthorId, Causal, DamageKind, MemStore, OpRecord, OpStore, SignedOp, SigningKey, Transition,
};
use tokio::runtime::Runtime;

use super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, op_at, records, transition};
use crate::harness::{StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// An op by `key` at `seq` after `prev`, carrying a transition of `story` with an
/// optional idempotency key.
fn story_op(
    key: &SigningKey,
    seq: u64,
    prev: Option<&SignedOp>,
    story: &str,
    idem: Option<&str>,
    salt: u64,
) -> SignedOp {
    let mut t: Transition = transition(salt);
    t.story_id = story.to_owned();
    t.idempotency_key = idem.map(str::to_owned);
    Op {
        author: Default::default(),
        seq,
        lamport: prev.map_or(0, |p| p.lamport()) + 1,
        deps: prev.map(|p| vec![p.id()]).unwrap_or_default(),
        payload: event_log_core::Entry::Transition(t).to_payload(),
    }
    .sign(key)
}

/// A chain of ops by `key` with the given stories and keys, one op per pair.
fn story_chain(key: &SigningKey, items: &[(&str, Option<&str>)], salt: u64) -> Vec<SignedOp> {
    let mut out: Vec<SignedOp> = Vec::new();
    for (i, (story, idem)) in items.iter().enumerate() {
        let op = story_op(key, i as u64 + 1, out.last(), story, *idem, salt + i as u64);
        out.push(op);
    }
    out
}

/// The store under test and a `MemStore`, both holding the same ops: three sleds
/// whose chains interleave in the causal order, stories that are prefixes of one
/// another, one idempotency key used by two sleds and twice by one, gap sentinels
/// (no story), and evidence ops sharing an `(author, seq)` with primary ops.
async fn fixture<S: OpStore>(store: &S) -> Result<(MemStore, Vec<OpRecord>), String> {
    let a = story_chain(
        &key(1),
        &[
            ("s-1", Some("k")),
            ("s-10", None),
            ("s-1", None),
            ("s-2", Some("k")),
            ("s-1", Some("k-longer")),
        ],
        0,
    );
    let b = story_chain(
        &key(2),
        &[("s-10", Some("k")), ("s-1", None), ("s-2", None)],
        100,
    );
    let mut batches = vec![
        records(&a[..2]),
        records(&b),
        records(&a[2..]),
        // Mixed chains with sentinels: stories story-0..4, no story every 4th.
        records(&chain(&key(3), 9, &[&a[4], &b[2]])),
    ];
    // Evidence: a second op at sled 1's seq 2 (same story as the primary) and at
    // seq 4 with the key the primary holds.
    let fork2 = story_op(&key(1), 2, Some(&a[0]), "s-10", None, 900);
    let fork4 = story_op(&key(1), 4, Some(&a[2]), "s-3", Some("k"), 901);
    batches.push(vec![
        OpRecord::new(&fork2, true),
        OpRecord::new(&fork4, true),
        OpRecord::new(&op_at(&key(2), 1, None, 902), true),
    ]);
    let mem = MemStore::new();
    for b in &batches {
        store.append(b).await.ctx("append")?;
        mem.append(b).await.ctx("append to MemStore")?;
    }
    Ok((mem, batches.concat()))
}

fn author(n: u8) -> AuthorId {
    AuthorId::from(&key(n).verifying_key())
}

/// `author_ops` for every author (and one with no op), every `after` from 0 past
/// the highest seq, every limit: exactly `MemStore`'s answer; paging by the highest
/// seq returned visits each op of the author once, by `(seq, id)`, never splitting
/// a seq; `after == u64::MAX` is empty.
pub fn author_ops_match_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("author_ops_match_the_reference", rt.block_on(by_author(h)))
}

async fn by_author<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let (mem, all) = fixture(&store).await?;
    for n in [1u8, 2, 3, 9] {
        let a = author(n);
        let mut want_all: Vec<&OpRecord> = all.iter().filter(|r| r.author == a).collect();
        want_all.sort_by_key(|r| (r.seq, r.id));
        let top = want_all.last().map_or(0, |r| r.seq);
        for limit in 1..=want_all.len() + 1 {
            for after in 0..=top + 1 {
                let got = store.author_ops(&a, after, limit).await.ctx("author_ops")?;
                let want = mem.author_ops(&a, after, limit).await.ctx("MemStore")?;
                ensure_eq!(got, want, "author_ops(sled {n}, {after}, {limit})");
            }
            let mut after = 0;
            let mut paged: Vec<OpRecord> = Vec::new();
            loop {
                let page = store.author_ops(&a, after, limit).await.ctx("author_ops")?;
                ensure!(
                    page.iter().all(|r| r.author == a),
                    "author_ops returns only the author's ops"
                );
                let Some(last) = page.last() else { break };
                ensure!(last.seq > after, "a page moves forward");
                after = last.seq;
                paged.extend(page);
            }
            let want: Vec<OpRecord> = want_all.iter().map(|r| (*r).clone()).collect();
            ensure_eq!(paged, want, "every op of sled {n} once at limit {limit}");
        }
        let none = store.author_ops(&a, u64::MAX, 10).await.ctx("author_ops")?;
        ensure!(none.is_empty(), "nothing after u64::MAX");
    }
    Ok(())
}

/// `timeline` pages for every limit, from the start and resumed at every op's
/// point and at points held by no op: strictly ascending by `(lamport, id)`, each
/// op once, exactly `MemStore`'s pages.
pub fn timeline_matches_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("timeline_matches_the_reference", rt.block_on(timeline(h)))
}

async fn timeline<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let (mem, all) = fixture(&store).await?;
    let mut sorted = all.clone();
    sorted.sort_by_key(OpRecord::causal);
    for limit in 1..=all.len() + 1 {
        let mut after = Causal::START;
        let mut paged: Vec<OpRecord> = Vec::new();
        loop {
            let page = store.timeline(&after, limit).await.ctx("timeline")?;
            let want = mem.timeline(&after, limit).await.ctx("MemStore")?;
            ensure_eq!(page, want, "timeline page after {after:?} at limit {limit}");
            let Some(last) = page.last() else { break };
            ensure!(last.causal() > after, "a page moves forward");
            after = last.causal();
            paged.extend(page);
        }
        ensure_eq!(
            paged,
            sorted,
            "every op once in causal order at limit {limit}"
        );
    }
    let mut points: Vec<Causal> = all.iter().map(OpRecord::causal).collect();
    // Points between ops: the same lamport with the lowest and highest ids.
    for r in &all {
        points.push(Causal {
            lamport: r.lamport,
            id: event_log_core::OpId([0; 32]),
        });
        points.push(Causal {
            lamport: r.lamport,
            id: event_log_core::OpId([0xff; 32]),
        });
    }
    points.push(Causal {
        lamport: u64::MAX,
        id: event_log_core::OpId([0xff; 32]),
    });
    for p in &points {
        let got = store.timeline(p, 3).await.ctx("timeline")?;
        let want: Vec<OpRecord> = sorted
            .iter()
            .filter(|r| r.causal() > *p)
            .take(3)
            .cloned()
            .collect();
        ensure_eq!(got, want, "timeline after {p:?}");
    }
    Ok(())
}

/// `story_ops` for every story (and prefixes of stories, and a story no op has),
/// every limit, resumed from every op's point: exactly the story's ops in causal
/// order, as `MemStore`'s; sentinels (no story) are in none.
pub fn story_ops_match_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("story_ops_match_the_reference", rt.block_on(stories(h)))
}

async fn stories<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let (mem, all) = fixture(&store).await?;
    let names = [
        "s-1", "s-10", "s-2", "s-3", "s-", "s", "story-0", "story-3", "none", "",
    ];
    for story in names {
        let mut want_all: Vec<OpRecord> = all
            .iter()
            .filter(|r| r.story.as_deref() == Some(story))
            .cloned()
            .collect();
        want_all.sort_by_key(OpRecord::causal);
        for limit in 1..=want_all.len() + 1 {
            let mut after = Causal::START;
            let mut paged = Vec::new();
            loop {
                let page = store
                    .story_ops(story, &after, limit)
                    .await
                    .ctx("story_ops")?;
                let want = mem.story_ops(story, &after, limit).await.ctx("MemStore")?;
                ensure_eq!(page, want, "story_ops({story:?}, {after:?}, {limit})");
                ensure!(
                    page.iter().all(|r| r.story.as_deref() == Some(story)),
                    "story_ops({story:?}) returns only that story's ops: {page:?}"
                );
                let Some(last) = page.last() else { break };
                ensure!(last.causal() > after, "a page moves forward");
                after = last.causal();
                paged.extend(page);
            }
            ensure_eq!(
                paged,
                want_all,
                "every op of {story:?} once at limit {limit}"
            );
        }
        for r in &all {
            let got = store
                .story_ops(story, &r.causal(), 2)
                .await
                .ctx("story_ops")?;
            let want: Vec<OpRecord> = want_all
                .iter()
                .filter(|w| w.causal() > r.causal())
                .take(2)
                .cloned()
                .collect();
            ensure_eq!(got, want, "story_ops({story:?}) after {:?}", r.causal());
        }
    }
    ensure!(
        all.iter().any(|r| r.story.is_none()),
        "the fixture holds sentinels"
    );
    Ok(())
}

/// `keyed` for every (author, key) pair the fixture uses, keys that are prefixes
/// of others, and keys no op has: exactly the author's ops holding the key, by
/// `(seq, id)`, evidence included, cut at `limit`, as `MemStore`'s.
pub fn keyed_matches_the_reference<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("keyed_matches_the_reference", rt.block_on(keys(h)))
}

async fn keys<H: StoreHarness>(h: &H) -> Check {
    let (_guard, _loc, store) = fresh_store(h).await?;
    let (mem, all) = fixture(&store).await?;
    for n in [1u8, 2, 3, 9] {
        let a = author(n);
        for k in ["k", "k-longer", "k-", "", "absent"] {
            let mut want_all: Vec<OpRecord> = all
                .iter()
                .filter(|r| r.author == a && r.key.as_deref() == Some(k))
                .cloned()
                .collect();
            want_all.sort_by_key(|r| (r.seq, r.id));
            for limit in 1..=want_all.len() + 1 {
                let got = store.keyed(&a, k, limit).await.ctx("keyed")?;
                let want = mem.keyed(&a, k, limit).await.ctx("MemStore")?;
                ensure_eq!(got, want, "keyed(sled {n}, {k:?}, {limit})");
                let cut: Vec<OpRecord> = want_all.iter().take(limit).cloned().collect();
                ensure_eq!(got, cut, "keyed(sled {n}, {k:?}, {limit}): the first ops");
            }
        }
    }
    let held = store.keyed(&author(1), "k", 10).await.ctx("keyed")?;
    ensure_eq!(
        held.len(),
        3,
        "sled 1 holds key k at seqs 1 and 4 and in evidence"
    );
    Ok(())
}

/// Rows whose index columns (lamport, story, idempotency key) lie about their
/// signed bytes are caught when a log reads them: each is reported as damaged,
/// naming the column, and kept out of every read; the intact rows stay visible.
pub fn index_columns_checked<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("index_columns_checked", rt.block_on(lying_columns(h)))
}

async fn lying_columns<H: StoreHarness>(h: &H) -> Check {
    let (_guard, loc, store) = fresh_store(h).await?;
    let k = key(4);
    let ops = story_chain(
        &k,
        &[
            ("s-a", None),
            ("s-b", Some("k1")),
            ("s-c", None),
            ("s-d", None),
        ],
        0,
    );
    let good = records(&ops);
    let mut lamport = good[1].clone();
    lamport.lamport += 7;
    let mut story = good[2].clone();
    story.story = Some("s-z".into());
    let mut idem = good[3].clone();
    idem.key = Some("k2".into());
    // Three other sleds, one lying column each, so each row is damaged alone.
    let others: Vec<OpRecord> = [(5u8, "lamport"), (6, "story"), (7, "key")]
        .iter()
        .map(|(n, column)| {
            let op = story_op(&key(*n), 1, None, "s-x", Some("kx"), 50);
            let mut r = OpRecord::new(&op, false);
            match *column {
                "lamport" => r.lamport = 3,
                "story" => r.story = None,
                _ => r.key = Some("ky".into()),
            }
            r
        })
        .collect();
    store
        .append(&[good[0].clone(), lamport, story, idem])
        .await
        .ctx("append")?;
    store.append(&others).await.ctx("append")?;
    drop(store);
    let log = crate::harness::open_log(h, &loc, key(8)).await?;
    let damage = log.damage();
    let mut columns: Vec<&'static str> = damage
        .iter()
        .filter_map(|d| match &d.kind {
            DamageKind::RowMismatch { column, .. } => Some(*column),
            _ => None,
        })
        .collect();
    columns.sort_unstable();
    ensure_eq!(
        columns,
        vec!["key", "key", "lamport", "lamport", "story", "story"],
        "every lying column named: {damage:?}"
    );
    ensure_eq!(log.visible_len(), 1, "only the intact row is visible");
    ensure!(
        log.all_events()
            .await
            .ctx("read")?
            .iter()
            .all(|e| e.op_id == good[0].id),
        "the visible event is the intact row"
    );
    Ok(())
}
