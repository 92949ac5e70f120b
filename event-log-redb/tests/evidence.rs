//! `evidence()` answers from the indexes, with exactly the default
//! implementation's result.

mod common;

use common::*;
use event_log_core::{MemStore, OpStore};

/// Evidence ops of several sleds, stored among primary ops (before and after the
/// primary of their seq, and at seqs without one), come back ordered by
/// (author, seq, id), each once, as from `MemStore`.
#[tokio::test]
async fn evidence_matches_the_default_and_is_ordered() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let mem = MemStore::new();
    let a1 = rec(1, 1, r#"{"a":1}"#, false);
    let a2 = rec_deps(1, 2, vec![a1.id], r#"{"a":2}"#, false);
    let b1 = rec(2, 1, r#"{"b":1}"#, false);
    let batches = vec![
        // Evidence before any primary of its seq, and at a seq never primary.
        vec![
            rec(2, 1, r#"{"b":"fork"}"#, true),
            rec(2, 7, r#"{"b":7}"#, true),
        ],
        vec![a1.clone(), b1.clone()],
        vec![
            rec(1, 1, r#"{"a":"fork-x"}"#, true),
            rec(1, 1, r#"{"a":"fork-y"}"#, true),
        ],
        vec![a2.clone(), rec(1, 3, r#"{"a":"lone"}"#, true)],
        // Stored twice: still once.
        vec![rec(2, 7, r#"{"b":7}"#, true)],
    ];
    for b in &batches {
        store.append(b).await.unwrap();
        mem.append(b).await.unwrap();
    }
    let got = store.evidence().await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got, mem.evidence().await.unwrap());
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert!(!got.iter().any(|k| [a1.id, a2.id, b1.id].contains(&k.id)));
    store.close().await.unwrap();
    let ro = event_log_redb::RedbStore::open_read_only(&path)
        .await
        .unwrap();
    assert_eq!(ro.evidence().await.unwrap(), got);
    // An empty store has none.
    let (_d2, p2) = fresh();
    assert!(open(&p2).await.evidence().await.unwrap().is_empty());
}
