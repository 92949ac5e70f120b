//! `evlog` exits with a code that says what went wrong, so scripts can tell a
//! missing store from damage from refused ops: 0 ok, 2 usage, 3 store unreachable or
//! missing, 4 damage found, 5 refused ops, 6 budget missed, 1 anything else.

mod common;

use common::{quiet as evlog, run};

/// A usage error is clap's 2: no store given, an unknown flag.
#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(evlog().args(["show"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(evlog().args(["verify", "--store", "memory:", "--no-such-flag"]));
    assert_eq!(code, 2, "{err}");
}

/// A store that is missing, unreachable or named by a bad URL exits 3, for every
/// command that opens one.
#[test]
fn missing_unreachable_or_bad_stores_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("sqlite://{}", dir.path().join("ok.db").display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &ok]));
    assert_eq!(code, 0, "{err}");
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let missing_redb = format!("redb://{}", dir.path().join("missing.redb").display());
    for url in [
        missing.as_str(),
        missing_redb.as_str(),
        "mysql://x/y",
        "sqlite://",
        "postgres://u:secret@127.0.0.1:1/db",
    ] {
        for args in [
            vec!["show", "--store", url],
            vec!["verify", "--store", url],
            vec!["tail", "--for-secs", "1", "--store", url],
            vec!["sync", "--from", url, "--to", &ok],
        ] {
            let (code, out, err) = run(evlog().args(&args));
            assert_eq!(code, 3, "{args:?}: {out}{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}

/// Damage found by verify exits 4 (a tampered row; a truncated tail), a clean store 0.
#[test]
fn verify_exits_4_on_damage_and_on_missing_acknowledged_ops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let url = format!("sqlite://{}", path.display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(run(evlog().args(["verify", "--store", &url])).0, 0);

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
    assert_eq!(code, 4, "a truncated tail is damage: {out}{err}");

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE ops SET payload = replace(payload, 'story-', 'stolen-') WHERE position = 3",
        [],
    )
    .unwrap();
    drop(conn);
    let (code, out, err) = run(evlog().args(["verify", "--json", "--store", &url]));
    assert_eq!(code, 4, "an edited row is damage: {out}{err}");
}

/// Any other failure exits 1: a key file that exists already.
#[test]
fn other_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    assert_eq!(run(evlog().arg("keygen").arg("--out").arg(&key)).0, 0);
    let (code, _, err) = run(evlog().arg("keygen").arg("--out").arg(&key));
    assert_eq!(code, 1, "{err}");
}

/// The codes are documented in `--help`.
#[test]
fn help_documents_the_exit_codes() {
    let (code, out, _) = run(evlog().arg("--help"));
    assert_eq!(code, 0);
    for line in [
        "0  ok",
        "1  any other failure",
        "2  usage error",
        "3  store unreachable or missing",
        "4  damage found",
        "5  refused ops",
        "6  budget missed",
    ] {
        assert!(out.contains(line), "--help lacks `{line}`:\n{out}");
    }
}
