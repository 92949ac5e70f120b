//! Fuzz entry points: the body of the `cargo fuzz` target `redb_record` in the
//! repository's `fuzz/` directory, also run as a proptest property by `cargo test`,
//! so that both exercise the same code. Not part of the API: it panics when the
//! crate breaks a promise on the given input, which is what a fuzzer looks for.

use event_log_core::{IndexColumns, OpRecord, StoreErrorKind};

use crate::record;

/// Decodes `data` as the value of the `ops` table (the record decoder every read
/// uses) and checks what decoding promises: damage is [`StoreErrorKind::Corrupt`]
/// naming the position, never a panic; a decoded record is the only encoding of
/// itself; and it then passes the checks every store's rows pass
/// ([`event_log_core::fuzz::stored_record`]). The same bytes as a record of format
/// version 1 (what the migration reads) are damage or a record, never a panic.
/// Returns whether the record decoded and its row is trusted.
pub fn record(data: &[u8]) -> bool {
    const POSITION: u64 = 17;
    match record::decode_v1(POSITION, data) {
        Ok(old) => {
            let _ = IndexColumns::of_bytes(&old.bytes);
        }
        Err(e) => {
            assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
            assert!(e.to_string().contains("#17"), "{e}");
        }
    }
    match record::decode(POSITION, data) {
        Ok(rec) => {
            let again = record::encode(&rec).expect("a decoded record re-encodes");
            assert_eq!(again, data, "a second encoding of a record was accepted");
            event_log_core::fuzz::stored_record(&rec)
        }
        Err(e) => {
            assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
            assert!(e.to_string().contains("#17"), "{e}");
            false
        }
    }
}

/// The value the store writes for `rec` (for seed corpora).
pub fn encode(rec: &OpRecord) -> Vec<u8> {
    record::encode(rec).expect("a record below redb's value limit")
}
