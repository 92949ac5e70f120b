//! The record: how one [`OpRecord`] is laid out as the value of the `ops` table.
//!
//! The layout is documented in the crate docs ("On-disk format"). [`decode`] checks
//! every length and never panics: damage is a [`StoreError::Corrupt`] naming the
//! position.

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, Position, StoreError};

/// The version byte this build writes and reads.
pub(crate) const RECORD_VERSION: u8 = 1;
/// Flag bit: the op is equivocation evidence.
const FLAG_EVIDENCE: u8 = 0b0000_0001;
/// Bytes before the payload: version, flags, id, author, seq, payload length.
const HEADER_LEN: usize = 1 + 1 + 32 + 32 + 8 + 4;

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
    let total = (HEADER_LEN + 4)
        .saturating_add(r.payload.len())
        .saturating_add(r.bytes.len());
    if total > MAX_RECORD_LEN {
        return Err(StoreError::Invalid {
            message: format!(
                "op {}: a record of {total} bytes exceeds the {MAX_RECORD_LEN}-byte limit of a redb value",
                r.id
            ),
        });
    }
    // Both fit in u32: each is below MAX_RECORD_LEN < u32::MAX.
    let payload_len = r.payload.len() as u32;
    let bytes_len = r.bytes.len() as u32;
    let mut out = Vec::with_capacity(total);
    out.push(RECORD_VERSION);
    out.push(if r.evidence { FLAG_EVIDENCE } else { 0 });
    out.extend_from_slice(r.id.as_bytes());
    out.extend_from_slice(r.author.as_bytes());
    out.extend_from_slice(&r.seq.to_be_bytes());
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(r.payload.as_bytes());
    out.extend_from_slice(&bytes_len.to_be_bytes());
    out.extend_from_slice(&r.bytes);
    Ok(out)
}

/// A cursor over a record that reports short reads as corruption.
struct Reader<'a> {
    rest: &'a [u8],
    position: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(StoreError::corrupt(
                location(self.position),
                format!(
                    "record truncated: {what} needs {n} bytes, {} left",
                    self.rest.len()
                ),
            ));
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
}

/// Decodes the record stored at `position`.
pub(crate) fn decode(position: u64, raw: &[u8]) -> Result<OpRecord, StoreError> {
    let corrupt = |detail: String| StoreError::corrupt(location(position), detail);
    let mut rd = Reader {
        rest: raw,
        position,
    };
    let [version] = rd.array::<1>("version")?;
    if version != RECORD_VERSION {
        return Err(corrupt(format!(
            "record version {version}, this build reads version {RECORD_VERSION}"
        )));
    }
    let [flags] = rd.array::<1>("flags")?;
    if flags & !FLAG_EVIDENCE != 0 {
        return Err(corrupt(format!("unknown record flags {flags:#010b}")));
    }
    let id = OpId(rd.array::<32>("id")?);
    let author = AuthorId(rd.array::<32>("author")?);
    let seq = u64::from_be_bytes(rd.array::<8>("seq")?);
    let payload_len = u32::from_be_bytes(rd.array::<4>("payload length")?) as usize;
    let payload = rd.take(payload_len, "payload")?;
    let payload = std::str::from_utf8(payload)
        .map_err(|e| corrupt(format!("payload is not UTF-8: {e}")))?
        .to_owned();
    let bytes_len = u32::from_be_bytes(rd.array::<4>("bytes length")?) as usize;
    let bytes = rd.take(bytes_len, "op bytes")?.to_vec();
    if !rd.rest.is_empty() {
        return Err(corrupt(format!(
            "{} trailing bytes after the record",
            rd.rest.len()
        )));
    }
    Ok(OpRecord {
        id,
        author,
        seq,
        payload,
        bytes,
        evidence: flags & FLAG_EVIDENCE != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_log_core::StoreErrorKind;

    fn sample() -> OpRecord {
        OpRecord {
            id: OpId([7; 32]),
            author: AuthorId([9; 32]),
            seq: 42,
            payload: r#"{"k":"v"}"#.into(),
            bytes: vec![1, 2, 3, 4, 5],
            evidence: true,
        }
    }

    /// A record decodes to exactly what was encoded.
    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(decode(1, &encode(&r).unwrap()).unwrap(), r);
    }

    /// Every truncation, every extension and a bad version are corruption, never a panic.
    #[test]
    fn damage_is_corrupt() {
        let raw = encode(&sample()).unwrap();
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
        let mut bad = raw;
        bad[0] = 2;
        assert_eq!(decode(5, &bad).unwrap_err().kind(), StoreErrorKind::Corrupt);
    }
}
