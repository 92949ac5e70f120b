//! Fuzz entry points: the bodies of the `cargo fuzz` targets in the repository's
//! `fuzz/` directory, also run as proptest properties by `cargo test`, so that both
//! exercise the same code. Not part of the API: each function panics when the crate
//! breaks a promise on the given input, which is what a fuzzer looks for.

use crate::entry::Entry;
use crate::log::EventLogConfig;
use crate::log::decode::decode_record;
use crate::store::OpRecord;

/// Parses `data` as an op payload ([`Entry::from_payload`]) and checks what parsing
/// promises: a parsed entry validates or is refused without panicking, renders, is
/// what serde's derived `Deserialize` reads from the same bytes, and its payload
/// form parses back to the same entry. Returns whether `data` parsed.
pub fn entry_payload(data: &[u8]) -> bool {
    let fast = Entry::from_payload(data);
    let derived = serde_json::from_slice::<Entry>(data);
    let entry = match fast {
        Ok(entry) => entry,
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
    };
    if let Ok(d) = &derived {
        assert_eq!(d, &entry, "the two payload parsers disagree");
    }
    let _ = entry.validate();
    let _ = entry.to_string();
    let _ = (entry.at(), entry.story_id());
    let payload = entry.to_payload();
    let back = Entry::from_payload(&payload).expect("a written payload parses");
    assert_eq!(back, entry, "payload round trip changed the entry");
    true
}

/// Checks a record as a store decoded it, the way every store's rows are checked
/// before they are trusted (open's replay, `verify`, followers): the id is the hash
/// of the bytes and the columns say what the signed bytes say, or the row is
/// reported damaged — never a panic. Returns whether the row is trusted.
pub fn stored_record(rec: &OpRecord) -> bool {
    let config = EventLogConfig::default();
    match decode_record(rec, &config) {
        Ok((op, entry)) => {
            assert_eq!(op.id(), rec.id, "accepted a row whose id is not its bytes'");
            assert_eq!(op.author(), rec.author);
            assert_eq!(op.seq(), rec.seq);
            assert_eq!(op.bytes(), &rec.bytes[..]);
            assert!(entry.validate().is_ok(), "accepted an invalid entry");
            true
        }
        Err(kind) => {
            let _ = (kind.reason(), kind.to_string());
            false
        }
    }
}

/// Builds a record from `data` (id, author, seq, evidence flag, payload and op bytes
/// at offsets the bytes choose) and checks it with [`stored_record`]: the
/// store-independent half of decoding a row. Returns whether the row is trusted.
pub fn record_bytes(data: &[u8]) -> bool {
    if data.len() < 74 {
        return false;
    }
    let (head, rest) = data.split_at(74);
    let mut id = [0u8; 32];
    id.copy_from_slice(&head[..32]);
    let mut author = [0u8; 32];
    author.copy_from_slice(&head[32..64]);
    let seq = u64::from_be_bytes(head[64..72].try_into().expect("8 bytes"));
    let evidence = head[72] & 1 == 1;
    let split = usize::from(head[73]).min(rest.len());
    let (payload, bytes) = rest.split_at(split);
    // The lamport column: what the bytes say (where they are long enough), unless
    // the evidence byte's second bit asks for the seq instead (a mismatch, mostly).
    let lamport = match bytes.get(41..49) {
        Some(b) if head[72] & 2 == 0 => u64::from_be_bytes(b.try_into().expect("8 bytes")),
        _ => seq,
    };
    let entry = crate::Entry::from_payload(payload).ok();
    let rec = OpRecord {
        id: bft_json_crdt::OpId(id),
        author: bft_json_crdt::AuthorId(author),
        seq,
        payload: String::from_utf8_lossy(payload).into_owned(),
        bytes: bytes.to_vec(),
        evidence,
        lamport,
        story: entry.as_ref().and_then(|e| e.story_id().map(str::to_owned)),
        key: match entry {
            Some(crate::Entry::Transition(t)) => t.idempotency_key,
            _ => None,
        },
    };
    stored_record(&rec)
}
