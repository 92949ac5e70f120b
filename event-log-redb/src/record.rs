//! The record: how one [`OpRecord`] is laid out as the value of the `ops` table.
//!
//! The layout is documented in the crate docs ("On-disk format"). [`decode`] checks
//! every length and never panics: damage is a [`StoreError::Corrupt`] naming the
//! position and the field. [`decode_v1`] reads the records of format version 1, for
//! the migration only.

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, Position, StoreError};

/// The version byte this build writes and reads.
pub(crate) const RECORD_VERSION: u8 = 2;
/// The version byte of format version 1's records (read by the migration only).
pub(crate) const RECORD_VERSION_1: u8 = 1;
/// Flag bit: the op is equivocation evidence.
const FLAG_EVIDENCE: u8 = 0b0000_0001;
/// Flag bit: a story follows the lamport.
const FLAG_STORY: u8 = 0b0000_0010;
/// Flag bit: an idempotency key follows the story (or the lamport).
const FLAG_KEY: u8 = 0b0000_0100;
/// Every flag bit a record of [`RECORD_VERSION`] may set.
const FLAGS: u8 = FLAG_EVIDENCE | FLAG_STORY | FLAG_KEY;
/// Bytes before the optional story: version, flags, id, author, seq, lamport.
const HEADER_LEN: usize = 1 + 1 + 32 + 32 + 8 + 8;

/// The largest record redb stores as one value (its `MAX_VALUE_LENGTH`, 3 GiB).
/// Checked before a request reaches the writer, so an oversized op fails only its
/// own append, never a whole group commit.
const MAX_RECORD_LEN: usize = 3 * 1024 * 1024 * 1024;

/// Where a position's corruption is reported.
pub(crate) fn location(position: u64) -> String {
    format!("position {}", Position(position))
}

/// Encodes a record. Fails with [`StoreError::Invalid`] if it would exceed what redb
/// stores in one value.
pub(crate) fn encode(r: &OpRecord) -> Result<Vec<u8>, StoreError> {
    let story = r.story.as_deref().map(str::as_bytes);
    let key = r.key.as_deref().map(str::as_bytes);
    let total = [
        HEADER_LEN,
        story.map_or(0, |s| 4usize.saturating_add(s.len())),
        key.map_or(0, |k| 4usize.saturating_add(k.len())),
        4,
        r.payload.len(),
        4,
        r.bytes.len(),
    ]
    .into_iter()
    .fold(0usize, usize::saturating_add);
    if total > MAX_RECORD_LEN {
        return Err(StoreError::Invalid {
            message: format!(
                "op {}: a record of {total} bytes exceeds the {MAX_RECORD_LEN}-byte limit of a redb value",
                r.id
            ),
        });
    }
    let mut flags = 0;
    if r.evidence {
        flags |= FLAG_EVIDENCE;
    }
    if story.is_some() {
        flags |= FLAG_STORY;
    }
    if key.is_some() {
        flags |= FLAG_KEY;
    }
    let mut out = Vec::with_capacity(total);
    out.push(RECORD_VERSION);
    out.push(flags);
    out.extend_from_slice(r.id.as_bytes());
    out.extend_from_slice(r.author.as_bytes());
    out.extend_from_slice(&r.seq.to_be_bytes());
    out.extend_from_slice(&r.lamport.to_be_bytes());
    for field in [story, key].into_iter().flatten() {
        put_field(&mut out, field);
    }
    put_field(&mut out, r.payload.as_bytes());
    put_field(&mut out, &r.bytes);
    Ok(out)
}

