//! `since` pages exactly like the reference `MemStore`, and paging visits every op once.

mod common;

use common::{fresh, open, rec, rec_deps};
use event_log_core::{MemStore, OpRecord, OpStore, VersionVector};

/// Three authors, with evidence ops sharing an (author, seq) with primary ops.
fn ops() -> Vec<OpRecord> {
    let mut out = Vec::new();
    for n in [3u8, 1, 2] {
        let mut prev = Vec::new();
        for seq in 1..=4 {
            let r = rec_deps(n, seq, prev, &format!("{n}:{seq}"), false);
            prev = vec![r.id];
            out.push(r);
        }
    }
    out.push(rec(1, 2, "fork of 1:2", true));
    out.push(rec(1, 2, "another fork of 1:2", true));
    out.push(rec(2, 4, "fork of 2:4", true));
    out
}

/// Pages of `since` from an empty vector, raising it after each page.
async fn pages(store: &impl OpStore, limit: usize) -> Vec<Vec<OpRecord>> {
    let mut vv = VersionVector::new();
    let mut out = Vec::new();
    loop {
        let page = store.since(&vv, limit).await.unwrap();
        if page.is_empty() {
            return out;
        }
        for r in &page {
            vv.raise(r.author, r.seq);
        }
        out.push(page);
        assert!(out.len() <= 100, "paging does not end");
    }
}

/// For every limit 1..=n, every page equals MemStore's, no (author, seq) is split, and every op is visited once.
#[tokio::test]
async fn since_pagination_visits_every_op_exactly_once() {
    let ops = ops();
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let reference = MemStore::new();
    store.append(&ops).await.unwrap();
    reference.append(&ops).await.unwrap();

    for limit in 1..=ops.len() {
        let got = pages(&store, limit).await;
        assert_eq!(got, pages(&reference, limit).await, "limit {limit}");
        let mut seen: Vec<_> = got.iter().flatten().map(|r| r.id).collect();
        assert_eq!(seen.len(), ops.len(), "limit {limit}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), ops.len(), "limit {limit}: an op came twice");
        for page in &got {
            let last = page.last().unwrap();
            let overflow = page.len().saturating_sub(limit);
            let tail = &page[page.len() - overflow..];
            assert!(
                tail.iter()
                    .all(|r| (r.author, r.seq) == (last.author, last.seq)),
                "limit {limit}: went past the limit by more than one (author, seq)"
            );
        }
        let flat: Vec<_> = got
            .iter()
            .flatten()
            .map(|r| (r.author, r.seq, r.id))
            .collect();
        let mut sorted = flat.clone();
        sorted.sort();
        assert_eq!(
            flat, sorted,
            "limit {limit}: not ordered by (author, seq, id)"
        );
    }

    // From a partial vector, and past every author's head.
    let mut vv = VersionVector::new();
    vv.set(ops[4].author, 2);
    vv.set(ops[0].author, 1_000);
    for limit in [1, 3, 100] {
        assert_eq!(
            store.since(&vv, limit).await.unwrap(),
            reference.since(&vv, limit).await.unwrap()
        );
    }
    // A vector at u64::MAX is simply past the head (MemStore's `seq + 1` would overflow).
    vv.set(ops[0].author, u64::MAX);
    let page = store.since(&vv, 100).await.unwrap();
    let mut want: Vec<_> = ops
        .iter()
        .filter(|r| r.author != ops[0].author && r.seq > vv.get(&r.author))
        .map(|r| (r.author, r.seq, r.id))
        .collect();
    want.sort();
    let got: Vec<_> = page.iter().map(|r| (r.author, r.seq, r.id)).collect();
    assert_eq!(got, want);
    assert_eq!(
        store.heads().await.unwrap(),
        reference.heads().await.unwrap()
    );
}
