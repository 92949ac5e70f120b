//! The bodies of the `cargo fuzz` targets `op_decode` and `replica_ingest` (the
//! repository's `fuzz/` directory) as proptest properties, so that `cargo test` runs
//! the same code on every change, and on every file of the targets' seed corpus.

mod common;

use std::path::PathBuf;

use bft_json_crdt::fuzz;
use common::*;
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

/// Every seed of `op_decode` passes; at least one of them is a valid op.
#[test]
fn op_decode_corpus() {
    let files = corpus("op_decode");
    let mut decoded = 0;
    for (path, bytes) in &files {
        eprintln!("{}", path.display());
        decoded += usize::from(fuzz::op_decode(bytes));
    }
    // The plain encodings decode; the claimed-id forms only through `RawOp`.
    assert!(
        decoded >= files.len() / 2,
        "{decoded} of {} seeds decode",
        files.len()
    );
}

/// Every seed of `replica_ingest` passes, and each makes the replica apply ops.
#[test]
fn replica_ingest_corpus() {
    for (path, bytes) in corpus("replica_ingest") {
        let applied = fuzz::replica_ingest(&bytes);
        assert!(applied > 0, "{}: nothing applied", path.display());
    }
}

/// A valid op's encoding, then some bytes changed and maybe cut or extended: what
/// a fuzzer's mutations of a seed look like.
fn mutated_op() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        1u64..5,
        1u64..5,
        prop::collection::vec(any::<[u8; 32]>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        prop::option::of(any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(k, seq, lamport, deps, payload, flips, cut, tail)| {
            let op = bft_json_crdt::Op {
                author: author(&key(k)),
                seq,
                lamport,
                deps: deps.into_iter().map(bft_json_crdt::OpId).collect(),
                payload,
            }
            .sign(&key(k));
            let mut bytes = op.bytes().to_vec();
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
    #![proptest_config(config(512))]

    /// `op_decode` on mutated valid encodings, with and without a claimed id in front.
    #[test]
    fn op_decode_mutated(bytes in mutated_op(), claimed in any::<[u8; 32]>()) {
        fuzz::op_decode(&bytes);
        let mut with_claim = claimed.to_vec();
        with_claim.extend_from_slice(&bytes);
        fuzz::op_decode(&with_claim);
    }

    /// `op_decode` on arbitrary bytes.
    #[test]
    fn op_decode_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzz::op_decode(&bytes);
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// `replica_ingest` on arbitrary bytes: every byte string is an op graph.
    #[test]
    fn replica_ingest_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        fuzz::replica_ingest(&bytes);
    }
}
