//! The seed module's expectations, re-expressed against `EventLog`, plus merge,
//! tamper and timestamp behaviour.

use chrono::{TimeZone, Utc};
use event_log_conformance::read::ReadAll;
use event_log_core::{
    DamageKind, Entry, Error, EventLog, Gap, MemStore, MergeRejected, OpRecord, OpStore, Position,
    Rejected, RunId, SigningKey, Transition, render_lines, sync,
};
use pollster::block_on;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn fired(i: u32) -> Transition {
    Transition::now(format!("test_{i}"), "backlog", "coding", "DepsMet")
}

/// Seed AC4: N events survive a re-open, in insertion order, ids 0..N.
#[test]
fn event_log_survives_reopen() {
    block_on(async {
        let store = MemStore::new();
        let n = 5;
        {
            let log = EventLog::open(store.clone(), key(1)).await.unwrap();
            for i in 0..n {
                log.append_transition(Transition::now(
                    format!("story_{i}"),
                    "backlog",
                    "coding",
                    "DepsMet",
                ))
                .await
                .unwrap();
            }
        }
        let log = EventLog::open(store.clone(), key(1)).await.unwrap();
        let events = log.all_events().await.unwrap();
        assert_eq!(
            events.len(),
            n as usize,
            "all {n} entries must survive re-open"
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.event_id, i as u64);
            assert_eq!(e.story_id(), Some(format!("story_{i}").as_str()));
            assert_eq!(e.sled_id, log.sled_id());
        }
        // Sequencing resumes after the highest stored seq.
        let next = log.append_transition(fired(9)).await.unwrap();
        assert_eq!(next.event_id, n as u64);
    });
}

