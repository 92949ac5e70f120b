//! Sled keys: load one from a key file, or create it.
//!
//! A key file holds the 32-byte Ed25519 secret seed as 64 hex characters and a
//! newline. It is created with mode 0600 (owner read/write only). Keys are never
//! logged; only the public [`SledId`] is.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use event_log_core::{SigningKey, SledId};

/// Why a key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold 64 hex characters.
    #[error("key file {path} is not a sled key (expected 64 hex characters)")]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The file already exists (when creating a new key).
    #[error("key file {path} already exists; refusing to overwrite a sled key")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
}

/// A fresh random key.
pub fn generate() -> SigningKey {
    use rand_core::RngCore;
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// The sled id of a key.
pub fn sled_id(key: &SigningKey) -> SledId {
    SledId::from(&key.verifying_key())
}

/// Loads the key at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| KeyError::Malformed {
        path: path.to_owned(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a new key at `path` (mode 0600), refusing to overwrite an existing file.
pub fn create(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let key = generate();
    writeln!(file, "{}", hex::encode(key.to_bytes())).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::info!(sled = %sled_id(&key), path = %path.display(), "created sled key");
    Ok(key)
}

/// Loads the key at `path`, creating it first if the file does not exist.
pub fn load_or_create(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    match create(path) {
        Ok(k) => Ok(k),
        Err(KeyError::Exists { .. }) => load(path),
        Err(e) => Err(e),
    }
}
