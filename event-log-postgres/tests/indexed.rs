//! The indexed reads (`author_ops`, `timeline`, `story_ops`, `keyed`): each served by
//! its own index, and the schema migration that adds their columns to a store
//! written by an older build. (That they answer exactly as `MemStore` does is the
//! conformance suite's `*_match_the_reference` scenarios.)

mod common;

use bft_json_crdt::{AuthorId, OpId};
use common::*;
use event_log_conformance::read::ReadAll;
use event_log_core::{
    Causal, Entry, EventLog, IndexColumns, MemStore, OpRecord, OpStore, Position, Transition,
};
use event_log_postgres::PostgresStore;
use tokio_postgres::types::ToSql;

/// A transition payload of `story`, with the idempotency key `key` if given.
fn transition(story: &str, key: Option<&str>) -> String {
    let mut t = Transition::now(story, "todo", "doing", "E");
    t.idempotency_key = key.map(str::to_owned);
    String::from_utf8(Entry::Transition(t).to_payload()).expect("JSON payload")
}

/// `count` ops of sled `n` (seqs and timestamps 1..), each after the previous:
/// transitions of `story-<seq % 10>`, every 7th with the key `key-<seq % 3>`.
fn story_chain(n: u8, count: u64) -> Vec<OpRecord> {
    let mut out: Vec<OpRecord> = Vec::new();
    for seq in 1..=count {
        let deps = out.last().map(|r| vec![r.id]).unwrap_or_default();
        let key = (seq % 7 == 0).then(|| format!("key-{}", seq % 3));
        let payload = transition(&format!("story-{}", seq % 10), key.as_deref());
        out.push(OpRecord::new(&signed(n, seq, deps, &payload), false));
    }
    out
}

/// The plan of `sql` with `params`, one line per row. Sequential and bitmap scans
/// are off: on a table this small the planner would read it whole, or collect a few
/// rows from a bitmap and sort them; the question is whether an index serves the
/// read in its order, as the planner picks it on a table where a limit cuts a long
/// range.
async fn explain(sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<String> {
    let admin = admin().await;
    admin
        .batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        .await
        .unwrap();
    admin
        .query(&format!("EXPLAIN {sql}"), params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// Each indexed read, as the store runs it, is one scan of its own index, in the
/// index's order (no sort: the limit stops the scan after k rows), every condition
/// (the resume point `(lamport, id) > (…)` included) an index bound, and no table
/// scan.
/// `author_ops` sorts its k rows once (the page and the rest of its last seq).
#[tokio::test]
async fn indexed_reads_are_served_by_their_indexes() {
    let (_guard, store) = fresh_store("idxplan").await;
    for n in 1..=4 {
        store.append(&story_chain(n, 150)).await.unwrap();
    }
    admin()
        .await
        .batch_execute(&format!("ANALYZE \"{}\".ops", store.schema()))
        .await
        .unwrap();
    let sql = |read: &str| store.read_sql(read).expect("a known read").to_owned();
    let sled2 = AuthorId::from(&key(2).verifying_key());
    let author: &[u8] = sled2.0.as_slice();
    let id: &[u8] = &[0x80; 32];
    let (after, limit) = (40i64, 10i64);

    let plans = [
        (
            "author_ops",
            "ops_author_seq_id",
            explain(&sql("author_ops"), &[&author, &after, &limit]).await,
        ),
        (
            "timeline",
            "ops_lamport_id",
            explain(&sql("timeline"), &[&after, &id, &limit]).await,
        ),
        (
            "story_ops",
            "ops_story_lamport_id",
            explain(
                &sql("story_ops"),
                &[&b"story-3".as_slice(), &after, &id, &limit],
            )
            .await,
        ),
        (
            "keyed",
            "ops_author_key_seq_id",
            explain(&sql("keyed"), &[&author, &b"key-1".as_slice(), &limit]).await,
        ),
    ];
    for (read, index, plan) in &plans {
        assert!(
            plan.iter()
                .any(|l| l.contains(&format!("Index Scan using {index} "))),
            "{read} is served by {index}: {plan:#?}"
        );
        assert!(
            !plan.iter().any(|l| l.contains("Seq Scan")),
            "{read} scans no table: {plan:#?}"
        );
        // The resume point is where the index range starts, not a filter over the
        // rows before it.
        assert!(
            !plan.iter().any(|l| l.contains("Filter:")),
            "{read} filters nothing: every condition is an index bound: {plan:#?}"
        );
        if *read != "author_ops" {
            assert!(
                !plan.iter().any(|l| l.contains("Sort")),
                "{read} reads in index order: {plan:#?}"
            );
        }
    }
    // And the reads answer: a sanity check (the conformance suite checks them all).
    let page = store.story_ops("story-3", &Causal::START, 5).await.unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|r| r.story.as_deref() == Some("story-3")));
}

/// A row as an older build stored it: no index columns.
async fn insert_v3_row(
    admin: &tokio_postgres::Client,
    schema: &str,
    r: &OpRecord,
) -> Result<u64, tokio_postgres::Error> {
    admin
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".ops (id, author, seq, evidence, payload, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            &[
                &r.id.as_bytes().as_slice(),
                &r.author.as_bytes().as_slice(),
                &(r.seq as i64),
                &r.evidence,
                &r.payload,
                &r.bytes,
            ],
        )
        .await
}

