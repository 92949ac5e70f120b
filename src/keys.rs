//! Sled keys: load one from a key file, or create it.
//!
//! A key file holds the Ed25519 private key as PKCS#8 PEM (RFC 8410), the format
//! `openssl genpkey -algorithm ed25519` writes and `openssl pkey` reads, so keys
//! move between this crate and the tools operators already use:
//!
//! ```text
//! -----BEGIN PRIVATE KEY-----
//! MC4CAQAwBQYDK2VwBCIEI…
//! -----END PRIVATE KEY-----
//! ```
//!
//! Key files of older versions (the 32-byte seed as 64 hex characters and a
//! newline) still load. A passphrase-protected PEM is refused
//! ([`KeyError::Encrypted`]): decrypt it with `openssl pkey`. A key file is created
//! with mode 0600 (owner read/write only), and a key file that its group or others
//! may read is refused. Keys are never logged, nor put in an error; only the public
//! [`SledId`] is, and every copy of the secret this module makes is wiped.
//!
//! # Crash safety
//! A key file is either absent or whole, never empty nor partial, whatever crashes
//! and whoever else creates it at the same time: [`create`] writes the key to a
//! temporary file in the same directory (`.NAME.PID.NONCE.tmp`, mode 0600), syncs
//! it, then hard-links it to the key's path, which fails if the path exists (so two
//! creators never overwrite one another: the loser gets [`KeyError::Exists`] and
//! [`load_or_create`] loads the winner's key), removes the temporary name and syncs
//! the directory. A crash can leave a temporary file behind; it is never read and
//! can be removed. The directory's file system must support hard links (every
//! local Unix file system does).
//!
//! Key files left by older versions, which wrote the key in place, can be empty or
//! truncated after a crash: loading them is a typed error naming the path
//! ([`KeyError::Empty`], [`KeyError::Malformed`]).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use event_log_core::{SigningKey, SledId};

/// Why a key could not be loaded or created. Never holds key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The file is not an Ed25519 private key in PKCS#8 PEM, nor an older key file
    /// (64 hex characters); it may be truncated.
    #[error(
        "key file {path} is not a sled key: expected an Ed25519 private key in PKCS#8 PEM \
         (as `openssl genpkey -algorithm ed25519` writes) or 64 hex characters, found {len} \
         bytes that are neither (truncated? another algorithm?)"
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// The file is empty: left by a crash of an older version between creating the
    /// key file and writing the key into it.
    #[error(
        "key file {path} is empty: a crash while it was being created left it so, before any \
         key was written or used. Remove it to create a new key (rm {path}), or restore the \
         sled's key from a backup"
    )]
    Empty {
        /// The key file.
        path: PathBuf,
    },
    /// The file's group or others may access it: the secret may have leaked, and
    /// it is not used.
    #[error(
        "key file {path} has mode {mode:o}: its group or others may read it, so it is refused. \
         Make it private with chmod 600 {path} (and consider the key exposed if others \
         could read it)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
    /// The file holds a passphrase-protected (encrypted) PKCS#8 key: a sled starts
    /// unattended, with no passphrase to give.
    #[error(
        "key file {path} is encrypted (a passphrase-protected PKCS#8 key): a sled has no \
         passphrase to give. Decrypt it into a private file: \
         openssl pkey -in {path} -out NEW_KEY && chmod 600 NEW_KEY"
    )]
    Encrypted {
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
    let key = SigningKey::from_bytes(&seed);
    wipe(&mut seed);
    key
}

/// The sled id of a key.
pub fn sled_id(key: &SigningKey) -> SledId {
    SledId::from(&key.verifying_key())
}

/// The longest key file read: a PKCS#8 PEM key is about 120 bytes, with its public
/// key and attributes a few hundred.
const MAX_LEN: usize = 1024;

