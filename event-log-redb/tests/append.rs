//! Appending: byte-identical round trips, idempotency, and the conflict rule.

mod common;

use common::{all, fresh, open, rec};
use event_log_core::{OpStore, Position, StoreError};

/// Every field of every op, bytes included, comes back exactly as appended, by `load` and by `get`.
#[tokio::test]
async fn round_trip_is_byte_identical() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let ops = vec![
        rec(1, 1, r#"{"story":"a","to":"done"}"#, false),
        rec(1, 2, "", false),
        rec(2, 1, "ünïcödé ✓ \u{1F600}", false),
        rec(1, 2, r#"{"fork":true}"#, true),
    ];
    store.append(&ops).await.unwrap();
    let loaded = all(&store).await;
    assert_eq!(loaded.len(), ops.len());
    for (i, ((pos, got), want)) in loaded.iter().zip(&ops).enumerate() {
        assert_eq!(*pos, Position(i as u64 + 1));
        assert_eq!(got, want);
        assert_eq!(got.bytes, want.bytes);
        assert_eq!(store.get(&want.id).await.unwrap().as_ref(), Some(want));
    }
    assert_eq!(store.count().await.unwrap(), 4);
    assert_eq!(
        store.get(&bft_json_crdt::OpId([3; 32])).await.unwrap(),
        None
    );
    let heads = store.heads().await.unwrap();
    assert_eq!(heads.get(&ops[0].author), 2);
    assert_eq!(heads.get(&ops[2].author), 1);
    assert_eq!(heads.len(), 2);
}

/// Re-appending stored ops, alone, mixed with new ones or twice in one call, stores each id once.
#[tokio::test]
async fn append_is_idempotent_by_id() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let (a, b, c, d) = (
        rec(1, 1, "a", false),
        rec(1, 2, "b", false),
        rec(1, 3, "c", false),
        rec(2, 1, "d", false),
    );
    store.append(&[a.clone(), b.clone()]).await.unwrap();
    store.append(std::slice::from_ref(&a)).await.unwrap();
    store
        .append(&[b.clone(), c.clone(), a.clone(), c.clone()])
        .await
        .unwrap();
    store.append(&[d.clone(), d.clone()]).await.unwrap();
    let loaded = all(&store).await;
    let ids: Vec<_> = loaded.iter().map(|(p, r)| (p.0, r.id)).collect();
    assert_eq!(ids, vec![(1, a.id), (2, b.id), (3, c.id), (4, d.id)]);
    assert_eq!(store.stats().ops_written, 4);
}

/// A primary op on a taken (author, seq) fails its whole call with `Conflict` and writes nothing of it.
#[tokio::test]
async fn conflict_fails_the_whole_call_and_writes_nothing() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    let held = rec(1, 1, "first", false);
    store.append(std::slice::from_ref(&held)).await.unwrap();

    let innocent = rec(2, 1, "innocent", false);
    let rival = rec(1, 1, "second", false);
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
            assert_eq!((author, seq), (held.author, 1));
            assert_eq!((existing, incoming), (held.id, rival.id));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.get(&innocent.id).await.unwrap(), None);
    assert_eq!(store.stats().conflicts, 1);

    // Two primary ops of one (author, seq) in one call conflict with each other.
    let (x, y) = (rec(3, 1, "x", false), rec(3, 1, "y", false));
    let err = store.append(&[x.clone(), y.clone()]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { existing, incoming, .. } if existing == x.id && incoming == y.id),
        "{err}"
    );
    assert_eq!(store.count().await.unwrap(), 1);

    // Marked as evidence, the rival is accepted beside the primary op.
    let evidence = event_log_core::OpRecord {
        evidence: true,
        ..rival.clone()
    };
    store.append(&[innocent.clone(), evidence]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    assert!(store.get(&rival.id).await.unwrap().unwrap().evidence);
}

/// An empty append is a no-op.
#[tokio::test]
async fn empty_append_is_ok() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    store.append(&[]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(store.load(Position::START, 10).await.unwrap().is_empty());
    assert!(store.heads().await.unwrap().is_empty());
}

/// The store works outside a tokio runtime too (blocking work then runs inline).
#[test]
fn works_without_a_tokio_runtime() {
    let (_dir, path) = fresh();
    pollster::block_on(async {
        let store = open(&path).await;
        store.append(&[rec(1, 1, "x", false)]).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 1);
        store.close().await.unwrap();
    });
}