/// A schema at version 3 (as the previous build left it) holding ops, evidence and a
/// row whose bytes are no op: `schema_status` reports the pending migration; a
/// writable open applies it, filling in every row's lamport, story and key from its
/// signed bytes (the undecodable row gets lamport 0, no story, no key, and the log
/// reports it as damaged); the new reads then answer, and new appends store their
/// columns (the backfill's default is gone).
#[tokio::test]
async fn a_version_3_schema_is_migrated_and_backfilled() {
    let url = pg_url();
    let schema = unique_schema("mig3");
    let _guard = SchemaGuard::new(&url, &schema);
    let admin = admin().await;
    admin
        .batch_execute(&event_log_postgres::schema::schema_sql_at(&schema, 3).unwrap())
        .await
        .unwrap();

    // 2 500 rows: more than one backfill batch.
    let mut rows: Vec<OpRecord> = story_chain(1, 1200);
    rows.extend(story_chain(2, 1300));
    // Evidence: a second op at sled 1's seq 7, after its seq 6.
    let fork = signed(1, 7, vec![rows[5].id], &transition("story-x", Some("k")));
    let fork = OpRecord::new(&fork, true);
    rows.push(fork.clone());
    // An op whose payload is no entry: no story, no key (the log reports it).
    let note = OpRecord::new(&signed(4, 1, vec![], r#"{"note":1}"#), false);
    rows.push(note.clone());
    let garbage = OpRecord {
        id: OpId([0xee; 32]),
        author: AuthorId::from(&key(3).verifying_key()),
        seq: 1,
        payload: "{}".into(),
        bytes: b"no op at all".to_vec(),
        evidence: false,
        lamport: 0,
        story: None,
        key: None,
    };
    rows.push(garbage.clone());
    for r in &rows {
        insert_v3_row(&admin, &schema, r).await.unwrap();
    }

    let status = PostgresStore::schema_status(&url, config(&schema))
        .await
        .unwrap();
    assert_eq!(status.current, Some(3));
    assert_eq!(
        status.pending.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![4],
        "{status:?}"
    );

    let store = PostgresStore::open(&url, config(&schema)).await.unwrap();
    let status = PostgresStore::schema_status(&url, config(&schema))
        .await
        .unwrap();
    assert!(status.is_current(), "{status:?}");

    // Every row as the core describes it: `OpRecord::new` reads the same columns
    // from the op that `IndexColumns::of_bytes` reads from the bytes.
    let mut loaded: Vec<OpRecord> = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.load(after, 700).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        after = *last;
        loaded.extend(page.into_iter().map(|(_, r)| r));
    }
    assert_eq!(loaded, rows, "every row backfilled from its bytes");
    for r in &rows[..rows.len() - 1] {
        let cols = IndexColumns::of_bytes(&r.bytes).unwrap();
        assert_eq!(
            (cols.lamport, cols.story.as_ref(), cols.key.as_ref()),
            (r.lamport, r.story.as_ref(), r.key.as_ref())
        );
    }
    assert!(loaded.iter().any(|r| r.key.is_some()));
    assert_eq!((note.lamport, &note.story, &note.key), (1, &None, &None));

    // The new reads, over migrated rows.
    let a1 = AuthorId::from(&key(1).verifying_key());
    let at7 = store.author_ops(&a1, 6, 1).await.unwrap();
    assert_eq!(
        at7.len(),
        2,
        "the primary op at seq 7 and its evidence twin"
    );
    let keyed = store.keyed(&a1, "k", 10).await.unwrap();
    assert_eq!(keyed, vec![fork.clone()]);
    let mut want: Vec<OpRecord> = rows
        .iter()
        .filter(|r| r.story.as_deref() == Some("story-3"))
        .cloned()
        .collect();
    want.sort_by_key(OpRecord::causal);
    let mut got: Vec<OpRecord> = Vec::new();
    let mut from = Causal::START;
    loop {
        let page = store.story_ops("story-3", &from, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.causal();
        got.extend(page);
    }
    assert_eq!(got, want, "one story's timeline, paged");
    let first = store.timeline(&Causal::START, 3).await.unwrap();
    let mut sorted = rows.clone();
    sorted.sort_by_key(OpRecord::causal);
    assert_eq!(
        first,
        sorted[..3].to_vec(),
        "the garbage row (lamport 0) first"
    );
    assert_eq!(first[0].id, garbage.id);

    // No default left on lamport: every insert must say it.
    let default: Option<String> = admin
        .query_one(
            "SELECT column_default FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'ops' AND column_name = 'lamport'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(default, None);
    assert!(
        insert_v3_row(&admin, &schema, &story_chain(5, 1)[0])
            .await
            .is_err(),
        "an insert without lamport is refused"
    );

    // A log over the migrated store: the undecodable row and the one that is no
    // entry reported (and no row for its index columns), every transition visible.
    store.close().await.unwrap();
    let store = PostgresStore::open(&url, config(&schema)).await.unwrap();
    let log = EventLog::open(store.clone(), key(9)).await.unwrap();
    let mut damaged: Vec<OpId> = log.damage().iter().map(|d| d.id).collect();
    damaged.sort();
    let mut want = vec![garbage.id, note.id];
    want.sort();
    assert_eq!(damaged, want, "{:?}", log.damage());
    // The same events as a log over the reference store holding the same rows.
    let mem = MemStore::new();
    mem.append(&rows).await.unwrap();
    let reference = EventLog::open(mem, key(9)).await.unwrap();
    let ids = |log: &[event_log_core::LoggedEvent]| {
        let mut ids: Vec<OpId> = log.iter().map(|e| e.op_id).collect();
        ids.sort();
        ids
    };
    assert!(log.visible_len() > 0);
    assert_eq!(
        ids(&log.all_events().await.unwrap()),
        ids(&reference.all_events().await.unwrap())
    );
    assert_eq!(reference.damage().len(), 2);

    // New appends carry their columns.
    let next = story_chain(6, 3);
    store.append(&next).await.unwrap();
    let a6 = AuthorId::from(&key(6).verifying_key());
    assert_eq!(store.author_ops(&a6, 0, 10).await.unwrap(), next);
}

/// A record whose Lamport timestamp does not fit a `bigint` is refused as `Invalid`
/// (no valid op has one: it would need a causal chain of 2^63 ops), and reads from a
/// point past every storable timestamp or seq are empty.
#[tokio::test]
async fn lamport_above_i64_max_is_invalid() {
    let (_guard, store) = fresh_store("lamport").await;
    let mut r = chain(1, 1, 1, "big").remove(0);
    r.lamport = 1 << 63;
    let err = store.append(&[r]).await.unwrap_err();
    assert_eq!(err.kind(), event_log_core::StoreErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("lamport"), "{err}");
    store.append(&chain(1, 1, 2, "ok")).await.unwrap();
    let past = Causal {
        lamport: 1 << 63,
        id: OpId([0; 32]),
    };
    assert!(store.timeline(&past, 10).await.unwrap().is_empty());
    assert!(store.story_ops("s", &past, 10).await.unwrap().is_empty());
    let a1 = AuthorId::from(&key(1).verifying_key());
    assert!(
        store
            .author_ops(&a1, i64::MAX as u64, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.author_ops(&a1, 0, 10).await.unwrap().len(), 2);
}
