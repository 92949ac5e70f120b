//! The `evlog` binary end to end: the demo, and verify on a tampered store.

mod common;

use common::{evlog, run};

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
        // The story's transitions, and the gap sentinels of their sled.
        let story = &v["entry"]["story_id"];
        assert!(story == "story-1" || v["entry"]["type"] == "gap", "{line}");
    }
}

/// `evlog demo --key` keeps the sled's watermark beside its key: once the store is
/// restored from a backup that lacks acknowledged ops, the next run refuses to append
/// (it would sign those seqs again), names the loss, and writes nothing.
#[test]
fn demo_with_a_key_refuses_a_store_restored_from_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&live).unwrap();
    let url = format!("sqlite://{}", live.join("demo.db").display());
    let key = dir.path().join("sled.key");
    let demo = || run(evlog().args(["demo", "--store", &url, "--key"]).arg(&key));
    let (code, _, err) = demo();
    assert_eq!(code, 0, "{err}");
    copy_files(&live, &backup);
    let (code, out, err) = demo();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restarted: 18 events replayed"), "{out}");
    assert!(
        dir.path().join("sled.key.mark").exists(),
        "the mark is beside the key"
    );

    copy_files(&backup, &live);
    let (code, out, err) = demo();
    assert_ne!(code, 0, "a rolled-back store must be refused:\n{out}");
    assert!(
        err.contains("up to seq 9") && err.contains("up to seq 18") && err.contains("backup"),
        "{err}"
    );
    let (code, out, _) = run(evlog().args(["show", "--store", &url]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 9, "nothing was written:\n{out}");
}

/// Replaces the files of `to` by copies of those of `from` (a database and its WAL).
fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(to).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
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
    assert_eq!(code, 4, "verify must exit 4 on damage: {out}");
    assert!(out.contains("damaged"), "{out}");
    assert!(
        out.contains(&hex::encode(&id)),
        "the damaged op is named: {out}"
    );
    assert!(out.contains("position 5"), "{out}");
    // Reading the log keeps the damaged op (and the ops that build on it) out of
    // the view and says how many; the intact ones are shown.
    let (code, out, err) = run(evlog()
        .args(["show", "--store", &url])
        .env("EVLOG_LOG", "off"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        err.contains("5 row(s) kept out of the view: 1 damaged, 4 depending"),
        "{err}"
    );
}

/// Editing an op's readable payload column in SQL (what a SQL shell shows is then
/// not what was signed) makes `verify` fail naming the row; before, only the signed
/// bytes were checked and the store passed.
#[test]
fn verify_fails_on_an_edited_readable_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let id: Vec<u8> = conn
        .query_row("SELECT id FROM ops WHERE position = 3", [], |r| r.get(0))
        .unwrap();
    let changed = conn
        .execute(
            "UPDATE ops SET payload = replace(payload, 'story-', 'stolen-') WHERE position = 3",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (code, out, err) = run(evlog().args(["verify", "--store", &url]));
    assert_eq!(code, 4, "verify must fail on an edited payload: {out}{err}");
    assert!(out.contains("row_mismatch"), "{out}");
    assert!(out.contains(&hex::encode(&id)), "{out}");
    assert!(out.contains("position 3"), "{out}");
    let (code, out, _) = run(evlog().args(["verify", "--json", "--store", &url]));
    assert_eq!(code, 4);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The edited row, and the ops after it that depend on it.
    assert_eq!(v["damaged"], 7, "{out}");
    assert_eq!(v["problems"][0]["position"], 3, "{out}");
    assert_eq!(v["problems"][0]["reason"], "row_mismatch", "{out}");
}

/// A store that lost its newest rows (a truncated tail) while a signed checkpoint
/// still records them fails `verify`, which names the sled and the seqs; before,
/// every row left was valid and the store passed.
#[test]
fn verify_reports_acknowledged_ops_missing_from_a_truncated_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (seq, author): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, author FROM ops ORDER BY position DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    conn.execute(
        "DELETE FROM ops WHERE author = ?1 AND seq > ?2",
        rusqlite::params![author, seq - 2],
    )
    .unwrap();
    drop(conn);
    let (code, out, err) = run(evlog().args(["verify", "--store", &url]));
    assert_eq!(code, 4, "verify must fail on a truncated tail: {out}{err}");
    assert!(out.contains("0 damaged"), "no row is damaged: {out}");
    assert!(
        out.contains(&format!("missing ops of sled {}", hex::encode(&author))),
        "{out}"
    );
    assert!(
        out.contains(&format!("up to seq {}, but", seq - 2))
            && out.contains(&format!("up to seq {seq}")),
        "{out}"
    );
}

/// Reading commands never create a store: a mistyped path is an error naming it,
/// the exit is non-zero, and no file appears (before, `show` created an empty
/// database there and printed "0 events").
#[test]
fn reading_commands_on_a_missing_store_fail_naming_it_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("sqlite://{}", dir.path().join("ok.db").display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &ok]));
    assert_eq!(code, 0, "{err}");
    let sub = dir.path().join("x");
    std::fs::create_dir(&sub).unwrap();
    for (scheme, file) in [("sqlite", "missing.db"), ("redb", "missing.redb")] {
        let path = sub.join(file);
        let url = format!("{scheme}://{}", path.display());
        let shown = path.display().to_string();
        for args in [
            vec!["show", "--store", &url],
            vec!["verify", "--store", &url],
            vec!["tail", "--for-secs", "1", "--store", &url],
            vec!["sync", "--from", &url, "--to", &ok],
        ] {
            let (code, out, err) = run(evlog().args(&args));
            assert_eq!(code, 3, "{args:?}: {out}{err}");
            assert!(err.contains("not found"), "{args:?}: {err}");
            assert!(err.contains(&shown), "{args:?} names the path: {err}");
            assert_eq!(
                std::fs::read_dir(&sub).unwrap().count(),
                0,
                "{args:?} created a file"
            );
        }
    }
}

/// Reading commands write nothing to a store: show, verify and sync --from leave
/// the file as it was.
#[test]
fn reading_commands_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let url = format!("sqlite://{}", path.display());
    let other = format!("redb://{}", dir.path().join("o.redb").display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&path).unwrap();
    for args in [
        vec!["show", "--store", &url],
        vec!["verify", "--store", &url],
        vec!["tail", "--for-secs", "1", "--store", &url],
        vec!["sync", "--from", &url, "--to", &other],
    ] {
        let (code, out, err) = run(evlog().args(&args));
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{args:?} wrote to it");
    }
}

/// Errors are one line and a non-zero exit: unknown scheme, missing server.
#[test]
fn bad_urls_are_one_clear_line() {
    let (code, _, err) = run(evlog().args(["show", "--store", "mysql://x/y"]));
    assert_eq!(code, 3);
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
