//! Decoding stored rows and op payloads: the checks a row passes before it is
//! trusted (see [`decode_record`]), shared by open's replay, `verify`, followers
//! and merges.

use bft_json_crdt::{RawOp, Rejected, SignedOp};

use super::EventLogConfig;
use crate::damage::DamageKind;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::store::{OpRecord, Position};

/// Decodes one stored row and checks it against its own columns: the id is the hash
/// of the bytes, the author, seq and readable payload columns say what the signed
/// bytes say, the lamport, story and idempotency-key index columns say what the
/// bytes and the entry say, the author is a member, and the payload is a valid
/// entry. The
/// signature and causal links are checked by the replica.
pub(crate) fn decode_record(
    rec: &OpRecord,
    config: &EventLogConfig,
) -> std::result::Result<(SignedOp, Entry), DamageKind> {
    let op =
        RawOp::decode_claimed(rec.id, &rec.bytes, &config.limits).map_err(DamageKind::Rejected)?;
    let mismatch = |column, detail| Err(DamageKind::RowMismatch { column, detail });
    if op.author() != rec.author {
        return mismatch(
            "author",
            format!("row says {}, bytes say {}", rec.author, op.author()),
        );
    }
    if op.seq() != rec.seq {
        return mismatch(
            "seq",
            format!("row says {}, bytes say {}", rec.seq, op.seq()),
        );
    }
    if rec.payload.as_bytes() != op.payload()
        && rec.payload != String::from_utf8_lossy(op.payload())
    {
        return mismatch(
            "payload",
            format!(
                "row shows {} bytes that differ from the {} signed ones",
                rec.payload.len(),
                op.payload().len()
            ),
        );
    }
    if op.lamport() != rec.lamport {
        return mismatch(
            "lamport",
            format!("row says {}, bytes say {}", rec.lamport, op.lamport()),
        );
    }
    if let Some(members) = &config.members
        && !members.allows(&op.author())
    {
        return Err(DamageKind::Rejected(Rejected::NotMember {
            id: op.id(),
            author: op.author(),
        }));
    }
    let entry = parse_entry(&op).map_err(|e| match e {
        Error::BadPayload { detail, .. } => DamageKind::BadPayload(detail),
        other => DamageKind::BadPayload(other.to_string()),
    })?;
    if rec.story.as_deref() != entry.story_id() {
        return mismatch(
            "story",
            format!(
                "row says {:?}, the signed entry says {:?}",
                rec.story,
                entry.story_id()
            ),
        );
    }
    let key = match &entry {
        Entry::Transition(t) => t.idempotency_key.as_deref(),
        Entry::Gap(_) | Entry::Unclean(_) => None,
    };
    if rec.key.as_deref() != key {
        return mismatch(
            "key",
            format!("row says {:?}, the signed entry says {key:?}", rec.key),
        );
    }
    Ok((op, entry))
}

/// Parses and validates the entry an op carries.
pub(crate) fn parse_entry(op: &SignedOp) -> Result<Entry> {
    let entry = Entry::from_payload(op.payload()).map_err(|e| Error::BadPayload {
        id: op.id(),
        detail: e.to_string(),
    })?;
    entry.validate().map_err(|detail| Error::BadPayload {
        id: op.id(),
        detail,
    })?;
    Ok(entry)
}

/// Decodes many rows, spread over the cores for large pages; results in page order.
pub(crate) fn decode_page(
    page: &[(Position, OpRecord)],
    config: &EventLogConfig,
) -> Vec<std::result::Result<(SignedOp, Entry), DamageKind>> {
    const MIN_PARALLEL: usize = 512;
    let decode = |(_, rec): &(Position, OpRecord)| decode_record(rec, config);
    if bft_json_crdt::cores() < 2 || page.len() < MIN_PARALLEL {
        return page.iter().map(decode).collect();
    }
    use rayon::prelude::*;
    page.par_iter()
        .with_min_len(MIN_PARALLEL / 4)
        .map(decode)
        .collect()
}
