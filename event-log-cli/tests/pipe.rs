//! A reader that stops early (`evlog show | head -1`, `evlog export | head`) ends
//! `evlog` quietly: exit 0,
//! nothing on stderr; before, the first write after the pipe closed panicked.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn reading_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("big.db").display());
    // A bus large enough that the persister keeps up: about 2,000 events, far more
    // than a pipe buffers.
    let out = Command::new(env!("CARGO_BIN_EXE_evlog"))
        .args([
            "demo",
            "--capacity",
            "4096",
            "--burst",
            "2000",
            "--store",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for args in [
        vec!["show"],
        vec!["show", "--json"],
        vec!["export"],
        vec!["info", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evlog"))
            .args(&args)
            .args(["--store", &url])
            .env("EVLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{args:?}");
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}: {err}", out.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}: nothing on stderr");
    }
}
