//! `since`, `load` and `heads` give exactly `MemStore`'s answers, and paging visits
//! every op exactly once.

mod common;

use std::collections::HashSet;

use common::*;
use event_log_core::{MemStore, OpRecord, OpStore, Position, VersionVector};
use event_log_sqlite::SqliteStore;

/// Three sleds, evidence ops sharing an (author, seq), appended to both stores.
async fn stores() -> (tempfile::TempDir, SqliteStore, MemStore, Vec<OpRecord>) {
    let (dir, _path, sqlite) = fresh().await;
    let mem = MemStore::new();
    let mut all = Vec::new();
    let batches = vec![
        chain(3, 4),
        chain(1, 5),
        vec![evidence(1, 3, "fork-a"), evidence(1, 3, "fork-b")],
        chain(2, 3),
        vec![evidence(2, 3, "fork"), evidence(3, 1, "fork")],
    ];
    for batch in batches {
        sqlite.append(&batch).await.unwrap();
        mem.append(&batch).await.unwrap();
        all.extend(batch);
    }
    (dir, sqlite, mem, all)
}

/// Paging `since` with every limit from 1 to n visits every op exactly once, each
/// page equal to `MemStore`'s.
#[tokio::test]
async fn since_pagination_visits_every_op_once() {
    let (_dir, sqlite, mem, all) = stores().await;
    let n = all.len();
    for limit in 1..=n + 1 {
        let mut vv = VersionVector::new();
        let mut seen = HashSet::new();
        loop {
            let page = sqlite.since(&vv, limit).await.unwrap();
            assert_eq!(page, mem.since(&vv, limit).await.unwrap(), "limit {limit}");
            if page.is_empty() {
                break;
            }
            for r in &page {
                assert!(seen.insert(r.id), "op {} seen twice at limit {limit}", r.id);
                vv.raise(r.author, r.seq);
            }
        }
        assert_eq!(seen.len(), n, "limit {limit}");
    }
}

/// `since` from a non-empty vector returns only the ops above it, in
/// (author, seq, id) order.
#[tokio::test]
async fn since_starts_above_the_vector() {
    let (_dir, sqlite, mem, all) = stores().await;
    let mut vv = VersionVector::new();
    vv.set(all[0].author, 2);
    vv.set(all[4].author, 5);
    let got = sqlite.since(&vv, 100).await.unwrap();
    assert_eq!(got, mem.since(&vv, 100).await.unwrap());
    assert!(got.iter().all(|r| r.seq > vv.get(&r.author)));
    let keys: Vec<_> = got.iter().map(|r| (r.author, r.seq, r.id)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // A vector at u64::MAX holds everything.
    let mut full = VersionVector::new();
    for r in &all {
        full.set(r.author, u64::MAX);
    }
    assert!(sqlite.since(&full, 10).await.unwrap().is_empty());
}

/// Paging `load` with every limit visits every op once, in append order, like MemStore.
#[tokio::test]
async fn load_pagination_matches_memstore() {
    let (_dir, sqlite, mem, all) = stores().await;
    for limit in 1..=all.len() + 1 {
        let mut after = Position::START;
        let mut got = Vec::new();
        loop {
            let page = sqlite.load(after, limit).await.unwrap();
            assert_eq!(page, mem.load(after, limit).await.unwrap());
            let Some(last) = page.last() else { break };
            assert!(page.len() <= limit);
            after = last.0;
            got.extend(page.into_iter().map(|(_, r)| r));
        }
        assert_eq!(got, all);
    }
    assert!(sqlite.load(Position(u64::MAX), 5).await.unwrap().is_empty());
}

/// `heads`, `count` and `get` agree with MemStore.
#[tokio::test]
async fn heads_count_get_match_memstore() {
    let (_dir, sqlite, mem, all) = stores().await;
    assert_eq!(sqlite.heads().await.unwrap(), mem.heads().await.unwrap());
    assert_eq!(sqlite.count().await.unwrap(), mem.count().await.unwrap());
    for r in &all {
        assert_eq!(sqlite.get(&r.id).await.unwrap().as_ref(), Some(r));
    }
}
