//! The body of the `cargo fuzz` target `sqlite_row` (the repository's `fuzz/`
//! directory; the row decoder of `event-log-sqlite`) as proptest properties, so that
//! `cargo test` runs the same code on every change, and on every file of the
//! target's seed corpus.

use std::path::PathBuf;

use event_log_sqlite::fuzz;
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

/// Every seed of `sqlite_row` is a stored op that decodes and is trusted.
#[test]
fn sqlite_row_corpus() {
    for (path, bytes) in corpus("sqlite_row") {
        assert!(fuzz::row(&bytes), "{}", path.display());
    }
}

/// The input [`fuzz::row_input`] writes for a stored op, with its index columns
/// (stories, sentinels without one, an idempotency key), decodes and is trusted; the
/// same input cut after the first seven columns (a seed written before the index
/// columns) too, its columns filled from the bytes.
#[test]
fn sqlite_row_input_round_trips() {
    use event_log_conformance::fixture::{chain, key, records, transition};
    use event_log_core::{Entry, OpRecord};
    let mut recs = records(&chain(&key(1), 5, &[]));
    let keyed = bft_json_crdt::Op {
        author: Default::default(),
        seq: 1,
        lamport: 1,
        deps: Vec::new(),
        payload: Entry::Transition(transition(3).with_idempotency_key("k-1")).to_payload(),
    }
    .sign(&key(2));
    recs.push(OpRecord::new(&keyed, false));
    assert!(recs.iter().any(|r| r.story.is_none()) && recs.iter().any(|r| r.key.is_some()));
    for (i, rec) in recs.iter().enumerate() {
        let input = fuzz::row_input(i as u64 + 1, rec);
        assert!(fuzz::row(&input), "{rec:?}");
        let base = fuzz::row_input(
            i as u64 + 1,
            &OpRecord {
                story: None,
                key: None,
                ..rec.clone()
            },
        );
        let cut = base.len() - 9 - 2;
        assert!(fuzz::row(&base[..cut]), "{rec:?} without index columns");
    }
}

/// A seed with some bytes changed, maybe cut or extended.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus("sqlite_row").into_iter().map(|(_, b)| b).collect();
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        prop::option::of(any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(mut bytes, flips, cut, tail)| {
            for (at, xor) in flips {
                let i = at % bytes.len();
                bytes[i] ^= xor;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #![proptest_config(cases(512))]

    /// `sqlite_row` on mutated seeds.
    #[test]
    fn sqlite_row_mutated(bytes in mutated_seed()) {
        let _ = fuzz::row(&bytes);
    }

    /// `sqlite_row` on arbitrary bytes.
    #[test]
    fn sqlite_row_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = fuzz::row(&bytes);
    }
}
