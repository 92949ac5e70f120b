//! `evlog append`: transitions as JSON lines on stdin, stored as one sled.

mod common;

use common::{evlog, json_lines};

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// Runs `evlog append` with `input` on stdin: (exit code, stdout, stderr).
fn append(url: &str, key: &Path, extra: &[&str], input: &str) -> (i32, String, String) {
    let mut child = evlog()
        .args(["append", "--store", url, "--key"])
        .arg(key)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keygen(key: &Path) {
    assert!(
        evlog()
            .args(["keygen", "--out"])
            .arg(key)
            .output()
            .unwrap()
            .status
            .success()
    );
}

const INPUT: &str = r#"{"story_id":"S-1","from_stage":"backlog","to_stage":"coding","pipeline_event":"Start","idempotency_key":"S-1/1"}
{"story_id":"S-1","from_stage":"coding","to_stage":"review","pipeline_event":"PrOpened","idempotency_key":"S-1/2","metadata":{"actor":"alice"}}

{"story_id":"S-2","from_stage":"backlog","to_stage":"coding","pipeline_event":"Start","at":"2026-12-01T10:00:00Z","idempotency_key":"S-2/1"}
"#;

/// Lines become transitions (metadata and timestamps kept); a rerun of the same
/// keyed input stores nothing twice.
#[test]
fn lines_are_stored_once_even_when_the_input_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let key = dir.path().join("sled.key");
    keygen(&key);
    let (code, out, err) = append(&url, &key, &[], INPUT);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("appended 3 transition(s)"), "{out}");
    let events = shown(&url);
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["entry"]["metadata"]["actor"], "alice");
    assert_eq!(events[2]["entry"]["at"], "2026-12-01T10:00:00Z");
    let (code, _, err) = append(&url, &key, &["--json"], INPUT);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown(&url).len(), 3, "the retry wrote nothing");
}

/// A line that is not a transition stops the command naming the line; every line
/// before it is stored, whatever the batches.
#[test]
fn a_bad_line_is_named_and_earlier_batches_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let key = dir.path().join("sled.key");
    keygen(&key);
    let input = format!("{INPUT}{{\"story_id\":\"S-3\"}}\n");
    let (code, _, err) = append(&url, &key, &["--batch", "2"], &input);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(
        err.contains("3 transition(s) before it were stored"),
        "{err}"
    );
    assert_eq!(shown(&url).len(), 3, "every line before the bad one");
}

/// Without its key file nothing is opened or created, and the error names the file.
#[test]
fn a_missing_key_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let url = format!("sqlite://{}", db.display());
    let key = dir.path().join("missing.key");
    let (code, _, err) = append(&url, &key, &[], INPUT);
    assert_ne!(code, 0);
    assert!(err.contains("missing.key"), "{err}");
    assert!(!db.exists(), "no store was created");
}

fn shown(url: &str) -> Vec<serde_json::Value> {
    json_lines(evlog().args(["show", "--json", "--store", url]))
}
