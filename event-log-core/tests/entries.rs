//! What entries promise their readers: rendered lines and payloads.

use event_log_conformance::read::ReadAll;
use event_log_core::{Entry, Gap, RunId, Transition};

/// Two runs that each drop logical ids 3..5 render different lines, each starting
/// with the seed's wording and saying whose ids they are.
#[test]
fn gap_lines_tell_runs_apart() {
    let a = Entry::Gap(Gap::new(RunId(0x1111), 3, 5)).to_string();
    let b = Entry::Gap(Gap::new(RunId(0x2222), 3, 5)).to_string();
    assert_ne!(a, b, "two runs' gaps render alike: {a}");
    for line in [&a, &b] {
        assert!(
            line.starts_with("events between 3 and 5 were dropped"),
            "{line}"
        );
        assert!(line.contains("logical ids"), "{line}");
    }
    assert!(a.contains("0000000000001111"), "{a}");
}

/// Run ids travel as strings (JSON numbers above 2^53 lose precision in many
/// readers), and payloads written with numeric run ids still read.
#[test]
fn run_ids_are_strings_in_payloads() {
    let gap = Entry::Gap(Gap::new(RunId(u64::MAX), 1, 2));
    let json: serde_json::Value = serde_json::from_slice(&gap.to_payload()).unwrap();
    assert_eq!(json["run"], "ffffffffffffffff");
    let old = br#"{"type":"gap","run":7,"from":1,"to":2,"at":"2026-01-01T00:00:00Z"}"#;
    let Entry::Gap(g) = Entry::from_payload(old).unwrap() else {
        panic!("not a gap")
    };
    assert_eq!(g.run, RunId(7));
}

/// A transition without the optional fields keeps the seed's payload shape.
#[test]
fn plain_transition_payload_has_only_the_seed_fields() {
    let t = Entry::Transition(Transition::now("s", "a", "b", "E"));
    let json: serde_json::Value = serde_json::from_slice(&t.to_payload()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "at",
            "from_stage",
            "pipeline_event",
            "story_id",
            "to_stage",
            "type"
        ]
    );
}

/// Metadata a service attaches (actor, correlation id, reason) is signed, stored in
/// the readable payload, survives a restart, and shows on the rendered line; a
/// transition without any keeps the seed's payload and line.
#[test]
fn metadata_is_kept_signed_and_shown() {
    use event_log_core::{EventLog, MemStore, SigningKey};
    let key = SigningKey::from_bytes(&[3; 32]);
    let store = MemStore::new();
    let t = Transition::now("s-1", "coding", "review", "PrOpened")
        .with_meta("actor", "alice")
        .with_meta("correlation_id", "req-42");
    let (payload, line) = pollster::block_on(async {
        let log = EventLog::open(store.clone(), key.clone()).await.unwrap();
        let e = log.append_transition(t.clone()).await.unwrap();
        log.close().await.unwrap();
        let log = EventLog::open(store.clone(), key).await.unwrap();
        let back = log.all_events().await.unwrap();
        assert_eq!(back.len(), 1);
        match &back[0].entry {
            Entry::Transition(b) => assert_eq!(b.metadata, t.metadata, "after a restart"),
            other => panic!("{other:?}"),
        }
        (back[0].entry.to_payload(), e.entry.to_string())
    });
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(json["metadata"]["actor"], "alice");
    assert_eq!(json["metadata"]["correlation_id"], "req-42");
    assert_eq!(
        line,
        "s-1: coding -> review (PrOpened) [actor=alice, correlation_id=req-42]"
    );
    assert_eq!(
        Entry::Transition(Transition::now("s", "a", "b", "E")).to_string(),
        "s: a -> b (E)"
    );
}

/// An empty metadata key, or metadata over the op limits, is refused before
/// signing with a typed error, and nothing is stored.
#[test]
fn bad_or_oversized_metadata_is_refused_before_signing() {
    use event_log_core::{Error, EventLog, MemStore, OpStore, SigningKey};
    let store = MemStore::new();
    pollster::block_on(async {
        let log = EventLog::open(store.clone(), SigningKey::from_bytes(&[4; 32]))
            .await
            .unwrap();
        let empty = Transition::now("s", "a", "b", "E").with_meta("", "x");
        assert!(
            matches!(
                log.append_transition(empty).await,
                Err(Error::BadPayload { .. })
            ),
            "empty key"
        );
        let big = Transition::now("s", "a", "b", "E").with_meta("reason", "\u{1}".repeat(20_000));
        assert!(
            matches!(
                log.append_transition(big).await,
                Err(Error::OverLimits { .. })
            ),
            "oversized metadata"
        );
        assert_eq!(store.count().await.unwrap(), 0, "nothing stored");
        log.close().await.unwrap();
    });
}
