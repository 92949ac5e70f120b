//! Sealing small records with a sled's key (replay checkpoints, watermarks): the
//! signature covers a domain tag, the sled's id and the record's body, so a seal of
//! one kind or one sled is never taken for another.

use bft_json_crdt::SigningKey;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::event::SledId;

/// Length of a seal (an Ed25519 signature).
pub(crate) const SEAL_LEN: usize = 64;

/// What is signed: SHA-256 of the tag, the sled's id and the body.
fn message(tag: &[u8], sled: &SledId, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(sled.as_bytes());
    h.update(body);
    h.finalize().into()
}

/// Appends the seal of `out` (its body so far) by `key` under `tag`.
pub(crate) fn seal(tag: &[u8], key: &SigningKey, out: &mut Vec<u8>) {
    let sled = SledId::from(&key.verifying_key());
    let sig = key.sign(&message(tag, &sled, out));
    out.extend_from_slice(&sig.to_bytes());
}

/// Splits `bytes` into body and seal and checks the seal is `sled`'s under `tag`.
/// `None` for anything else (too short, another sled's, altered).
pub(crate) fn open<'a>(tag: &[u8], sled: &SledId, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let split = bytes.len().checked_sub(SEAL_LEN)?;
    let (body, sig) = bytes.split_at(split);
    let sig = Signature::from_bytes(sig.try_into().ok()?);
    VerifyingKey::from_bytes(sled.as_bytes())
        .ok()?
        .verify_strict(&message(tag, sled, body), &sig)
        .ok()?;
    Some(body)
}
