//! `replica_ingest`: runs [`bft_json_crdt::fuzz::replica_ingest`] (the same body `cargo test` runs as a proptest property).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bft_json_crdt::fuzz::replica_ingest(data);
});
