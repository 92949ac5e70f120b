//! `evlog tail` on PostgreSQL follows LISTEN/NOTIFY: with its poll interval set to
//! an hour, another process's commits are still printed as they happen.
//!
//! Needs a server: run with `scripts/test.sh -p event-log-cli --test tail_postgres`.

mod common;

use common::{SchemaGuard, evlog, pg_url};

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn tail_on_postgres_prints_commits_without_polling() {
    let schema = format!("evlog_tail_{}", std::process::id());
    let _guard = SchemaGuard(schema.clone());
    let base = pg_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let demo = || {
        let out = evlog().args(["demo", "--store", &url]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    demo();
    let mut tail = evlog()
        .args([
            "tail",
            "--json",
            "--interval",
            "3600000",
            "--for-secs",
            "120",
            "--store",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(tail.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("LISTEN/NOTIFY"), "{first}");
    let (tx, rx) = mpsc::channel();
    let out = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    demo();
    // A hang guard, not a timing assertion: without notifications the next poll
    // would come in an hour.
    let mut lines = Vec::new();
    while lines.len() < 9 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => lines.push(l),
            Err(e) => panic!("tail printed {} of 9 events: {e}", lines.len()),
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["entry"].is_object(), "{l}");
    }
}