/// Seed AC4: a gap sentinel is present and rendered with the real events around it.
#[test]
fn gap_sentinel_in_log_and_rendered() {
    block_on(async {
        let log = EventLog::open(MemStore::new(), key(2)).await.unwrap();
        for i in 0..3 {
            log.append_transition(fired(i)).await.unwrap();
        }
        let run = RunId(42);
        log.append_gap(Gap::new(run, 3, 5)).await.unwrap();
        log.append_transition(fired(99)).await.unwrap();

        let events = log.all_events().await.unwrap();
        let gap = events
            .iter()
            .find(|e| e.is_gap())
            .expect("gap sentinel must be present");
        match &gap.entry {
            Entry::Gap(g) => {
                assert_eq!((g.from, g.to, g.run), (3, 5, run));
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        assert_eq!(
            gap.event_id, 3,
            "a gap takes a position in the sled's stream"
        );
        let text = render_lines(&log.all_timeline().await.unwrap());
        assert!(
            text.contains("events between 3 and 5 were dropped"),
            "got: {text}"
        );
        assert!(text.contains("test_0"), "got: {text}");
        assert!(text.contains("test_99"), "got: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[3].contains("events between 3 and 5 were dropped"));
    });
}

/// Seed AC2: every transition is logged, seqs 0..n.
#[test]
fn every_transition_logged_with_contiguous_seqs() {
    block_on(async {
        let log = EventLog::open(MemStore::new(), key(3)).await.unwrap();
        let n = 4u64;
        for i in 0..n {
            log.append_transition(fired(i as u32)).await.unwrap();
        }
        let seqs: Vec<u64> = log
            .all_events()
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(seqs, (0..n).collect::<Vec<_>>());
    });
}

/// Concurrent appends from many tasks get unique, contiguous seqs.
#[test]
fn concurrent_appends_get_contiguous_seqs() {
    block_on(async {
        let log = EventLog::open(MemStore::new(), key(4)).await.unwrap();
        let futs = (0..64).map(|i| log.append_transition(fired(i)));
        let results = futures::future::join_all(futs).await;
        let mut ids: Vec<u64> = results.into_iter().map(|r| r.unwrap().event_id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..64).collect::<Vec<_>>());
        assert_eq!(log.stats().appended, 64);
    });
}

/// Two sleds merging each other's ops converge to the same events and timeline.
#[test]
fn two_sleds_converge() {
    block_on(async {
        let a = EventLog::open(MemStore::new(), key(5)).await.unwrap();
        let b = EventLog::open(MemStore::new(), key(6)).await.unwrap();
        for i in 0..3 {
            a.append_transition(fired(i)).await.unwrap();
            b.append_transition(fired(100 + i)).await.unwrap();
        }
        let r = sync(&a, &b).await.unwrap();
        assert_eq!(r.a_to_b.applied(), 3);
        assert_eq!(r.b_to_a.applied(), 3);
        a.append_transition(fired(7)).await.unwrap();
        sync(&a, &b).await.unwrap();
        assert_eq!(a.all_events().await.unwrap(), b.all_events().await.unwrap());
        assert_eq!(
            a.all_timeline().await.unwrap(),
            b.all_timeline().await.unwrap()
        );
        assert_eq!(a.version_vector(), b.version_vector());
        assert_eq!(a.heads(), b.heads());
        assert_eq!(a.all_events().await.unwrap().len(), 7);
        // The later op of `a` depends on b's ops it had seen: causal order holds.
        let tl = a.all_timeline().await.unwrap();
        assert_eq!(tl.last().unwrap().story_id(), Some("test_7"));
    });
}

/// A tampered op is rejected on merge, naming it, and nothing else is lost.
#[test]
fn tampered_op_rejected_on_merge() {
    block_on(async {
        let a = EventLog::open(MemStore::new(), key(7)).await.unwrap();
        let b = EventLog::open(MemStore::new(), key(8)).await.unwrap();
        for i in 0..3 {
            a.append_transition(fired(i)).await.unwrap();
        }
        let mut ops = a.export_since(&Default::default()).await.unwrap();
        // Flip a payload byte and claim the new bytes' id: the signature no longer fits.
        let victim = 1;
        let n = ops[victim].bytes.len();
        ops[victim].bytes[n - 70] ^= 0x01;
        let recomputed =
            event_log_core::SignedOp::from_bytes(&ops[victim].bytes, &Default::default())
                .unwrap()
                .id();
        ops[victim].id = recomputed;
        let report = b.merge(ops).await.unwrap();
        let rejected = report.rejected();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].id, recomputed);
        assert!(
            matches!(
                rejected[0].result,
                Err(MergeRejected::Op(Rejected::BadSignature { .. }))
            ),
            "{:?}",
            rejected[0].result
        );
        // op 0 applied; op 2 depends on the refused op 1 and waits for it.
        assert_eq!(report.applied(), 1);
        assert_eq!(report.buffered(), 1);
        assert_eq!(b.all_events().await.unwrap().len(), 1);
        // The genuine op arrives later: both land.
        let report = b
            .merge(a.export_since(&b.version_vector()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            b.all_events().await.unwrap(),
            a.all_events().await.unwrap(),
            "{report:?}"
        );
    });
}

/// A tampered op of the sled's own chain fails open with an error naming its
/// position and id (other sleds' damaged rows only leave the view: see the
/// conformance scenario `damaged_rows_quarantined`).
#[test]
fn tampered_op_rejected_on_replay() {
    block_on(async {
        let store = MemStore::new();
        {
            let log = EventLog::open(store.clone(), key(9)).await.unwrap();
            for i in 0..3 {
                log.append_transition(fired(i)).await.unwrap();
            }
        }
        // Damage the bytes of the 2nd row without fixing its id.
        assert!(store.tamper(Position(2), |r: &mut OpRecord| {
            let n = r.bytes.len();
            r.bytes[n - 70] ^= 0x01;
        }));
        let err = EventLog::open(store.clone(), key(9))
            .await
            .err()
            .expect("open must fail");
        match &err {
            Error::OwnChainDamaged { row } => {
                assert_eq!(row.position, Position(2));
                assert!(matches!(
                    row.kind,
                    DamageKind::Rejected(Rejected::BadId { .. })
                ));
            }
            other => panic!("expected OwnChainDamaged, got {other:?}"),
        }
        assert!(err.to_string().contains("#2"), "{err}");
        // The other rows are untouched.
        assert_eq!(store.count().await.unwrap(), 3);
    });
}

/// Re-signed forgery in the store (bytes and id consistent, signature wrong).
#[test]
fn forged_row_with_consistent_id_rejected_on_replay() {
    block_on(async {
        let store = MemStore::new();
        {
            let log = EventLog::open(store.clone(), key(10)).await.unwrap();
            log.append_transition(fired(0)).await.unwrap();
        }
        assert!(store.tamper(Position(1), |r: &mut OpRecord| {
            let n = r.bytes.len();
            r.bytes[n - 70] ^= 0x01;
            let op = event_log_core::SignedOp::from_bytes(&r.bytes, &Default::default()).unwrap();
            r.id = op.id();
            r.payload = String::from_utf8_lossy(op.payload()).into_owned();
        }));
        let err = EventLog::open(store, key(10))
            .await
            .err()
            .expect("open must fail");
        assert!(
            matches!(&err, Error::OwnChainDamaged { row }
                if matches!(row.kind, DamageKind::Rejected(Rejected::BadSignature { .. }))),
            "{err:?}"
        );
    });
}

/// Timestamps keep microseconds through the store and a reopen.
#[test]
fn timestamps_round_trip_to_the_microsecond() {
    block_on(async {
        let store = MemStore::new();
        let at = Utc.timestamp_opt(1_790_000_000, 123_456_789).unwrap();
        {
            let log = EventLog::open(store.clone(), key(11)).await.unwrap();
            log.append_transition(Transition::new("s", "a", "b", "E", at))
                .await
                .unwrap();
        }
        let log = EventLog::open(store, key(11)).await.unwrap();
        let e = &log.all_events().await.unwrap()[0];
        assert_eq!(e.at.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(e.at.timestamp(), 1_790_000_000);
    });
}

/// Reads since a cursor and per story return exactly the matching events.
#[test]
fn since_and_story_reads() {
    block_on(async {
        let log = EventLog::open(MemStore::new(), key(12)).await.unwrap();
        for i in 0..6 {
            log.append_transition(Transition::now(format!("s{}", i % 2), "a", "b", "E"))
                .await
                .unwrap();
        }
        let mut cursor = event_log_core::VersionVector::new();
        cursor.set(log.sled_id(), 4);
        let since: Vec<u64> = log
            .all_events_since(&cursor)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(since, vec![4, 5]);
        assert!(
            log.all_events_since(&log.version_vector())
                .await
                .unwrap()
                .is_empty()
        );
        let s1: Vec<u64> = log
            .all_story_events("s1")
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(s1, vec![1, 3, 5]);
        assert!(log.all_story_events("nope").await.unwrap().is_empty());
    });
}

/// Two processes with one key on one store never reuse a seq: the store refuses the
/// second writer's, which catches up and re-sequences.
#[test]
fn two_writers_with_one_key_on_one_store_take_turns() {
    block_on(async {
        let store = MemStore::new();
        let a = EventLog::open(store.clone(), key(13)).await.unwrap();
        let b = EventLog::open(store.clone(), key(13)).await.unwrap();
        a.append_transition(fired(0)).await.unwrap();
        // b's seq 1 is taken in the store: b catches up and takes seq 2; the op it
        // signed for seq 1 never left it (refused, never applied, never exported).
        let e = b.append_transition(fired(1)).await.unwrap();
        assert_eq!(e.event_id, 1);
        assert_eq!(store.count().await.unwrap(), 2);
        a.catch_up().await.unwrap();
        assert_eq!(a.all_events().await.unwrap(), b.all_events().await.unwrap());
        assert!(a.equivocations().is_empty());
    });
}

/// A reopen verifies only the ops stored after the sled's signed checkpoint.
#[test]
fn reopen_uses_the_signed_checkpoint() {
    block_on(async {
        let store = MemStore::new();
        {
            let log = EventLog::open(store.clone(), key(14)).await.unwrap();
            for i in 0..5 {
                log.append_transition(fired(i)).await.unwrap();
            }
        }
        let log = EventLog::open(store.clone(), key(14)).await.unwrap();
        assert_eq!(log.open_stats().replayed, 5);
        assert_eq!(
            log.open_stats().verified,
            5,
            "first open verifies everything"
        );
        log.append_transition(fired(5)).await.unwrap();
        drop(log);
        let log = EventLog::open(store.clone(), key(14)).await.unwrap();
        assert_eq!(log.open_stats().replayed, 6);
        assert_eq!(
            log.open_stats().verified,
            1,
            "only the op after the checkpoint"
        );
        drop(log);
        // close() extends the checkpoint over what this log appended.
        let log = EventLog::open(store.clone(), key(14)).await.unwrap();
        for i in 6..9 {
            log.append_transition(fired(i)).await.unwrap();
        }
        log.close().await.unwrap();
        drop(log);
        let log = EventLog::open(store.clone(), key(14)).await.unwrap();
        assert_eq!(log.open_stats().replayed, 9);
        assert_eq!(
            log.open_stats().verified,
            0,
            "close checkpointed everything"
        );
        drop(log);
        // Another sled's key cannot use (or forge) this sled's checkpoint.
        let other = EventLog::open(store.clone(), key(15)).await.unwrap();
        assert_eq!(other.open_stats().verified, 9);
        assert_eq!(other.all_events().await.unwrap().len(), 9);
    });
}

/// A read-only tool (checkpoints off) writes nothing to the store it opens.
#[test]
fn readers_with_checkpoints_off_write_nothing() {
    block_on(async {
        let store = MemStore::new();
        {
            let log = EventLog::open(store.clone(), key(16)).await.unwrap();
            log.append_transition(fired(0)).await.unwrap();
        }
        let config = event_log_core::EventLogConfig::default().with_save_checkpoints(false);
        let reader = EventLog::open_with(store.clone(), key(17), config)
            .await
            .unwrap();
        assert_eq!(reader.all_events().await.unwrap().len(), 1);
        reader.close().await.unwrap();
        let sled = event_log_core::SledId::from(&key(17).verifying_key());
        let meta = store
            .get_meta(&format!("replay-checkpoint/{sled}"))
            .await
            .unwrap();
        assert_eq!(meta, None);
    });
}

/// Ops a merge buffered and a catch-up later released are persisted before they are
/// applied, so the store stays causal and reopens.
#[test]
fn catch_up_persists_ops_released_from_the_buffer() {
    block_on(async {
        let shared = MemStore::new();
        let s1 = EventLog::open(shared.clone(), key(20)).await.unwrap();
        let s2 = EventLog::open(shared.clone(), key(21)).await.unwrap();
        let peer = EventLog::open(MemStore::new(), key(22)).await.unwrap();
        peer.append_transition(fired(1)).await.unwrap();
        peer.append_transition(fired(2)).await.unwrap();
        let ops = peer.export_since(&Default::default()).await.unwrap();
        // s1 gets B only: buffered. s2 gets A: stored in the shared store.
        assert_eq!(s1.merge(vec![ops[1].clone()]).await.unwrap().buffered(), 1);
        assert_eq!(s2.merge(vec![ops[0].clone()]).await.unwrap().applied(), 1);
        let c = s1.catch_up().await.unwrap();
        assert_eq!(c.applied, 2, "A read from the store, and B released by it");
        assert_eq!(
            s1.all_events().await.unwrap().len(),
            2,
            "A from the store, B released from the buffer"
        );
        assert_eq!(
            shared.count().await.unwrap(),
            2,
            "B was persisted before it was applied"
        );
        s1.append_transition(fired(3)).await.unwrap();
        drop((s1, s2));
        let reopened = EventLog::open(shared, key(20)).await.unwrap();
        assert_eq!(reopened.all_events().await.unwrap().len(), 3);
    });
}

/// `checkpoint()` vouches only for the exact ops the log verified: a stored signature
/// changed after the append is not covered, and the next open catches it.
#[test]
fn checkpoint_does_not_cover_a_changed_signature() {
    block_on(async {
        let store = MemStore::new();
        let log = EventLog::open(store.clone(), key(23)).await.unwrap();
        log.append_transition(fired(0)).await.unwrap();
        log.append_transition(fired(1)).await.unwrap();
        assert!(store.tamper(Position(2), |r: &mut OpRecord| {
            let n = r.bytes.len();
            r.bytes[n - 1] ^= 0x01; // last signature byte: the id is unchanged
        }));
        assert_eq!(log.checkpoint().await.unwrap(), 1, "only the untouched op");
        drop(log);
        let err = EventLog::open(store, key(23))
            .await
            .err()
            .expect("open must fail");
        assert!(
            matches!(&err, Error::OwnChainDamaged { row }
                if row.position == Position(2)
                    && matches!(row.kind, DamageKind::Rejected(Rejected::BadSignature { .. }))),
            "{err:?}"
        );
    });
}
