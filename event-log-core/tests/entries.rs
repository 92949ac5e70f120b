//! What entries promise their readers: rendered lines and payloads.

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