/// Appends a length (u32 BE) and the bytes. Every length fits in u32: the whole
/// record is below `MAX_RECORD_LEN` < `u32::MAX`, checked before.
fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// A cursor over a record that reports short reads as corruption.
struct Reader<'a> {
    rest: &'a [u8],
    position: u64,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::corrupt(location(self.position), detail)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(self.corrupt(format!(
                "record truncated: {what} needs {n} bytes, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u64(&mut self, what: &str) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array::<8>(what)?))
    }

    /// A length-prefixed field (u32 BE length, then the bytes).
    fn field(&mut self, what: &str) -> Result<&'a [u8], StoreError> {
        let len = u32::from_be_bytes(self.array::<4>(&format!("{what} length"))?) as usize;
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 field.
    fn text(&mut self, what: &str) -> Result<String, StoreError> {
        let raw = self.field(what)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.corrupt(format!("{what} is not UTF-8: {e}"))),
        }
    }

    /// Fails unless the whole record was read.
    fn end(&self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "{} trailing bytes after the record",
                self.rest.len()
            )))
        }
    }
}

/// Decodes the record stored at `position`.
pub(crate) fn decode(position: u64, raw: &[u8]) -> Result<OpRecord, StoreError> {
    let mut rd = Reader {
        rest: raw,
        position,
    };
    let [version] = rd.array::<1>("version")?;
    if version != RECORD_VERSION {
        return Err(rd.corrupt(format!(
            "record version {version}, this build reads version {RECORD_VERSION}"
        )));
    }
    let [flags] = rd.array::<1>("flags")?;
    if flags & !FLAGS != 0 {
        return Err(rd.corrupt(format!("unknown record flags {flags:#010b}")));
    }
    let id = OpId(rd.array::<32>("id")?);
    let author = AuthorId(rd.array::<32>("author")?);
    let seq = rd.u64("seq")?;
    let lamport = rd.u64("lamport")?;
    let story = match flags & FLAG_STORY {
        0 => None,
        _ => Some(rd.text("story")?),
    };
    let key = match flags & FLAG_KEY {
        0 => None,
        _ => Some(rd.text("idempotency key")?),
    };
    let payload = rd.text("payload")?;
    let bytes = rd.field("op bytes")?.to_vec();
    rd.end()?;
    Ok(OpRecord {
        id,
        author,
        seq,
        payload,
        bytes,
        evidence: flags & FLAG_EVIDENCE != 0,
        lamport,
        story,
        key,
    })
}

/// A record of format version 1: everything but the index columns, which the
/// migration computes from the op bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordV1 {
    pub(crate) id: OpId,
    pub(crate) author: AuthorId,
    pub(crate) seq: u64,
    pub(crate) evidence: bool,
    pub(crate) payload: String,
    pub(crate) bytes: Vec<u8>,
}

