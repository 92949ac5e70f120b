//! Format version 1 → 2: a file written with the version-1 layout (built here with
//! redb directly, independently of the crate) is reported as pending by
//! `schema_status`, refused by a read-only open, and migrated by a writable open:
//! every record gains its lamport, story and idempotency key from its op bytes, and
//! the new indexes answer as the reference store.

mod common;

use std::path::Path;

use bft_json_crdt::{AuthorId, Op, OpId, SignedOp, SigningKey};
use event_log_conformance::assert::fails_with;
use event_log_conformance::fixture::{entry, key, transition};
use event_log_core::{
    Causal, Entry, MemStore, OpRecord, OpStore, Position, StoreError, StoreErrorKind,
};
use event_log_redb::{FORMAT_VERSION, RedbConfig, RedbStore};
use redb::TableDefinition;

use common::{all, fresh, open, read_record};

// The tables of format version 1.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const OPS: TableDefinition<u64, &[u8]> = TableDefinition::new("ops");
const BY_ID: TableDefinition<[u8; 32], u64> = TableDefinition::new("ops_by_id");
const BY_AUTHOR: TableDefinition<([u8; 32], u64, [u8; 32]), u64> =
    TableDefinition::new("ops_by_author");
const PRIMARY: TableDefinition<([u8; 32], u64), [u8; 32]> = TableDefinition::new("primary");
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// A record as format version 1 laid it out: version 1, flags (bit 0 evidence),
/// id, author, seq, then the payload and the op bytes, each after a u32 BE length.
fn v1_record(r: &OpRecord) -> Vec<u8> {
    let mut out = vec![1, u8::from(r.evidence)];
    out.extend_from_slice(r.id.as_bytes());
    out.extend_from_slice(r.author.as_bytes());
    out.extend_from_slice(&r.seq.to_be_bytes());
    out.extend_from_slice(&(r.payload.len() as u32).to_be_bytes());
    out.extend_from_slice(r.payload.as_bytes());
    out.extend_from_slice(&(r.bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&r.bytes);
    out
}

/// Writes a format-1 store holding `rows` at positions 1, 2, ... (`raw`: a record
/// stored as these bytes instead, indexed as its row).
fn write_v1(path: &Path, rows: &[OpRecord], raw: &[(u64, Vec<u8>)]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        txn.open_table(META)
            .unwrap()
            .insert("format_version", 1)
            .unwrap();
        let mut ops = txn.open_table(OPS).unwrap();
        let mut by_id = txn.open_table(BY_ID).unwrap();
        let mut by_author = txn.open_table(BY_AUTHOR).unwrap();
        let mut primary = txn.open_table(PRIMARY).unwrap();
        txn.open_table(KV)
            .unwrap()
            .insert("checkpoint", &b"kept"[..])
            .unwrap();
        for (i, r) in rows.iter().enumerate() {
            let position = i as u64 + 1;
            let record = raw
                .iter()
                .find(|(p, _)| *p == position)
                .map_or_else(|| v1_record(r), |(_, b)| b.clone());
            ops.insert(position, record.as_slice()).unwrap();
            by_id.insert(r.id.0, position).unwrap();
            by_author
                .insert((r.author.0, r.seq, r.id.0), position)
                .unwrap();
            if !r.evidence {
                primary.insert((r.author.0, r.seq), r.id.0).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

/// An op by `k` at `seq` after `prev` carrying `e`.
fn op(k: &SigningKey, seq: u64, prev: Option<&SignedOp>, e: &Entry) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: prev.map_or(0, |p| p.lamport()) + 1,
        deps: prev.map(|p| vec![p.id()]).unwrap_or_default(),
        payload: e.to_payload(),
    }
    .sign(k)
}

/// A transition of `story`, with idempotency key `idem`.
fn moved(i: u64, story: &str, idem: Option<&str>) -> Entry {
    let mut t = transition(i);
    t.story_id = story.to_owned();
    t.idempotency_key = idem.map(str::to_owned);
    Entry::Transition(t)
}

/// The rows of the old file, as this build's records (the columns as the core
/// reads them): two sleds, stories that are prefixes of one another, a key used
/// twice by one sled and once by the other, a gap sentinel, an evidence op, and a
/// row whose bytes are no op (lamport 0, no story or key after the migration).
fn rows() -> Vec<OpRecord> {
    let (k1, k2) = (key(1), key(2));
    let a1 = op(&k1, 1, None, &moved(1, "s-1", Some("k")));
    let a2 = op(&k1, 2, Some(&a1), &moved(2, "s-10", None));
    let a3 = op(&k1, 3, Some(&a2), &moved(3, "s-1", Some("k")));
    let a4 = op(&k1, 4, Some(&a3), &entry(4, true));
    let b1 = op(&k2, 1, Some(&a2), &moved(5, "s-1", Some("k")));
    let b2 = op(&k2, 2, Some(&b1), &moved(6, "s", None));
    let fork = op(&k1, 2, Some(&a1), &moved(7, "s-2", Some("k")));
    let mut out: Vec<OpRecord> = [&a1, &a2, &b1, &a3, &a4, &b2]
        .into_iter()
        .map(|o| OpRecord::new(o, false))
        .collect();
    out.push(OpRecord::new(&fork, true));
    out.push(OpRecord {
        id: OpId([0xee; 32]),
        author: AuthorId([0xdd; 32]),
        seq: 1,
        payload: "{}".into(),
        bytes: b"not an op".to_vec(),
        evidence: false,
        lamport: 0,
        story: None,
        key: None,
    });
    out
}

/// Every indexed read of `store` answers as `MemStore` holding `rows`, of which
/// `in_s1` are of story `s-1`.
async fn reads_match(store: &RedbStore, rows: &[OpRecord], in_s1: usize) {
    let mem = MemStore::new();
    mem.append(rows).await.unwrap();
    let limits = [1, 2, 3, 100];
    for limit in limits {
        assert_eq!(
            store.timeline(&Causal::START, limit).await.unwrap(),
            mem.timeline(&Causal::START, limit).await.unwrap(),
            "timeline at limit {limit}"
        );
        for r in rows {
            assert_eq!(
                store.timeline(&r.causal(), limit).await.unwrap(),
                mem.timeline(&r.causal(), limit).await.unwrap()
            );
        }
        for story in ["s-1", "s-10", "s-2", "s", "s-", "absent"] {
            assert_eq!(
                store.story_ops(story, &Causal::START, limit).await.unwrap(),
                mem.story_ops(story, &Causal::START, limit).await.unwrap(),
                "story {story:?} at limit {limit}"
            );
        }
        for author in rows.iter().map(|r| r.author) {
            for after in 0..4 {
                assert_eq!(
                    store.author_ops(&author, after, limit).await.unwrap(),
                    mem.author_ops(&author, after, limit).await.unwrap()
                );
            }
            for k in ["k", "", "absent"] {
                assert_eq!(
                    store.keyed(&author, k, limit).await.unwrap(),
                    mem.keyed(&author, k, limit).await.unwrap(),
                    "keyed {k:?} at limit {limit}"
                );
            }
        }
    }
    // After the last point of all: nothing, and no panic on an empty range.
    let end = Causal {
        lamport: u64::MAX,
        id: OpId([0xff; 32]),
    };
    assert!(store.timeline(&end, 5).await.unwrap().is_empty());
    assert!(store.story_ops("s-1", &end, 5).await.unwrap().is_empty());
    assert!(
        store
            .author_ops(&rows[0].author, u64::MAX, 5)
            .await
            .unwrap()
            .is_empty()
    );
    let s1 = store.story_ops("s-1", &Causal::START, 100).await.unwrap();
    assert_eq!(s1.len(), in_s1, "the ops of s-1, none of s-10: {s1:?}");
    let k = store.keyed(&rows[0].author, "k", 100).await.unwrap();
    assert_eq!(k.len(), 3, "sled 1 holds k at seqs 1, 3 and in evidence");
}

/// The old file is pending in `schema_status`, refused read-only (unchanged), and
/// migrated by a writable open: the records, the old reads and the new ones.
#[tokio::test]
async fn a_version_1_file_is_migrated_by_a_writable_open() {
    let (_dir, path) = fresh();
    let rows = rows();
    write_v1(&path, &rows, &[]);
    let bytes = std::fs::read(&path).unwrap();

    let status = RedbStore::schema_status(&path, RedbConfig::default())
        .await
        .unwrap();
    assert_eq!(status.current, Some(1));
    assert_eq!(u64::from(status.target), FORMAT_VERSION);
    let pending: Vec<u32> = status.pending.iter().map(|m| m.version).collect();
    assert_eq!(pending, [2]);
    assert!(!status.is_current() && !status.is_newer());

    fails_with(
        RedbStore::open_read_only(&path).await,
        StoreErrorKind::Invalid,
        &[
            "version 1",
            "version 2",
            "does not migrate",
            &path.display().to_string(),
        ],
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "a refused open wrote");

    let store = open(&path).await;
    let loaded = all(&store).await;
    let want: Vec<(Position, OpRecord)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (Position(i as u64 + 1), r.clone()))
        .collect();
    assert_eq!(loaded, want, "every record with its columns");
    assert_eq!(loaded[7].1.lamport, 0, "bytes that are no op: lamport 0");
    assert_eq!(store.count().await.unwrap(), 8);
    assert_eq!(store.heads().await.unwrap().get(&rows[0].author), 4);
    assert_eq!(store.evidence().await.unwrap().len(), 1);
    assert_eq!(
        store.get(&rows[3].id).await.unwrap().as_ref(),
        Some(&rows[3])
    );
    assert_eq!(
        store.get_meta("checkpoint").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    reads_match(&store, &rows, 3).await;
    assert_eq!(
        store.describe().schema_version,
        Some(u32::try_from(FORMAT_VERSION).unwrap())
    );

    // Appends after the migration are indexed as any.
    let b3 = OpRecord::new(&op(&key(2), 3, None, &moved(9, "s-1", Some("k"))), false);
    store.append(std::slice::from_ref(&b3)).await.unwrap();
    let mut more = rows.clone();
    more.push(b3);
    reads_match(&store, &more, 4).await;
    store.close().await.unwrap();
    drop(store);

    let status = RedbStore::schema_status(&path, RedbConfig::default())
        .await
        .unwrap();
    assert!(
        status.is_current() && status.pending.is_empty(),
        "{status:?}"
    );
    // A second open migrates nothing; read-only opens now.
    let store = open(&path).await;
    assert_eq!(all(&store).await.len(), 9);
    store.close().await.unwrap();
    drop(store);
    let ro = RedbStore::open_read_only(&path).await.unwrap();
    reads_match(&ro, &more, 4).await;
}

/// A record that is no version-1 record is left as it was by the migration:
/// reads meet it as `Corrupt` naming its position, as before; the other rows are
/// migrated and indexed.
#[tokio::test]
async fn a_damaged_version_1_record_stays_corrupt() {
    let (_dir, path) = fresh();
    let rows = rows()[..3].to_vec();
    let garbage = vec![1, 0, 7];
    write_v1(&path, &rows, &[(2, garbage.clone())]);
    let store = open(&path).await;
    match store.load(Position::START, 10).await {
        Err(StoreError::Corrupt { location, .. }) => assert!(location.contains("#2"), "{location}"),
        other => panic!("expected corruption at #2, got {other:?}"),
    }
    assert_eq!(
        store.get(&rows[0].id).await.unwrap().as_ref(),
        Some(&rows[0])
    );
    assert_eq!(
        store.get(&rows[2].id).await.unwrap().as_ref(),
        Some(&rows[2])
    );
    let timeline = store.timeline(&Causal::START, 10).await.unwrap();
    assert_eq!(timeline, [rows[0].clone(), rows[2].clone()]);
    store.close().await.unwrap();
    drop(store);
    assert_eq!(
        read_record(&path, 2),
        Some(garbage),
        "the damaged record was rewritten"
    );
}
