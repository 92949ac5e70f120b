//! Key files are crash-safe: a key file is either absent or whole, concurrent
//! creators agree on one key, and a damaged or exposed key file is a typed error
//! naming the path (issue 11, item 12).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use event_log::keys::{self, KeyError};

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `text` to `path` with mode 0600, as a key file would have.
fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    chmod(path, 0o600);
}

/// Many threads calling `load_or_create` on one path at once all get the same key:
/// none overwrites another's file, none reads a file still being written.
#[test]
fn concurrent_load_or_create_agrees_on_one_key() {
    const THREADS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = Arc::new(dir.path().join(format!("sled-{round}.key")));
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    keys::load_or_create(&*path).map(|k| k.to_bytes())
                })
            })
            .collect();
        let got: Vec<[u8; 32]> = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"))
            })
            .collect();
        assert!(
            got.iter().all(|k| *k == got[0]),
            "round {round}: concurrent creators got different keys"
        );
        assert_eq!(
            keys::load(&*path).unwrap().to_bytes(),
            got[0],
            "round {round}: the file holds the key they got"
        );
    }
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".key"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An empty key file (left by a crash of an older version between creating the
/// file and writing it) is a typed error naming the path, for `load` and for
/// `load_or_create`, never a panic nor a new key over it.
#[test]
fn empty_key_file_is_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    write_private(&path, "");
    for err in [
        keys::load(&path).err().unwrap(),
        keys::load_or_create(&path).err().unwrap(),
    ] {
        match &err {
            KeyError::Empty { path: p } => assert_eq!(p, &path),
            other => panic!("expected KeyError::Empty, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("empty"), "{msg}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"", "the file is left alone");
}

/// A truncated key file is a typed error naming the path, and the message never
/// echoes what the file holds (it is secret).
#[test]
fn truncated_key_file_is_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    let whole = hex_of(&keys::generate().to_bytes());
    let part = &whole[..31];
    write_private(&path, part);
    let err = keys::load(&path).err().unwrap();
    assert!(
        matches!(&err, KeyError::Malformed { path: p, .. } if p == &path),
        "{err:?}"
    );
    let (msg, dbg) = (err.to_string(), format!("{err:?}"));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("31"), "says how long it is: {msg}");
    assert!(!msg.contains(part) && !dbg.contains(part), "leaks the file");
    // Still a 64-character line, but not hex.
    write_private(&path, &format!("{}\n", "z".repeat(64)));
    assert!(matches!(keys::load(&path), Err(KeyError::Malformed { .. })));
}

/// A key file others can read is refused, with the path, the mode and the fix;
/// after `chmod 600` it loads.
#[cfg(unix)]
#[test]
fn group_or_world_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    let key = keys::create(&path).unwrap();
    for mode in [0o640, 0o604, 0o660, 0o644, 0o610, 0o601] {
        chmod(&path, mode);
        for err in [
            keys::load(&path).err().unwrap(),
            keys::load_or_create(&path).err().unwrap(),
        ] {
            match &err {
                KeyError::Permissions { path: p, mode: m } => {
                    assert_eq!(p, &path);
                    assert_eq!(*m & 0o777, mode);
                }
                other => panic!("mode {mode:o}: expected Permissions, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("{mode:o}")), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
            let secret = hex_of(&key.to_bytes());
            assert!(!msg.contains(&secret) && !format!("{err:?}").contains(&secret));
        }
    }
    chmod(&path, 0o600);
    assert_eq!(keys::load(&path).unwrap().to_bytes(), key.to_bytes());
    chmod(&path, 0o400);
    assert_eq!(keys::load(&path).unwrap().to_bytes(), key.to_bytes());
}

/// A new key file is created owner-only.
#[cfg(unix)]
#[test]
fn created_key_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/sled.key");
    keys::create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(matches!(
        keys::create(&path),
        Err(KeyError::Exists { path: p }) if p == path
    ));
}

/// Temporary files left by a crashed creator (any name, even empty or partial)
/// change nothing: the key is created and loaded as if they were not there.
#[test]
fn leftover_temp_files_do_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key");
    let pid = std::process::id();
    for (name, text) in [
        (format!(".sled.key.{pid}.0000000000000000.tmp"), ""),
        (format!(".sled.key.{pid}.0000000000000001.tmp"), "abc"),
        (".sled.key.1.ffffffffffffffff.tmp".to_owned(), "0123"),
        ("sled.key.tmp".to_owned(), ""),
    ] {
        write_private(&dir.path().join(name), text);
    }
    let a = keys::load_or_create(&path).unwrap();
    let b = keys::load_or_create(&path).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(keys::load(&path).unwrap().to_bytes(), a.to_bytes());
}

const CHILD_DIR: &str = "EVENT_LOG_TEST_KEY_CHILD_DIR";

/// Run as a child process by [`killed_creator_leaves_no_partial_key_file`]: creates
/// key files until killed. Without the variable, does nothing.
#[test]
fn child_creates_keys_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::write(dir.join("started"), b"").unwrap();
    for i in 0.. {
        keys::create(dir.join(format!("k{i}.key"))).unwrap();
    }
}

/// A process killed (SIGKILL) while creating key files leaves each either absent
/// or whole: every key file it left loads, and `load_or_create` works on all of
/// them and on the next one.
#[cfg(unix)]
#[test]
fn killed_creator_leaves_no_partial_key_file() {
    use std::time::{Duration, Instant};
    for run in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_creates_keys_until_killed", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.path().join("started").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100 + 37 * run));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let mut keys_seen = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".key")
                && stem.starts_with('k')
            {
                let path = dir.path().join(&name);
                let a = keys::load(&path).unwrap_or_else(|e| panic!("run {run}: {e}"));
                let b = keys::load_or_create(&path).unwrap();
                assert_eq!(a.to_bytes(), b.to_bytes());
                keys_seen += 1;
            }
        }
        assert!(keys_seen > 0, "run {run}: the child created no key");
        let next = dir.path().join(format!("k{keys_seen}.key"));
        let k = keys::load_or_create(&next).unwrap();
        assert_eq!(keys::load(&next).unwrap().to_bytes(), k.to_bytes());
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