/// Loads the key at `path`.
///
/// Refuses, with a typed error naming the path, a file that is empty, truncated or
/// otherwise not a key, and (on Unix) a key file whose group or others have any
/// permission on it (`mode & 0o077 != 0`).
pub fn load(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // The mode of the file read, not of whatever the path names later.
    let meta = file.metadata().map_err(io)?;
    let mut buf = [0u8; MAX_LEN + 1];
    let result = read_seed(file, &mut buf, path, meta.len());
    wipe(&mut buf);
    let mut seed = result?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            wipe(&mut seed);
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let key = SigningKey::from_bytes(&seed);
    wipe(&mut seed);
    Ok(key)
}

/// Reads the seed from `file` into `buf`.
fn read_seed(
    mut file: File,
    buf: &mut [u8; MAX_LEN + 1],
    path: &Path,
    len: u64,
) -> Result<[u8; 32], KeyError> {
    let malformed = |len| KeyError::Malformed {
        path: path.to_owned(),
        len,
    };
    if len > MAX_LEN as u64 {
        return Err(malformed(len));
    }
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(KeyError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    if n == 0 {
        return Err(KeyError::Empty {
            path: path.to_owned(),
        });
    }
    if n > MAX_LEN {
        return Err(malformed(n as u64));
    }
    let text = buf[..n].trim_ascii();
    if text.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(KeyError::Encrypted {
            path: path.to_owned(),
        });
    }
    if text.starts_with(b"-----BEGIN") {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        // The parsed key wipes itself when dropped.
        let pem = std::str::from_utf8(text).map_err(|_| malformed(n as u64))?;
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| malformed(n as u64))?;
        return Ok(key.to_bytes());
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text, &mut seed).map_err(|_| malformed(n as u64))?;
    Ok(seed)
}

/// Creates a new key at `path` (mode 0600), refusing to overwrite an existing file
/// ([`KeyError::Exists`]). Creates the directory if needed. Crash-safe: see the
/// [module docs](self).
pub fn create(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::Exists {
            path: path.to_owned(),
        });
    }
    let key = generate();
    let (temp, file) = create_temp(path).map_err(io)?;
    let written = write_key(file, &key).and_then(|()| std::fs::hard_link(&temp, path));
    // Whatever happened, the temporary name goes: on success the key file is
    // another name of the same file.
    let removed = std::fs::remove_file(&temp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    }
    if let Err(e) = removed {
        tracing::warn!(path = %temp.display(), error = %e, "cannot remove a temporary key file");
    }
    sync_dir(dir).map_err(io)?;
    tracing::info!(sled = %sled_id(&key), path = %path.display(), "created sled key");
    Ok(key)
}

/// Writes the key to `file` as PKCS#8 PEM and syncs it.
fn write_key(mut file: File, key: &SigningKey) -> std::io::Result<()> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    // PKCS#8 v1 (RFC 8410's OneAsymmetricKey without the public key): the form
    // OpenSSL writes and every version of it reads (OpenSSL 3.0 refuses the v2 form
    // with the public key that `SigningKey::to_pkcs8_pem` writes). Both the bytes
    // and the string wipe themselves when dropped.
    let bytes = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = bytes
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(std::io::Error::other)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()
}

/// Creates a new, private temporary file beside `path`, named so that no other
/// creator (thread or process) and no leftover of a crashed one uses the name.
pub(crate) fn create_temp(path: &Path) -> std::io::Result<(PathBuf, File)> {
    use rand_core::RngCore;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy();
    loop {
        let nonce = rand_core::OsRng.next_u64();
        let temp = path.with_file_name(format!(".{name}.{}.{nonce:016x}.tmp", std::process::id()));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes the names created or renamed in `dir` durable (Unix; elsewhere a no-op).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Overwrites a secret buffer (kept from being optimised away).
fn wipe<const N: usize>(buf: &mut [u8; N]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// Loads the key at `path`, creating it first if the file does not exist.
///
/// Safe to call concurrently from many threads or processes: they all get the one
/// key that the first to finish creating wrote.
pub fn load_or_create(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    match create(path) {
        Ok(k) => Ok(k),
        Err(KeyError::Exists { .. }) => load(path),
        Err(e) => Err(e),
    }
}
