//! Key files are PKCS#8 PEM, the format `openssl genpkey -algorithm ed25519` writes:
//! keys move between this crate and the tools operators already use, both ways.
//! Key files of older versions (64 hex characters) still load.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use event_log::keys::{self, KeyError};

/// Runs openssl; the machine's openssl is a test dependency (Debian package
/// `openssl`), so its absence fails the test with that said.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("these tests need the `openssl` command (Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The raw 32-byte public key openssl reads from a private key file.
fn openssl_public_key(path: &Path) -> Vec<u8> {
    let der = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    der[der.len() - 32..].to_vec()
}

fn private(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn created_keys_are_pkcs8_pem_that_openssl_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    let key = keys::create(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    assert!(text.ends_with("-----END PRIVATE KEY-----\n"), "{text}");
    assert_eq!(
        openssl_public_key(&path),
        key.verifying_key().to_bytes(),
        "openssl sees the same key"
    );
    assert_eq!(keys::load(&path).unwrap().to_bytes(), key.to_bytes());
}

#[test]
fn keys_generated_by_openssl_load_as_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openssl.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        path.to_str().unwrap(),
    ]);
    private(&path);
    let key = keys::load(&path).unwrap();
    assert_eq!(
        key.verifying_key().to_bytes().to_vec(),
        openssl_public_key(&path)
    );
}

#[test]
fn key_files_of_older_versions_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.key");
    let key = keys::generate();
    let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    private(&path);
    assert_eq!(keys::load(&path).unwrap().to_bytes(), key.to_bytes());
}

/// A PEM file cut short is a typed error naming the path, never echoing the file.
#[test]
fn truncated_pem_is_malformed_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    keys::create(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.lines().nth(1).unwrap().to_owned();
    std::fs::write(&path, &text[..text.len() - 30]).unwrap();
    private(&path);
    let err = keys::load(&path).err().unwrap();
    assert!(matches!(&err, KeyError::Malformed { .. }), "{err:?}");
    let (msg, dbg) = (err.to_string(), format!("{err:?}"));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("PKCS#8"), "says what is expected: {msg}");
    assert!(
        !msg.contains(&body) && !dbg.contains(&body),
        "leaks the key"
    );
}

/// A passphrase-protected key is refused saying so (there is no passphrase to
/// give), not as a garbled file.
#[test]
fn encrypted_pem_is_refused_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-aes256",
        "-pass",
        "pass:secret",
        "-out",
        path.to_str().unwrap(),
    ]);
    private(&path);
    let err = keys::load(&path).err().unwrap();
    assert!(matches!(&err, KeyError::Encrypted { .. }), "{err:?}");
    assert!(err.to_string().contains("openssl pkey"), "{err}");
}

/// Another algorithm's key is refused naming the expectation.
#[test]
fn a_non_ed25519_key_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ec.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path.to_str().unwrap(),
    ]);
    private(&path);
    let err = keys::load(&path).err().unwrap();
    assert!(matches!(&err, KeyError::Malformed { .. }), "{err:?}");
}
