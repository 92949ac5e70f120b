//! The writer thread's group commit: calls queued behind SQLite's write lock share
//! transactions, each call's ops stay together, and a conflicting call fails alone
//! inside a shared group. (What every store must do with concurrent calls is the
//! conformance scenarios `concurrent_store_appenders` and
//! `group_conflict_fails_alone`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_log_conformance::scenarios::conflicting_group;
use event_log_core::{OpStore, Position};

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

/// Calls queued behind the write lock, one of them conflicting with another, share a
/// group: the conflicting call fails alone (its savepoint rolled back, leaving no
/// hole in the positions) and the others commit together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflict_in_a_group_fails_alone() {
    let (_dir, path, store) = fresh().await;
    let store = Arc::new(store);
    let lock = raw(&path);
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let calls = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { conflicting_group(&*store).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.execute_batch("COMMIT").unwrap();
    calls.await.unwrap().unwrap();
    let stats = store.stats();
    // The first call is taken alone and waits for the lock; the rest queue behind it.
    assert!(stats.groups <= 2, "the bad call shared a group: {stats:?}");
    assert_eq!(stats.conflicts, 1);
    let loaded = all(&*store).await;
    assert_eq!(loaded.last().unwrap().0, Position(loaded.len() as u64));
}
