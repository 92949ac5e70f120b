//! The version-4 migration: a file written at schema version 3 (before the index
//! columns lamport, story and key) gets the columns filled from its rows' bytes,
//! and the indexed reads answer over them as over appended rows.

mod common;

use bft_json_crdt::{AuthorId, Op, OpId, SignedOp, SigningKey};
use common::*;
use event_log_conformance::fixture::{entry, transition};
use event_log_core::{Causal, MemStore, Migration, OpRecord, OpStore};
use event_log_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteStore};

/// An op of `key` after `prev` carrying `payload`.
fn op(key: &SigningKey, seq: u64, prev: Option<&SignedOp>, payload: Vec<u8>) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: prev.map_or(0, SignedOp::lamport) + 1,
        deps: prev.map(|p| vec![p.id()]).unwrap_or_default(),
        payload,
    }
    .sign(key)
}

/// Rows of every kind a version-3 file holds: a long chain of transitions (more
/// rows than one backfill batch) with stories and some idempotency keys, gap
/// sentinels, payloads that are no entry, equivocation evidence, and a row whose
/// bytes are no op at all.
fn old_rows() -> Vec<OpRecord> {
    let mut out = Vec::new();
    let k = key(1);
    let mut prev: Option<SignedOp> = None;
    for seq in 1..=1300u64 {
        let payload = if seq % 10 == 0 {
            entry(seq, true).to_payload()
        } else {
            let mut t = transition(seq);
            t.story_id = format!("s-{}", seq % 3);
            t.idempotency_key = (seq % 7 == 0).then(|| format!("k-{}", seq % 2));
            event_log_core::Entry::Transition(t).to_payload()
        };
        let next = op(&k, seq, prev.as_ref(), payload);
        out.push(OpRecord::new(&next, false));
        prev = Some(next);
    }
    // Another sled whose payloads are JSON but no entry, after sled 1's head.
    let mut other = op(&key(2), 1, prev.as_ref(), br#"{"not":"an entry"}"#.to_vec());
    out.push(OpRecord::new(&other, false));
    other = op(&key(2), 2, Some(&other), b"\xff not even UTF-8".to_vec());
    out.push(OpRecord::new(&other, false));
    // Evidence: a second op at sled 1's seq 7, with the primary's key.
    let mut t = transition(7);
    t.story_id = "s-evidence".into();
    t.idempotency_key = Some("k-1".into());
    let fork = op(
        &k,
        7,
        None,
        event_log_core::Entry::Transition(t).to_payload(),
    );
    out.push(OpRecord::new(&fork, true));
    // A row whose bytes are no op: filled with lamport 0, no story, no key.
    out.push(OpRecord {
        id: OpId([0xee; 32]),
        author: AuthorId([0xee; 32]),
        seq: 1,
        payload: "{}".into(),
        bytes: b"no op".to_vec(),
        evidence: false,
        lamport: 0,
        story: None,
        key: None,
    });
    out
}

/// `schema_status` shows step 4 pending on a version-3 file; opening it migrates
/// it in place, filling lamport, story and key of every row from its bytes (lamport
/// 0 and no story or key for a row whose bytes are no op); every read then answers
/// exactly as `MemStore` holding the same records does.
#[tokio::test]
async fn version_3_file_gets_its_index_columns() {
    let (_dir, path) = location();
    let rows = old_rows();
    write_v3(&path, &rows);
    assert!(
        rows.iter().any(|r| r.key.is_some()) && rows.iter().any(|r| r.story.is_none()),
        "the fixture holds keys and ops without a story"
    );

    let status = SqliteStore::schema_status(&path, SqliteConfig::default())
        .await
        .unwrap();
    assert_eq!(status.current, Some(3));
    assert_eq!(status.target, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 4);
    assert_eq!(status.pending.len(), 1, "{status:?}");
    let Migration {
        version,
        description,
    } = &status.pending[0];
    assert_eq!(*version, 4);
    assert!(description.contains("lamport"), "{description}");

    let store = SqliteStore::open_default(&path).await.unwrap();
    let status = SqliteStore::schema_status(&path, SqliteConfig::default())
        .await
        .unwrap();
    assert!(status.is_current(), "{status:?}");
    let loaded: Vec<OpRecord> = all(&store).await.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        loaded, rows,
        "every row with the index columns of its bytes"
    );

    let mem = MemStore::new();
    mem.append(&rows).await.unwrap();
    for limit in [1, 7, 512, 2000] {
        let mut after = Causal::START;
        loop {
            let got = store.timeline(&after, limit).await.unwrap();
            assert_eq!(got, mem.timeline(&after, limit).await.unwrap());
            let Some(last) = got.last() else { break };
            after = last.causal();
        }
    }
    for story in ["s-0", "s-1", "s-2", "s-evidence", "s-"] {
        for at in [Causal::START, rows[40].causal()] {
            assert_eq!(
                store.story_ops(story, &at, 50).await.unwrap(),
                mem.story_ops(story, &at, 50).await.unwrap(),
                "story_ops({story:?})"
            );
        }
    }
    let (a1, a2) = (rows[0].author, rows[1300].author);
    for k in ["k-0", "k-1", "k-"] {
        let got = store.keyed(&a1, k, 1000).await.unwrap();
        assert_eq!(got, mem.keyed(&a1, k, 1000).await.unwrap(), "keyed({k:?})");
        assert!(k == "k-" || !got.is_empty(), "{k:?} is held");
    }
    assert!(!store.keyed(&a1, "k-1", 1000).await.unwrap()[0].evidence);
    for (a, after) in [(a1, 0), (a1, 6), (a1, 1299), (a2, 0)] {
        assert_eq!(
            store.author_ops(&a, after, 3).await.unwrap(),
            mem.author_ops(&a, after, 3).await.unwrap()
        );
    }
    // Appends after the migration carry their columns, and are read by index.
    let next = op(&key(3), 1, None, entry(5000, false).to_payload());
    let rec = OpRecord::new(&next, false);
    store.append(std::slice::from_ref(&rec)).await.unwrap();
    let story = rec.story.clone().unwrap();
    let got = store
        .story_ops(&story, &Causal::START, 10_000)
        .await
        .unwrap();
    assert!(got.contains(&rec), "the new op is in its story");
    store.close().await.unwrap();
}

/// An op with a Lamport timestamp above `i64::MAX` (which no valid op holds: a
/// timestamp is 1 + its deps' highest) is refused with `Invalid`, writing nothing,
/// and reads after such a point are empty.
#[tokio::test]
async fn lamport_above_i64_max_is_invalid() {
    let (_dir, _path, store) = fresh().await;
    let good = rec(1, 1, "a");
    let mut huge = rec(1, 2, "b");
    huge.lamport = u64::MAX;
    let err = store.append(&[good.clone(), huge]).await.unwrap_err();
    assert_eq!(err.kind(), event_log_core::StoreErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("Lamport"), "{err}");
    assert_eq!(
        store.count().await.unwrap(),
        0,
        "nothing of the call written"
    );
    store.append(std::slice::from_ref(&good)).await.unwrap();
    let past = Causal {
        lamport: 1 << 63,
        id: OpId([0; 32]),
    };
    assert!(store.timeline(&past, 5).await.unwrap().is_empty());
    assert!(store.story_ops("s", &past, 5).await.unwrap().is_empty());
    assert_eq!(
        store.timeline(&Causal::START, 5).await.unwrap(),
        vec![good.clone()]
    );
    assert!(
        store
            .author_ops(&good.author, u64::MAX - 1, 5)
            .await
            .unwrap()
            .is_empty()
    );
}
