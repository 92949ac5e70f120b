//! Reads served by the store, a page at a time, answer exactly what the log's view
//! holds, for every page size, and never return a row that fails its checks.

use std::collections::BTreeSet;

use event_log_core::{
    Causal, DamageKind, Entry, Error, EventId, EventLog, LoggedEvent, MemStore, Position,
    SigningKey, SledId, Transition, VersionVector,
};
use pollster::block_on;
use proptest::prelude::*;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n + 1; 32])
}

fn transition(story: u8, i: usize) -> Transition {
    Transition::now(
        format!("story-{story}"),
        "backlog",
        "coding",
        format!("E{i}"),
    )
}

/// What one step of a run does.
#[derive(Debug, Clone)]
enum Step {
    /// Sled `sled` appends a transition of `story` (sled 0 is the reader's own).
    Append { sled: u8, story: u8 },
    /// The reader merges everything the other sleds hold.
    Merge,
    /// Sled 1 forks: a second key-1 log on its own store signs another op at its
    /// next seq, and the reader merges it (sled 1 leaves the view from there on).
    Fork,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0u8..4).prop_map(|(sled, story)| Step::Append { sled, story }),
        2 => Just(Step::Merge),
        1 => Just(Step::Fork),
    ]
}

/// Runs the steps: the reader (sled 0) over a `MemStore`, sleds 1 and 2 on their
/// own stores, merged into the reader.
async fn run(steps: &[Step]) -> (EventLog<MemStore>, MemStore) {
    let store = MemStore::new();
    let reader = EventLog::open(store.clone(), key(0)).await.unwrap();
    let others = [
        EventLog::open(MemStore::new(), key(1)).await.unwrap(),
        EventLog::open(MemStore::new(), key(2)).await.unwrap(),
    ];
    let mut forked = false;
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Append { sled: 0, story } => {
                reader
                    .append_transition(transition(*story, i))
                    .await
                    .unwrap();
            }
            Step::Append { sled, story } => {
                let log = &others[usize::from(*sled) - 1];
                log.append_transition(transition(*story, i)).await.unwrap();
            }
            Step::Merge => {
                for log in &others {
                    let ops = log.export_since(&reader.version_vector()).await.unwrap();
                    reader.merge(ops).await.unwrap();
                }
            }
            Step::Fork if !forked => {
                forked = true;
                for log in &others {
                    reader
                        .merge(log.export_since(&VersionVector::new()).await.unwrap())
                        .await
                        .unwrap();
                }
                // A twin of sled 1 that holds its ops but signs its own next op.
                let twin = EventLog::open(MemStore::new(), key(1)).await.unwrap();
                twin.merge(others[0].export_since(&VersionVector::new()).await.unwrap())
                    .await
                    .unwrap();
                twin.append_transition(transition(9, i)).await.unwrap();
                others[0].append_transition(transition(8, i)).await.unwrap();
                reader
                    .merge(twin.export_since(&VersionVector::new()).await.unwrap())
                    .await
                    .unwrap();
                reader
                    .merge(others[0].export_since(&VersionVector::new()).await.unwrap())
                    .await
                    .unwrap();
            }
            Step::Fork => {}
        }
    }
    (reader, store)
}

async fn all_timeline(log: &EventLog<MemStore>, limit: usize) -> Vec<LoggedEvent> {
    let mut after = Causal::START;
    let mut out = Vec::new();
    loop {
        let page = log.read_timeline(&after, limit).await.unwrap();
        assert!(page.events.len() <= limit, "a page holds at most the limit");
        assert!(
            page.end || page.events.len() == limit,
            "a short page is the end"
        );
        after = page.next;
        out.extend(page.events);
        if page.end {
            return out;
        }
    }
}

async fn all_story(log: &EventLog<MemStore>, story: &str, limit: usize) -> Vec<LoggedEvent> {
    let mut after = Causal::START;
    let mut out = Vec::new();
    loop {
        let page = log.read_story(story, &after, limit).await.unwrap();
        assert!(page.events.len() <= limit);
        after = page.next;
        out.extend(page.events);
        if page.end {
            return out;
        }
    }
}

async fn all_sled(log: &EventLog<MemStore>, sled: &SledId, limit: usize) -> Vec<LoggedEvent> {
    let mut from: EventId = 0;
    let mut out = Vec::new();
    loop {
        let page = log.read_sled(sled, from, limit).await.unwrap();
        assert!(page.events.len() <= limit);
        from = page.next;
        out.extend(page.events);
        if page.end {
            return out;
        }
    }
}

async fn all_since(
    log: &EventLog<MemStore>,
    cursor: &VersionVector,
    limit: usize,
) -> Vec<LoggedEvent> {
    let mut vv = cursor.clone();
    let mut out = Vec::new();
    loop {
        let page = log.read_since(&vv, limit).await.unwrap();
        assert!(page.events.len() <= limit);
        vv = page.next;
        out.extend(page.events);
        if page.end {
            return out;
        }
    }
}

