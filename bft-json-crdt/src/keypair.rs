//! [`KeyPair`]: a signing key prepared for signing many ops.

use ed25519_dalek::{Signer, SigningKey};

use crate::ids::AuthorId;

/// An Ed25519 signing key prepared for signing many ops: its author id is computed
/// once, and with the `aws-lc` feature (on by default) signatures are made by AWS-LC.
///
/// Why two implementations: signing is most of the CPU an append costs, and
/// AWS-LC's Ed25519 (formally verified s2n-bignum assembly on x86-64 and AArch64)
/// signs about 1.8 × as fast as `ed25519-dalek`'s portable arithmetic (one core of
/// the x86-64 development machine: 8 µs against 15). Ed25519
/// signatures are deterministic (RFC 8032), so both produce the very same bytes: the
/// feature changes speed, never output, and builds without a C compiler can turn it
/// off (`default-features = false`) and sign with `ed25519-dalek`.
pub struct KeyPair {
    key: SigningKey,
    author: AuthorId,
    #[cfg(feature = "aws-lc")]
    fast: Option<aws_lc_rs::signature::Ed25519KeyPair>,
}

impl KeyPair {
    /// Prepares `key` for signing.
    pub fn new(key: SigningKey) -> Self {
        let author = AuthorId::from(&key.verifying_key());
        #[cfg(feature = "aws-lc")]
        let fast = {
            let seed = zeroize::Zeroizing::new(key.to_bytes());
            match aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_slice()) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    // Cannot happen for a 32-byte seed; sign with ed25519-dalek then.
                    tracing::warn!(error = %e, "AWS-LC refused the key; signing with ed25519-dalek");
                    None
                }
            }
        };
        KeyPair {
            key,
            author,
            #[cfg(feature = "aws-lc")]
            fast,
        }
    }

    /// The author id (public key) of the ops this key signs.
    pub fn author(&self) -> AuthorId {
        self.author
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        #[cfg(feature = "aws-lc")]
        if let Some(fast) = &self.fast
            && let Ok(sig) = fast.try_sign(msg)
            && let Ok(bytes) = <[u8; 64]>::try_from(sig.as_ref())
        {
            return bytes;
        }
        self.key.sign(msg).to_bytes()
    }
}

impl From<SigningKey> for KeyPair {
    fn from(key: SigningKey) -> Self {
        KeyPair::new(key)
    }
}

impl Clone for KeyPair {
    fn clone(&self) -> Self {
        KeyPair::new(self.key.clone())
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("KeyPair")
            .field("author", &self.author)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whichever implementation signs, the signature is ed25519-dalek's, byte
        /// for byte, and verifies.
        #[test]
        fn signs_like_dalek(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let key = SigningKey::from_bytes(&seed);
            let pair = KeyPair::new(key.clone());
            let sig = pair.sign(&msg);
            prop_assert_eq!(sig, key.sign(&msg).to_bytes());
            prop_assert!(key.verifying_key().verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok());
            prop_assert_eq!(pair.author(), AuthorId::from(&key.verifying_key()));
        }
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn aws_lc_takes_every_key() {
        for seed in [[0u8; 32], [0xff; 32], [9; 32]] {
            assert!(KeyPair::new(SigningKey::from_bytes(&seed)).fast.is_some());
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let pair = KeyPair::new(SigningKey::from_bytes(&[7; 32]));
        let shown = format!("{pair:?}");
        assert!(shown.contains("author"));
        assert!(!shown.contains(&hex::encode([7u8; 32])));
    }
}