/// Decodes a record of format version 1 stored at `position` (version byte 1;
/// flags with bit 0 only; id, author, seq; payload and bytes each after a u32 BE
/// length), for the migration.
pub(crate) fn decode_v1(position: u64, raw: &[u8]) -> Result<RecordV1, StoreError> {
    let mut rd = Reader {
        rest: raw,
        position,
    };
    let [version] = rd.array::<1>("version")?;
    if version != RECORD_VERSION_1 {
        return Err(rd.corrupt(format!(
            "record version {version} in a store of format version 1"
        )));
    }
    let [flags] = rd.array::<1>("flags")?;
    if flags & !FLAG_EVIDENCE != 0 {
        return Err(rd.corrupt(format!("unknown record flags {flags:#010b}")));
    }
    let id = OpId(rd.array::<32>("id")?);
    let author = AuthorId(rd.array::<32>("author")?);
    let seq = rd.u64("seq")?;
    let payload = rd.text("payload")?;
    let bytes = rd.field("op bytes")?.to_vec();
    rd.end()?;
    Ok(RecordV1 {
        id,
        author,
        seq,
        evidence: flags & FLAG_EVIDENCE != 0,
        payload,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_log_core::StoreErrorKind;

    fn sample(story: Option<&str>, key: Option<&str>) -> OpRecord {
        OpRecord {
            id: OpId([7; 32]),
            author: AuthorId([9; 32]),
            seq: 42,
            payload: r#"{"k":"v"}"#.into(),
            bytes: vec![1, 2, 3, 4, 5],
            evidence: true,
            lamport: 0x0102_0304_0506_0708,
            story: story.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    fn samples() -> Vec<OpRecord> {
        vec![
            sample(None, None),
            sample(Some("story-1"), None),
            sample(None, Some("k-9")),
            sample(Some("s"), Some("k")),
            sample(Some(""), Some("")),
        ]
    }

    /// A record decodes to exactly what was encoded, the index columns included
    /// (an empty story or key is not no story or key).
    #[test]
    fn round_trip() {
        for r in samples() {
            assert_eq!(decode(1, &encode(&r).unwrap()).unwrap(), r);
        }
    }

    /// Every truncation, every extension, a bad version and unknown flags are
    /// corruption naming the position, never a panic; a cut field is named.
    #[test]
    fn damage_is_corrupt() {
        for r in samples() {
            let raw = encode(&r).unwrap();
            for n in 0..raw.len() {
                let e = decode(5, &raw[..n]).unwrap_err();
                assert_eq!(e.kind(), StoreErrorKind::Corrupt, "truncated to {n}");
                assert!(e.to_string().contains("#5"), "{e}");
            }
            let mut long = raw.clone();
            long.push(0);
            assert_eq!(
                decode(5, &long).unwrap_err().kind(),
                StoreErrorKind::Corrupt
            );
            for version in [0, 1, 3] {
                let mut bad = raw.clone();
                bad[0] = version;
                assert_eq!(decode(5, &bad).unwrap_err().kind(), StoreErrorKind::Corrupt);
            }
            let mut bad = raw;
            bad[1] |= 0b1000;
            let e = decode(5, &bad).unwrap_err();
            assert!(e.to_string().contains("flags"), "{e}");
        }
        let raw = encode(&sample(Some("story-1"), Some("k-9"))).unwrap();
        for (cut, field) in [(HEADER_LEN - 3, "lamport"), (HEADER_LEN + 6, "story")] {
            let e = decode(5, &raw[..cut]).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        let mut bad = raw.clone();
        bad[HEADER_LEN + 4] = 0xff;
        let e = decode(5, &bad).unwrap_err();
        assert!(e.to_string().contains("story is not UTF-8"), "{e}");
        let mut bad = raw;
        bad[HEADER_LEN + 4 + 7 + 4] = 0xff;
        let e = decode(5, &bad).unwrap_err();
        assert!(
            e.to_string().contains("idempotency key is not UTF-8"),
            "{e}"
        );
    }

    /// A format-1 record (as format 1 wrote it) decodes for the migration; a
    /// format-2 record or damage does not, as corruption.
    #[test]
    fn version_1_records_decode_for_the_migration() {
        let r = sample(None, None);
        let mut v1 = vec![1, 1];
        v1.extend_from_slice(r.id.as_bytes());
        v1.extend_from_slice(r.author.as_bytes());
        v1.extend_from_slice(&r.seq.to_be_bytes());
        put_field(&mut v1, r.payload.as_bytes());
        put_field(&mut v1, &r.bytes);
        let old = decode_v1(3, &v1).unwrap();
        assert_eq!(
            (old.id, old.author, old.seq, old.evidence),
            (r.id, r.author, r.seq, true)
        );
        assert_eq!(
            (old.payload.as_str(), &old.bytes[..]),
            (&r.payload[..], &r.bytes[..])
        );
        for n in 0..v1.len() {
            let e = decode_v1(3, &v1[..n]).unwrap_err();
            assert_eq!(e.kind(), StoreErrorKind::Corrupt, "truncated to {n}");
        }
        assert_eq!(
            decode_v1(3, &encode(&r).unwrap()).unwrap_err().kind(),
            StoreErrorKind::Corrupt
        );
        assert_eq!(decode(3, &v1).unwrap_err().kind(), StoreErrorKind::Corrupt);
    }
}
