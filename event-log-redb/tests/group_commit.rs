//! Group commit: concurrent appenders share commits; a conflict fails only its own request.

mod common;

use std::sync::Arc;

use common::{all, fresh, open, rec};
use event_log_core::{OpStore, Position, StoreError};

/// 32 concurrent appenders on a multi-threaded runtime all land, at contiguous positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_appenders_all_land() {
    let (_dir, path) = fresh();
    let store = Arc::new(open(&path).await);
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=4 {
                store
                    .append(&[rec(n, seq, &format!("{n}/{seq}"), false)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let loaded = all(&*store).await;
    assert_eq!(loaded.len(), 128);
    for (i, (pos, _)) in loaded.iter().enumerate() {
        assert_eq!(*pos, Position(i as u64 + 1));
    }
    let stats = store.stats();
    assert_eq!(stats.appends, 128);
    assert!(stats.commits <= 128, "{stats:?}");
    // Per author, seqs are in order (each appender awaited its previous append).
    for n in 0..32u8 {
        let author = rec(n, 1, "", false).author;
        let seqs: Vec<u64> = loaded
            .iter()
            .filter(|(_, r)| r.author == author)
            .map(|(_, r)| r.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
}

/// Requests queued together share one commit; one that conflicts with an earlier request
/// of its group fails alone, writing nothing, while the rest of the group commits.
#[tokio::test]
async fn a_conflict_fails_only_its_own_request_in_a_group() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let held = rec(200, 1, "held", false);
    let rival = rec(200, 1, "rival", false);
    let rival_mate = rec(201, 1, "rival's innocent batch mate", false);

    // join_all polls every future once in order, so all 32 requests are queued
    // back to back, the holder before the rival.
    let mut batches: Vec<Vec<_>> = (0..30u8).map(|n| vec![rec(n, 1, "x", false)]).collect();
    batches.insert(5, vec![held.clone()]);
    batches.insert(20, vec![rival_mate.clone(), rival.clone()]);
    let results = futures::future::join_all(batches.iter().map(|b| store.append(b))).await;

    for (i, r) in results.iter().enumerate() {
        if i == 20 {
            assert!(
                matches!(r, Err(StoreError::Conflict { existing, incoming, .. }) if *existing == held.id && *incoming == rival.id),
                "{r:?}"
            );
        } else {
            assert!(r.is_ok(), "request {i}: {r:?}");
        }
    }
    assert_eq!(store.get(&rival_mate.id).await.unwrap(), None);
    assert_eq!(store.get(&rival.id).await.unwrap(), None);
    let loaded = all(&store).await;
    assert_eq!(loaded.len(), 31);
    for (i, (pos, _)) in loaded.iter().enumerate() {
        assert_eq!(*pos, Position(i as u64 + 1));
    }
    let stats = store.stats();
    assert!(
        stats.largest_group > 1,
        "no request shared a commit: {stats:?}"
    );
    assert!(stats.commits < 32, "{stats:?}");
    assert_eq!((stats.appends, stats.conflicts), (31, 1));
}
