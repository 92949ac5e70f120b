//! Signing: [`Op`] → [`Draft`] (encoded and identified) → [`SignedOp`], one by one
//! or many at once over rayon's threads.

use ed25519_dalek::{Signer, SigningKey};

use super::signed::SignedOp;
use super::unsigned::Op;
use crate::encoding;
use crate::ids::{AuthorId, OpId};
use crate::keypair::KeyPair;

/// Fewest ops [`Draft::sign_all`] spreads over several cores: below it, handing the work
/// to the pool costs more than it saves.
const MIN_PARALLEL_SIGN: usize = 8;

impl Op {
    /// Signs the op with `key`. The author becomes the key's public key: the signer
    /// is the author, always.
    ///
    /// To sign many ops with one key, prepare it once as a [`KeyPair`] and use
    /// [`Op::draft`] or [`Op::sign_all`]: faster, same bytes.
    pub fn sign(self, key: &SigningKey) -> SignedOp {
        let draft = self.draft_for(AuthorId::from(&key.verifying_key()));
        let sig = key.sign(draft.id.as_bytes()).to_bytes();
        draft.finish(sig)
    }

    /// Encodes the op as `key`'s (the author becomes the key's public key) and
    /// computes its id, without signing yet: the id does not cover the signature, so
    /// a chain of drafts can be linked first and signed afterwards, in parallel.
    pub fn draft(self, key: &KeyPair) -> Draft {
        self.draft_for(key.author())
    }

    fn draft_for(self, author: AuthorId) -> Draft {
        let mut op = self.canonical();
        op.author = author;
        let mut bytes = Vec::new();
        encoding::encode_unsigned(
            &mut bytes,
            &op.author,
            op.seq,
            op.lamport,
            &op.deps,
            &op.payload,
        );
        let id = encoding::hash_unsigned(&bytes);
        Draft { op, bytes, id }
    }

    /// Signs many ops with one key, spreading the signatures over the available
    /// cores (rayon's pool) when there are enough of them. Same result as signing one
    /// by one.
    pub fn sign_all(ops: Vec<Op>, key: &KeyPair) -> Vec<SignedOp> {
        // Every op is drafted for this key right here: no key check needed.
        let drafts = ops.into_iter().map(|op| op.draft(key)).collect();
        Draft::sign_checked(drafts, key, Draft::helpers())
    }

    /// Attaches an arbitrary signature without signing, keeping the author as set.
    ///
    /// For tests and tools that must build forged or damaged ops; a replica rejects
    /// the result unless the signature happens to be valid.
    pub fn with_signature(self, sig: [u8; 64]) -> SignedOp {
        let author = self.author;
        self.draft_for(author).finish(sig)
    }
}

/// A draft was handed to another key than the one it was drafted for.
///
/// Its id (which later drafts may already name as their dependency) covers its
/// author, so another key cannot sign it without changing that id: nothing is signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("draft {id} was drafted for author {drafted_for}, not for the signing key {key}")]
pub struct WrongKey {
    /// The draft's id.
    pub id: OpId,
    /// The author it was drafted for.
    pub drafted_for: AuthorId,
    /// The signing key's author id.
    pub key: AuthorId,
}

/// Drafts and the slots for their signatures: one share of [`Draft::sign_all`]'s work.
type Share<'a> = (&'a [Draft], &'a mut [[u8; 64]]);

/// An op encoded and identified, not yet signed: made by [`Op::draft`].
#[derive(Debug, Clone)]
pub struct Draft {
    op: Op,
    /// The unsigned encoding, with room for the signature.
    bytes: Vec<u8>,
    id: OpId,
}

impl Draft {
    /// The id the op has once signed.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The author the op was drafted for.
    pub fn author(&self) -> AuthorId {
        self.op.author
    }

    /// 1-based per-author sequence number.
    pub fn seq(&self) -> u64 {
        self.op.seq
    }

    /// Lamport timestamp.
    pub fn lamport(&self) -> u64 {
        self.op.lamport
    }

    /// Signs the draft with the key it was drafted for ([`Op::draft`]).
    pub fn sign(self, key: &KeyPair) -> Result<SignedOp, WrongKey> {
        self.check_key(key)?;
        let sig = key.sign(self.id.as_bytes());
        Ok(self.finish(sig))
    }