/// The view as a model computes it from the ops the log holds in memory (its
/// replica, exported) and its equivocations: every op but evidence and the ops of
/// an equivocating sled from its fork on, in causal order.
async fn model_view(log: &EventLog<MemStore>) -> Vec<LoggedEvent> {
    let mut excluded: std::collections::HashMap<SledId, u64> = Default::default();
    for q in log.equivocations() {
        let e = excluded.entry(q.author).or_insert(q.seq);
        *e = (*e).min(q.seq);
    }
    let mut out: Vec<LoggedEvent> = log
        .export_since(&VersionVector::new())
        .await
        .unwrap()
        .iter()
        .map(|raw| raw.decode(&Default::default()).unwrap())
        .filter(|op| {
            excluded
                .get(&op.author())
                .is_none_or(|from| op.seq() < *from)
        })
        .map(|op| {
            let entry = Entry::from_payload(op.payload()).unwrap();
            LoggedEvent {
                event_id: op.seq() - 1,
                sled_id: op.author(),
                at: entry.at(),
                entry,
                op_id: op.id(),
                lamport: op.lamport(),
            }
        })
        .collect();
    out.sort_by_key(LoggedEvent::causal);
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// For every page size, paging through the store gives exactly the view a
    /// model computes from the ops the log holds: the timeline, each story, each
    /// sled, since any cursor, one event by id; an equivocating sled's ops from its
    /// fork on are in none of them.
    #[test]
    fn store_pages_match_the_view(steps in prop::collection::vec(step(), 1..40), cut in 0u64..6) {
        block_on(async {
            let (log, _store) = run(&steps).await;
            let timeline = model_view(&log).await;
            let mut by_sled = timeline.clone();
            by_sled.sort_by_key(|e| (e.sled_id, e.event_id));
            prop_assert_eq!(log.visible_per_sled().iter().map(|(_, n)| *n as usize).sum::<usize>(), timeline.len());
            let sleds: BTreeSet<SledId> = (0..3).map(|n| SledId::from(&key(n).verifying_key())).collect();
            for limit in [1usize, 2, 3, 7, 1000] {
                prop_assert_eq!(all_timeline(&log, limit).await, timeline.clone());
                for story in ["story-0", "story-1", "story-2", "story-3", "story-8", "story-9", "none"] {
                    let want: Vec<LoggedEvent> = timeline
                        .iter()
                        .filter(|e| e.story_id() == Some(story))
                        .cloned()
                        .collect();
                    prop_assert_eq!(all_story(&log, story, limit).await, want, "story {}", story);
                }
                for sled in &sleds {
                    let want: Vec<LoggedEvent> = by_sled.iter().filter(|e| e.sled_id == *sled).cloned().collect();
                    prop_assert_eq!(all_sled(&log, sled, limit).await, want);
                }
                let mut cursor = VersionVector::new();
                for (i, sled) in sleds.iter().enumerate() {
                    cursor.set(*sled, cut.saturating_sub(i as u64));
                }
                let want: Vec<LoggedEvent> = by_sled
                    .iter()
                    .filter(|e| e.event_id >= cursor.get(&e.sled_id))
                    .cloned()
                    .collect();
                prop_assert_eq!(all_since(&log, &cursor, limit).await, want);
                prop_assert_eq!(all_since(&log, &VersionVector::new(), limit).await, by_sled.clone());
            }
            for sled in &sleds {
                for id in 0..12 {
                    let want = by_sled.iter().find(|e| e.sled_id == *sled && e.event_id == id).cloned();
                    prop_assert_eq!(log.read_event(sled, id).await.unwrap(), want);
                }
            }
            Ok(())
        })?;
    }
}

/// Rows changed after the log validated them are never returned: the read fails
/// naming the op and the column, the row is listed as damaged, and later reads
/// skip it; every other event is still served.
#[test]
fn tampered_rows_are_never_returned() {
    block_on(async {
        let store = MemStore::new();
        let log = EventLog::open(store.clone(), key(0)).await.unwrap();
        for i in 0..6 {
            log.append_transition(transition(1, i)).await.unwrap();
        }
        let ids: Vec<_> = model_view(&log).await.iter().map(|e| e.op_id).collect();
        type Edit = fn(&mut event_log_core::OpRecord);
        let edits: [(u64, &str, Edit); 4] = [
            (2, "payload", |r| {
                r.payload = r.payload.replace("coding", "shipped")
            }),
            (3, "story", |r| r.story = Some("story-7".into())),
            (4, "lamport", |r| r.lamport += 1),
            (5, "bytes", |r| {
                let n = r.bytes.len();
                r.bytes[n - 1] ^= 1;
            }),
        ];
        for (position, _, edit) in &edits {
            assert!(store.tamper(Position(*position), edit));
        }
        let mut seen = Vec::new();
        for _ in 0..edits.len() {
            match log.read_timeline(&Causal::START, 100).await {
                Err(Error::DamagedRead { row }) => {
                    let column = match &row.kind {
                        DamageKind::RowMismatch { column, .. } => column.to_string(),
                        other => panic!("unexpected damage {other:?}"),
                    };
                    assert_eq!(row.id, ids[seen.len() + 1], "damaged rows are met in order");
                    assert!(
                        Error::DamagedRead { row: row.clone() }
                            .to_string()
                            .contains(&row.id.to_string()),
                        "the error names the op"
                    );
                    seen.push(column);
                }
                other => panic!("expected a damaged read, found {other:?}"),
            }
        }
        assert_eq!(seen, vec!["payload", "story", "lamport", "bytes"]);
        let page = log.read_timeline(&Causal::START, 100).await.unwrap();
        let got: Vec<_> = page.events.iter().map(|e| e.op_id).collect();
        assert_eq!(
            got,
            vec![ids[0], ids[5]],
            "the intact rows are still served"
        );
        assert_eq!(log.damage().len(), 4, "each damaged row is listed");
    });
}

