//! Appending: round trip, idempotence, conflicts, evidence, group commit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_log_core::{OpStore, Position, StoreError};

/// What is appended comes back byte for byte, at positions 1, 2, 3, ...
#[tokio::test]
async fn round_trip_is_byte_identical() {
    let (_dir, _path, store) = fresh().await;
    let ops = chain(1, 5);
    store.append(&ops).await.unwrap();
    let loaded = all(&store).await;
    assert_eq!(loaded.len(), 5);
    for (k, (pos, r)) in loaded.iter().enumerate() {
        assert_eq!(*pos, Position(k as u64 + 1));
        assert_eq!(r, &ops[k]);
    }
    assert_eq!(store.get(&ops[2].id).await.unwrap().as_ref(), Some(&ops[2]));
    assert_eq!(store.get(&rec(9, 1, "x").id).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 5);
    assert_eq!(store.heads().await.unwrap().get(&ops[0].author), 5);
    store.close().await.unwrap();
}

/// Re-appending stored ops (alone or mixed with new ones) is skipped silently.
#[tokio::test]
async fn reappend_is_idempotent() {
    let (_dir, _path, store) = fresh().await;
    let ops = chain(1, 4);
    store.append(&ops[..2]).await.unwrap();
    store.append(&ops[..2]).await.unwrap();
    // Mixed, and with a duplicate inside one call.
    store
        .append(&[
            ops[1].clone(),
            ops[2].clone(),
            ops[2].clone(),
            ops[3].clone(),
        ])
        .await
        .unwrap();
    let loaded = all(&store).await;
    let ids: Vec<_> = loaded.iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids, ops.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(loaded.last().unwrap().0, Position(4));
    // An empty append is fine too.
    store.append(&[]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 4);
}

/// A call with one conflicting op fails with `Conflict` naming both ids, and writes
/// none of its ops.
#[tokio::test]
async fn conflict_fails_whole_batch_and_writes_nothing() {
    let (_dir, _path, store) = fresh().await;
    let first = rec(1, 1, "a");
    store.append(std::slice::from_ref(&first)).await.unwrap();
    let rival = rec(1, 1, "b");
    let innocent = rec(2, 1, "a");
    let err = store
        .append(&[innocent.clone(), rival.clone()])
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            author,
            seq,
            existing,
            incoming,
        } => {
            assert_eq!(author, first.author);
            assert_eq!(seq, 1);
            assert_eq!(existing, first.id);
            assert_eq!(incoming, rival.id);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.get(&innocent.id).await.unwrap(), None);
    assert_eq!(store.stats().conflicts, 1);
}

/// Two primary ops with one (author, seq) in one call conflict with each other.
#[tokio::test]
async fn conflict_inside_one_call() {
    let (_dir, _path, store) = fresh().await;
    let (a, b) = (rec(1, 1, "a"), rec(1, 1, "b"));
    let err = store.append(&[a.clone(), b.clone()]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { existing, incoming, .. } if existing == a.id && incoming == b.id),
        "{err:?}"
    );
    assert_eq!(store.count().await.unwrap(), 0);
}

/// Evidence ops may share an (author, seq) with the primary op and with each other.
#[tokio::test]
async fn evidence_may_share_author_seq() {
    let (_dir, _path, store) = fresh().await;
    let primary = rec(1, 1, "a");
    store.append(std::slice::from_ref(&primary)).await.unwrap();
    let (e1, e2) = (evidence(1, 1, "b"), evidence(1, 1, "c"));
    store.append(&[e1.clone(), e2.clone()]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    let got = store.get(&e1.id).await.unwrap().unwrap();
    assert!(got.evidence);
    // A primary op on that seq still conflicts with the primary one.
    let err = store.append(&[rec(1, 1, "d")]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { existing, .. } if existing == primary.id));
}

/// 32 concurrent appenders all land, in contiguous positions, sharing transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_all_land_in_contiguous_positions() {
    let (_dir, path, store) = fresh().await;
    let store = Arc::new(store);
    // Hold SQLite's write lock so the appends queue up and must share a group.
    let lock = raw(&path);
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let tasks: Vec<_> = (0..32u8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(&chain(n + 1, 3)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.execute_batch("COMMIT").unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let loaded = all(&*store).await;
    assert_eq!(loaded.len(), 96);
    for (k, (pos, _)) in loaded.iter().enumerate() {
        assert_eq!(*pos, Position(k as u64 + 1));
    }
    // Each call's ops are contiguous and in slice order.
    for call in loaded.chunks(3) {
        let seqs: Vec<u64> = call.iter().map(|(_, r)| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(call.iter().all(|(_, r)| r.author == call[0].1.author));
    }
    let stats = store.stats();
    assert_eq!(stats.appends, 32);
    assert_eq!(stats.ops_written, 96);
    assert!(stats.groups <= 2, "expected group commit, got {stats:?}");
}

/// In a group, a conflicting call fails alone and writes nothing; the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflict_in_a_group_fails_alone() {
    let (_dir, path, store) = fresh().await;
    let store = Arc::new(store);
    let taken = rec(1, 1, "a");
    store.append(std::slice::from_ref(&taken)).await.unwrap();
    let lock = raw(&path);
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The first call is taken alone and waits for the lock; the rest queue behind it.
    let spawn = |ops: Vec<_>| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.append(&ops).await })
    };
    let blocker = spawn(vec![rec(2, 1, "a")]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bad_new = rec(3, 1, "a");
    let rival = rec(1, 1, "b");
    let bad = spawn(vec![bad_new.clone(), rival.clone()]);
    let good: Vec<_> = (4..12u8).map(|n| spawn(chain(n, 2))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.execute_batch("COMMIT").unwrap();
    blocker.await.unwrap().unwrap();
    let err = bad.await.unwrap().unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { existing, incoming, seq: 1, .. } if existing == taken.id && incoming == rival.id),
        "{err:?}"
    );
    for g in good {
        g.await.unwrap().unwrap();
    }
    assert_eq!(store.get(&bad_new.id).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 1 + 1 + 8 * 2);
    let stats = store.stats();
    assert_eq!(stats.groups, 3, "the bad call shared a group: {stats:?}");
    assert_eq!(stats.conflicts, 1);
    // Positions stay contiguous: the rolled-back savepoint left no hole.
    let loaded = all(&*store).await;
    assert_eq!(loaded.last().unwrap().0, Position(loaded.len() as u64));
}
