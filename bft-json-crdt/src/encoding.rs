//! The canonical, versioned binary encoding of an op.
//!
//! ```text
//! offset  size      field
//! 0       1         version (= 1)
//! 1       32        author (Ed25519 public key)
//! 33      8         seq      (u64, big-endian, >= 1)
//! 41      8         lamport  (u64, big-endian, >= 1)
//! 49      4         n_deps   (u32, big-endian)
//! 53      32*n      deps     (op ids, strictly ascending: sorted and de-duplicated)
//! ..      4         len      (u32, big-endian)
//! ..      len       payload
//! ..      64        signature (wire form only)
//! ```
//!
//! `id = SHA-256(DOMAIN_TAG ‖ encoding without signature)`, and the signature is
//! Ed25519 over the 32-byte id. Exactly one encoding exists per op: deps must be
//! strictly ascending and no bytes may trail, so the id of an op is unique.

use sha2::{Digest, Sha256};

use crate::ids::{AuthorId, OpId};
use crate::layout::DEP_LEN;
use crate::limits::Limits;
use crate::rejected::DecodeError;

/// The only encoding version this crate writes and reads.
pub const VERSION: u8 = 1;

/// Domain separation tag hashed before the encoding, so an op id can never collide
/// with a hash of some other structure.
pub const DOMAIN_TAG: &[u8] = b"bft-json-crdt/op/v1\0";

pub use crate::layout::{FIXED_LEN, SIG_LEN};

/// The fields of an op as decoded, borrowed from the encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Author public key.
    pub author: AuthorId,
    /// 1-based per-author sequence number.
    pub seq: u64,
    /// Lamport timestamp.
    pub lamport: u64,
    /// Dependencies, strictly ascending.
    pub deps: Vec<OpId>,
    /// Range of the payload within the encoding.
    pub payload: std::ops::Range<usize>,
    /// Signature bytes.
    pub sig: [u8; SIG_LEN],
    /// The encoding without the signature (what the id hashes).
    pub unsigned: &'a [u8],
}

/// Writes the unsigned encoding of the given fields into `out`.
///
/// `deps` must already be strictly ascending; [`crate::Op`] guarantees it.
pub fn encode_unsigned(
    out: &mut Vec<u8>,
    author: &AuthorId,
    seq: u64,
    lamport: u64,
    deps: &[OpId],
    payload: &[u8],
) {
    out.reserve(FIXED_LEN + DEP_LEN * deps.len() + payload.len());
    out.push(VERSION);
    out.extend_from_slice(author.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&lamport.to_be_bytes());
    out.extend_from_slice(&(deps.len() as u32).to_be_bytes());
    for d in deps {
        out.extend_from_slice(d.as_bytes());
    }
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The id of an unsigned encoding.
pub fn hash_unsigned(unsigned: &[u8]) -> OpId {
    let mut h = Sha256::new();
    h.update(DOMAIN_TAG);
    h.update(unsigned);
    OpId(h.finalize().into())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                field,
                at: self.at,
                len: self.bytes.len(),
            }),
        }
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
}

/// Refuses `actual` above `limit` as [`DecodeError::TooLarge`] for `what`.
fn at_most(what: &'static str, actual: usize, limit: usize) -> Result<(), DecodeError> {
    if actual > limit {
        return Err(DecodeError::TooLarge {
            what,
            limit,
            actual,
        });
    }
    Ok(())
}

/// Decodes a signed encoding, enforcing `limits` before allocating anything
/// proportional to the input.
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, DecodeError> {
    at_most("op", bytes.len(), limits.max_encoded_len())?;
    let mut r = Reader { bytes, at: 0 };
    let version = r.array::<1>("version")?[0];
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let author = AuthorId(r.array("author")?);
    let seq = r.u64("seq")?;
    if seq == 0 {
        return Err(DecodeError::ZeroField("seq"));
    }
    let lamport = r.u64("lamport")?;
    if lamport == 0 {
        return Err(DecodeError::ZeroField("lamport"));
    }
    let n_deps = r.u32("n_deps")? as usize;
    at_most("deps", n_deps, limits.max_deps)?;
    let mut deps = Vec::with_capacity(n_deps.min(bytes.len() / 32));
    for _ in 0..n_deps {
        let d = OpId(r.array("deps")?);
        if let Some(prev) = deps.last()
            && *prev >= d
        {
            return Err(DecodeError::NonCanonicalDeps);
        }
        deps.push(d);
    }
    let len = r.u32("payload length")? as usize;
    at_most("payload", len, limits.max_payload)?;
    let start = r.at;
    r.take(len, "payload")?;
    let payload = start..r.at;
    let unsigned_end = r.at;
    let sig = r.array::<SIG_LEN>("signature")?;
    if r.at != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            extra: bytes.len() - r.at,
        });
    }
    Ok(Decoded {
        author,
        seq,
        lamport,
        deps,
        payload,
        sig,
        unsigned: &bytes[..unsigned_end],
    })
}