/// Ops served to peers (export, one op by id, the ancestry walk) are read from the
/// store and checked like events: a row whose signature was swapped after the log
/// verified it is never sent; the error names it and the row joins the damage log.
#[test]
fn ops_sent_to_peers_are_checked() {
    block_on(async {
        let store = MemStore::new();
        let log = EventLog::open(store.clone(), key(0)).await.unwrap();
        for i in 0..4 {
            log.append_transition(transition(1, i)).await.unwrap();
        }
        let ops = log.export_since(&VersionVector::new()).await.unwrap();
        assert_eq!(ops.len(), 4);
        let victim = ops[2].decode(&Default::default()).unwrap().id();
        let fine = ops[1].decode(&Default::default()).unwrap().id();
        // The last byte of the bytes is the signature's: the id does not change.
        assert!(store.tamper(Position(3), |r| {
            let n = r.bytes.len();
            r.bytes[n - 1] ^= 1;
        }));
        let named = |e: Error| match e {
            Error::DamagedRead { row } => {
                assert_eq!(row.id, victim, "the error names the row");
                assert!(matches!(
                    row.kind,
                    DamageKind::RowMismatch {
                        column: "bytes",
                        ..
                    }
                ));
            }
            other => panic!("expected a damaged read, found {other:?}"),
        };
        named(log.export_since(&VersionVector::new()).await.unwrap_err());
        named(log.get_op(&victim).await.unwrap_err());
        // Walking back from the head meets it too.
        named(
            log.ancestry_unknown(&log.heads(), |_| false)
                .await
                .unwrap_err(),
        );
        assert_eq!(log.damage().len(), 1);
        // Intact rows are still served; an op not held is none.
        assert!(log.get_op(&fine).await.unwrap().is_some());
        let other = EventLog::open(MemStore::new(), key(1)).await.unwrap();
        let stranger = other
            .append_transition(transition(2, 0))
            .await
            .unwrap()
            .op_id;
        assert!(log.get_op(&stranger).await.unwrap().is_none());
    });
}

/// Rows another writer committed to a shared store that this log has not caught
/// up with yet end the page there: a reader resuming from the page's cursor after
/// the catch-up gets them, never a cursor past them.
#[test]
fn rows_not_caught_up_stop_the_page_and_are_read_later() {
    block_on(async {
        let store = MemStore::new();
        let reader = EventLog::open(store.clone(), key(0)).await.unwrap();
        let writer = EventLog::open(store.clone(), key(1)).await.unwrap();
        reader.append_transition(transition(1, 0)).await.unwrap();
        for i in 0..3 {
            writer.append_transition(transition(2, i)).await.unwrap();
        }
        reader.append_transition(transition(1, 9)).await.unwrap();
        // The reader holds its own two events, not the writer's three yet.
        let since = reader.read_since(&VersionVector::new(), 100).await.unwrap();
        let timeline = reader.read_timeline(&Causal::START, 100).await.unwrap();
        let sled = reader.read_sled(&writer.sled_id(), 0, 100).await.unwrap();
        assert!(since.end && timeline.end && sled.end);
        assert!(sled.events.is_empty());
        reader.catch_up().await.unwrap();
        let more = reader.read_since(&since.next, 100).await.unwrap();
        let later = reader.read_timeline(&timeline.next, 100).await.unwrap();
        let sled_more = reader
            .read_sled(&writer.sled_id(), sled.next, 100)
            .await
            .unwrap();
        let mut got: Vec<_> = since
            .events
            .iter()
            .chain(&more.events)
            .map(|e| e.op_id)
            .collect();
        let mut tl: Vec<_> = timeline
            .events
            .iter()
            .chain(&later.events)
            .map(|e| e.op_id)
            .collect();
        let mut want: Vec<_> = model_view(&reader).await.iter().map(|e| e.op_id).collect();
        assert_eq!(want.len(), 5, "both sleds' events are in the view");
        assert_eq!(tl, want, "the timeline resumed without a hole");
        got.sort();
        tl.sort();
        want.sort();
        assert_eq!(got, want, "since resumed without a hole");
        assert_eq!(
            sled_more.events.len(),
            3,
            "the writer's sled resumed from its start"
        );
    });
}
