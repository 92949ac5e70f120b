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

/// `count` transitions as JSON lines, for `evlog append`; `to` tells two runs apart.
fn transitions(count: usize, to: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                r#"{{"story_id":"s{i}","from_stage":"backlog","to_stage":"{to}","pipeline_event":"E"}}"#
            ) + "\n"
        })
        .collect()
}

/// Appends `lines` to `url` as the sled of `key`.
fn append(url: &str, key: &std::path::Path, lines: &str) {
    let file = key.with_extension("jsonl");
    std::fs::write(&file, lines).unwrap();
    let (code, _, err) = run(evlog()
        .args(["append", "--store", url, "--key"])
        .arg(key)
        .stdin(std::fs::File::open(&file).unwrap()));
    assert_eq!(code, 0, "{err}");
}

/// `sync` exits 5 when the target refuses ops: a sled whose key was copied to a second
/// machine forked its history there, and the target, which holds one fork, keeps
/// at most 256 ops of the other as equivocation evidence and refuses the rest. A
/// sync the target takes whole exits 0.
#[test]
fn sync_exits_5_when_the_target_refuses_ops() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (dir.path().join("k1"), dir.path().join("k2"));
    assert_eq!(run(evlog().arg("keygen").arg("--out").arg(&k1)).0, 0);
    std::fs::copy(&k1, &k2).unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let (a, b, fresh) = (url("a.db"), url("b.db"), url("fresh.db"));
    append(&a, &k1, &transitions(300, "coding"));
    append(&b, &k2, &transitions(300, "review"));

    let (code, out, err) = run(evlog().args(["sync", "--json", "--from", &a, "--to", &fresh]));
    assert_eq!(code, 0, "a target that takes every op: {out}{err}");

    let (code, out, err) = run(evlog().args(["sync", "--json", "--from", &a, "--to", &b]));
    assert_eq!(code, 5, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(report["refused"].as_u64().unwrap() >= 1, "{report}");
    assert!(err.contains("refused op"), "{err}");
}

/// `bench` exits 6 when a figure misses its budget: with every budget tightened a
/// millionfold each one is missed, and with every budget loosened as much the same
/// quick run exits 0 (so the 6 comes from the budgets, not from a failure).
#[test]
fn bench_exits_6_on_a_missed_budget() {
    let quick = ["bench", "--appends", "100", "--events", "200", "--json"];
    let (code, out, err) = run(evlog().args(quick).args(["--budget-scale", "1000000"]));
    assert_eq!(code, 0, "every budget loosened: {out}{err}");

    let (code, out, err) = run(evlog().args(quick).args(["--budget-scale", "0.000001"]));
    assert_eq!(code, 6, "every budget tightened: {out}{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let missed = rows.iter().filter(|r| r["within"] == false).count();
    let judged = rows.iter().filter(|r| r["within"].is_boolean()).count();
    assert!(judged >= 3 && missed == judged, "{out}");

    let (code, _, err) = run(evlog().args(quick).args(["--budget-scale", "0"]));
    assert_eq!(code, 2, "a scale must be above 0: {err}");
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