    /// Signs many drafts with the key they were drafted for, spreading the
    /// signatures over rayon's threads when there are enough of them. Same result as
    /// signing one by one; nothing is signed if any draft is another key's.
    ///
    /// The calling thread signs too, taking chunks from a shared counter with
    /// helpers spawned on rayon's pool, so it does not sit idle while the pool's
    /// threads wake up; it returns once every chunk is signed and every helper has
    /// started (a helper that starts late finds nothing left and ends at once).
    pub fn sign_all(drafts: Vec<Draft>, key: &KeyPair) -> Result<Vec<SignedOp>, WrongKey> {
        for d in &drafts {
            d.check_key(key)?;
        }
        Ok(Self::sign_checked(drafts, key, Self::helpers()))
    }

    /// Helpers [`Draft::sign_all`] spawns besides the calling thread.
    fn helpers() -> usize {
        rayon::current_num_threads()
            .min(crate::parallel::cores())
            .saturating_sub(1)
    }

    /// [`Draft::sign_all`] once every draft is known to be `key`'s, with `helpers`
    /// helpers.
    fn sign_checked(drafts: Vec<Draft>, key: &KeyPair, helpers: usize) -> Vec<SignedOp> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Mutex, PoisonError};
        if helpers == 0 || drafts.len() < MIN_PARALLEL_SIGN {
            return drafts
                .into_iter()
                .map(|d| {
                    let sig = key.sign(d.id.as_bytes());
                    d.finish(sig)
                })
                .collect();
        }
        let mut sigs = vec![[0u8; 64]; drafts.len()];
        {
            // A few chunks per thread, so a thread that starts late takes less.
            let chunk = (drafts.len() / (4 * (helpers + 1))).max(MIN_PARALLEL_SIGN / 2);
            let parts: Vec<Mutex<Share<'_>>> = drafts
                .chunks(chunk)
                .zip(sigs.chunks_mut(chunk))
                .map(Mutex::new)
                .collect();
            let next = AtomicUsize::new(0);
            let work = || {
                while let Some(part) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut part = part.lock().unwrap_or_else(PoisonError::into_inner);
                    let (ds, out) = &mut *part;
                    for (d, sig) in ds.iter().zip(out.iter_mut()) {
                        *sig = key.sign(d.id.as_bytes());
                    }
                }
            };
            rayon::in_place_scope(|s| {
                for _ in 0..helpers.min(parts.len() - 1) {
                    s.spawn(|_| work());
                }
                work();
            });
        }
        drafts
            .into_iter()
            .zip(sigs)
            .map(|(d, sig)| d.finish(sig))
            .collect()
    }

    fn check_key(&self, key: &KeyPair) -> Result<(), WrongKey> {
        if self.op.author == key.author() {
            Ok(())
        } else {
            Err(WrongKey {
                id: self.id,
                drafted_for: self.op.author,
                key: key.author(),
            })
        }
    }

    fn finish(self, sig: [u8; 64]) -> SignedOp {
        let Draft { op, mut bytes, id } = self;
        bytes.extend_from_slice(&sig);
        SignedOp::from_parts(id, op, sig, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drafts(key: &KeyPair, n: u64) -> Vec<Draft> {
        (1..=n)
            .map(|seq| {
                Op {
                    author: AuthorId::default(),
                    seq,
                    lamport: seq,
                    deps: Vec::new(),
                    payload: seq.to_be_bytes().to_vec(),
                }
                .draft(key)
            })
            .collect()
    }

    /// The parallel path gives the one-by-one result whatever the helpers, on a
    /// 1-core machine too, and from inside a pool of one thread (where the helpers
    /// can only run once the caller waits).
    #[test]
    fn sign_all_with_helpers_matches_one_by_one() {
        let key = KeyPair::new(SigningKey::from_bytes(&[5; 32]));
        for n in [1, 7, 8, 9, 33, 200] {
            let want: Vec<SignedOp> = drafts(&key, n)
                .into_iter()
                .map(|d| d.sign(&key).expect("own key"))
                .collect();
            for helpers in [0, 1, 3] {
                assert_eq!(Draft::sign_checked(drafts(&key, n), &key, helpers), want);
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a pool");
            let got = pool.install(|| Draft::sign_checked(drafts(&key, n), &key, 2));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn another_key_signs_nothing() {
        let mine = KeyPair::new(SigningKey::from_bytes(&[5; 32]));
        let other = KeyPair::new(SigningKey::from_bytes(&[6; 32]));
        let d = drafts(&mine, 1).remove(0);
        let err = d.clone().sign(&other).expect_err("another key");
        assert_eq!(err.id, d.id());
        assert_eq!(err.drafted_for, mine.author());
        assert_eq!(err.key, other.author());
        let mut all = drafts(&mine, 20);
        all.push(drafts(&other, 21).remove(20));
        let err = Draft::sign_all(all, &mine).expect_err("one draft is another key's");
        assert_eq!(err.drafted_for, other.author());
    }
}
