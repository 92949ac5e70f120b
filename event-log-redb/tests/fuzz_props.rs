//! The body of the `cargo fuzz` target `redb_record` (the repository's `fuzz/`
//! directory; the record decoder of `event-log-redb`) as proptest properties, so that
//! `cargo test` runs the same code on every change, and on every file of the
//! target's seed corpus.

use std::path::PathBuf;

use event_log_redb::fuzz;
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

/// Every seed of `redb_record` is a stored op that decodes and is trusted.
#[test]
fn redb_record_corpus() {
    for (path, bytes) in corpus("redb_record") {
        assert!(fuzz::record(&bytes), "{}", path.display());
    }
}

/// A seed with some bytes changed, maybe cut or extended.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus("redb_record").into_iter().map(|(_, b)| b).collect();
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

    /// `redb_record` on mutated seeds.
    #[test]
    fn redb_record_mutated(bytes in mutated_seed()) {
        let _ = fuzz::record(&bytes);
    }

    /// `redb_record` on arbitrary bytes.
    #[test]
    fn redb_record_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = fuzz::record(&bytes);
    }
}
