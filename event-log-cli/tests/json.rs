//! `--json` on the commands that print results: one JSON object per line.

mod common;

use common::{json_lines, quiet as evlog};

#[test]
fn sync_json_reports_each_direction() {
    let dir = tempfile::tempdir().unwrap();
    let a = format!("sqlite://{}", dir.path().join("a.db").display());
    let b = format!("redb://{}", dir.path().join("b.redb").display());
    assert!(
        evlog()
            .args(["demo", "--store", &a])
            .output()
            .unwrap()
            .status
            .success()
    );
    let lines = json_lines(evlog().args(["sync", "--json", "--both", "--from", &a, "--to", &b]));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["from"], a.as_str());
    assert_eq!(lines[0]["to"], b.as_str());
    assert_eq!(lines[0]["sent"], 9);
    assert_eq!(lines[0]["applied"], 9);
    assert_eq!(lines[0]["refused"], 0);
    assert_eq!(lines[1]["from"], b.as_str());
    assert_eq!(lines[1]["sent"], 0);
}

#[test]
fn keygen_json_gives_the_sled_id_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let lines = json_lines(evlog().args(["keygen", "--json", "--out"]).arg(&key));
    assert_eq!(lines.len(), 1);
    let sled = lines[0]["sled"].as_str().unwrap();
    assert_eq!(sled.len(), 64);
    assert!(sled.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(lines[0]["key"], key.display().to_string());
}

#[test]
fn tail_json_prints_events() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    assert!(
        evlog()
            .args(["demo", "--store", &url])
            .output()
            .unwrap()
            .status
            .success()
    );
    let lines = json_lines(evlog().args([
        "tail",
        "--json",
        "--from-start",
        "--for-secs",
        "0",
        "--store",
        &url,
    ]));
    assert_eq!(lines.len(), 9);
}

/// `verify --json` is one object on one line, like every other command's JSON.
#[test]
fn verify_json_is_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v.db").display());
    assert!(
        evlog()
            .args(["demo", "--store", &url])
            .output()
            .unwrap()
            .status
            .success()
    );
    let lines = json_lines(evlog().args(["verify", "--json", "--store", &url]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].get("damage").is_some() || lines[0].get("damaged").is_some(),
        "{}",
        lines[0]
    );
}
