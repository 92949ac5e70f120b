//! The `evlog` binary end to end: the demo, and verify on a tampered store.

use std::process::Command;

fn evlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evlog"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("evlog runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `evlog demo` prints the timeline with the gap line and exits 0, and is re-runnable
/// on the same store (events accumulate, ids continue).
#[test]
fn demo_prints_the_timeline_with_the_gap_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let key = dir.path().join("sled.key");
    let (code, out, err) = run(evlog().args(["demo", "--store", &url, "--key"]).arg(&key));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("events between 3 and 10 were dropped"),
        "{out}"
    );
    assert!(out.contains("every transition accounted for"), "{out}");
    assert!(out.contains("restarted: 9 events replayed"), "{out}");
    let (code, out, err) = run(evlog().args(["demo", "--store", &url, "--key"]).arg(&key));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(9 events already)"), "{out}");
    assert!(out.contains("restarted: 18 events replayed"), "{out}");
    // show reads it back, as lines and as JSON.
    let (code, out, _) = run(evlog().args(["show", "--store", &url]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 18);
    let (code, out, _) =
        run(evlog().args(["show", "--json", "--story", "story-1", "--store", &url]));
    assert_eq!(code, 0);
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["entry"]["story_id"], "story-1");
    }
}

/// `evlog verify` passes a clean store and fails, naming the op, on a tampered row.
#[test]
fn verify_names_a_tampered_op_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let url = format!("sqlite://{}", path.display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(evlog().args(["verify", "--store", &url]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("9 ops: 9 valid, 0 damaged"), "{out}");

    // Flip one byte of the 5th op's payload inside its signed bytes.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (id, mut bytes): (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT id, bytes FROM ops WHERE position = 5", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let n = bytes.len();
    bytes[n - 70] ^= 0x01;
    conn.execute(
        "UPDATE ops SET bytes = ?1 WHERE position = 5",
        rusqlite::params![bytes],
    )
    .unwrap();
    drop(conn);

    let (code, out, _) = run(evlog().args(["verify", "--store", &url]));
    assert_ne!(code, 0, "verify must fail on damage: {out}");
    assert!(out.contains("damaged"), "{out}");
    assert!(
        out.contains(&hex::encode(&id)),
        "the damaged op is named: {out}"
    );
    assert!(out.contains("position 5"), "{out}");
    // Opening the log refuses the store too, with one clear line.
    let (code, _, err) = run(evlog().args(["show", "--store", &url]));
    assert_ne!(code, 0);
    assert!(err.starts_with("evlog: error:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Errors are one line and a non-zero exit: unknown scheme, missing server.
#[test]
fn bad_urls_are_one_clear_line() {
    let (code, _, err) = run(evlog().args(["show", "--store", "mysql://x/y"]));
    assert_ne!(code, 0);
    assert!(err.contains("unknown store URL scheme `mysql`"), "{err}");
    let (code, _, err) =
        run(evlog().args(["show", "--store", "postgres://u:secret@127.0.0.1:1/db"]));
    assert_ne!(code, 0);
    assert!(!err.contains("secret"), "no password in errors: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// keygen writes a 0600 key and refuses to overwrite it.
#[test]
fn keygen_creates_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let (code, out, _) = run(evlog().arg("keygen").arg("--out").arg(&key));
    assert_eq!(code, 0);
    assert_eq!(out.trim().len(), 64, "prints the sled id: {out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, _, err) = run(evlog().arg("keygen").arg("--out").arg(&key));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
}

/// sync copies a store into another; a second run copies nothing.
#[test]
fn sync_between_sqlite_and_redb_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let a = format!("sqlite://{}", dir.path().join("a.db").display());
    let b = format!("redb://{}", dir.path().join("b.redb").display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &a]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(evlog().args(["sync", "--from", &a, "--to", &b]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("9 ops sent, 9 applied"), "{out}");
    let (code, out, _) = run(evlog().args(["sync", "--from", &a, "--to", &b]));
    assert_eq!(code, 0);
    assert!(out.contains("0 ops sent"), "{out}");
    let (_, show_a, _) = run(evlog().args(["show", "--store", &a]));
    let (_, show_b, _) = run(evlog().args(["show", "--store", &b]));
    assert_eq!(show_a, show_b);
}
