//! The bodies of the `cargo fuzz` targets `entry_payload` and `stored_record` (the
//! repository's `fuzz/` directory) as proptest properties, so that `cargo test` runs
//! the same code on every change, and on every file of the targets' seed corpus.

use std::path::PathBuf;

use event_log_core::bft::Op;
use event_log_core::{AuthorId, OpId, OpRecord, SigningKey, fuzz};
use proptest::prelude::*;

/// The seed corpus of a fuzz target, as committed in `fuzz/corpus/<target>`.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let path = f.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no seed files", dir.display());
    files
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Every seed of `entry_payload` is a valid entry and passes.
#[test]
fn entry_payload_corpus() {
    for (path, bytes) in corpus("entry_payload") {
        let entry = event_log_core::Entry::from_payload(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(entry.validate().is_ok(), "{}", path.display());
        assert!(fuzz::entry_payload(&bytes));
    }
}

/// Every seed of `stored_record` is the row of a valid op and is trusted.
#[test]
fn stored_record_corpus() {
    for (path, bytes) in corpus("stored_record") {
        assert!(fuzz::record_bytes(&bytes), "{}", path.display());
    }
}

/// JSON values an entry's fields may meet: right, wrong and missing.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1e400".to_owned()),
        Just("\"2026-01-02T03:04:05.123456789Z\"".to_owned()),
        Just("\"2026-13-02T03:04:05Z\"".to_owned()),
        Just("\"+262143-12-31T23:59:59Z\"".to_owned()),
        "[0-9a-fA-F]{0,18}".prop_map(|s| format!("\"{s}\"")),
        "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("{\"\":\"x\"}".to_owned()),
        Just("{\"k\":1}".to_owned()),
        Just("{\"sled\":\"00\",\"event_id\":1}".to_owned()),
        Just("[]".to_owned()),
    ]
}

/// An object with an entry's keys (some repeated, some missing) and arbitrary values.
fn entry_json() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &[
        "type",
        "story_id",
        "from_stage",
        "to_stage",
        "pipeline_event",
        "run",
        "from",
        "to",
        "known_lost",
        "idempotency_key",
        "origin",
        "metadata",
        "at",
        "other",
    ];
    let kind = prop_oneof![
        Just("\"transition\""),
        Just("\"gap\""),
        Just("\"unclean\""),
        Just("\"Gap\""),
        Just("7"),
    ];
    (
        kind,
        prop::collection::vec((0..KEYS.len(), field_value()), 0..14),
        any::<bool>(),
    )
        .prop_map(|(kind, fields, type_last)| {
            let mut parts: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{}\":{v}", KEYS[k]))
                .collect();
            let tag = format!("\"type\":{kind}");
            if type_last {
                parts.push(tag);
            } else {
                parts.insert(0, tag);
            }
            format!("{{{}}}", parts.join(","))
        })
}

/// A row of a valid op, then some bytes of it changed.
fn mutated_record() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..4,
        1u64..4,
        prop::collection::vec(any::<[u8; 32]>(), 0..3),
        prop_oneof![
            Just(br#"{"type":"gap","run":1,"from":3,"to":9,"at":"2026-01-02T03:04:05Z"}"#.to_vec()),
            Just(br#"{"type":"gap","run":1,"from":9,"to":3,"at":"2026-01-02T03:04:05Z"}"#.to_vec()),
            prop::collection::vec(any::<u8>(), 0..20),
        ],
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    )
        .prop_map(|(k, seq, deps, payload, flips)| {
            let key = SigningKey::from_bytes(&[k; 32]);
            let op = Op {
                author: AuthorId::from(&key.verifying_key()),
                seq,
                lamport: seq,
                deps: deps.into_iter().map(OpId).collect(),
                payload,
            }
            .sign(&key);
            let rec = OpRecord::new(&op, false);
            let mut flat = rec.id.as_bytes().to_vec();
            flat.extend_from_slice(rec.author.as_bytes());
            flat.extend_from_slice(&rec.seq.to_be_bytes());
            flat.push(u8::from(rec.evidence));
            flat.push(rec.payload.len() as u8);
            flat.extend_from_slice(rec.payload.as_bytes());
            flat.extend_from_slice(&rec.bytes);
            for (at, xor) in flips {
                let i = at % flat.len();
                flat[i] ^= xor;
            }
            flat
        })
}

proptest! {
    #![proptest_config(cases(512))]

    /// `entry_payload` on entry-shaped JSON.
    #[test]
    fn entry_payload_json(json in entry_json()) {
        fuzz::entry_payload(json.as_bytes());
    }

    /// `entry_payload` on arbitrary bytes.
    #[test]
    fn entry_payload_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        fuzz::entry_payload(&bytes);
    }

    /// `stored_record` on mutated rows of valid ops.
    #[test]
    fn stored_record_mutated(bytes in mutated_record()) {
        fuzz::record_bytes(&bytes);
    }
}
