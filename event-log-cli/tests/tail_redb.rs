//! `evlog tail` on redb: a redb file is open in one process at a time, so while a
//! sled has it open, tail says the file is locked by it (exit 3) instead of waiting
//! or failing obscurely; with no sled running, tail prints what the file holds and
//! stops, leaving the file free for the sled.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{quiet as evlog, run};

const LINE: &str =
    r#"{"story_id":"s-1","from_stage":"backlog","to_stage":"coding","pipeline_event":"Advance"}"#;

#[test]
fn tail_on_a_redb_file_its_sled_has_open_says_it_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redb://{}", dir.path().join("t.redb").display());
    let key = dir.path().join("sled.key");
    assert_eq!(run(evlog().args(["keygen", "--out"]).arg(&key)).0, 0);
    // A sled appending from stdin holds the file until its input ends.
    let mut sled = evlog()
        .args(["append", "--json", "--store", &url, "--key"])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = sled.stdin.take().unwrap();
    writeln!(input, "{LINE}").unwrap();
    input.flush().unwrap();
    // The sled has the file open once it printed its stored event.
    let mut stdout = std::io::BufReader::new(sled.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.contains("s-1"), "{first}");

    let (code, out, err) = run(evlog().args(["tail", "--from-start", "--store", &url]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("locked") && err.contains("evlog show"),
        "{err}"
    );

    drop(input);
    assert!(sled.wait().unwrap().success());

    // No sled: tail prints the events and stops, and the sled can open it again.
    let (code, out, err) = run(evlog().args(["tail", "--from-start", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s-1"), "{out}");
    assert!(err.contains("stopping"), "{err}");
    let mut again = evlog()
        .args(["append", "--store", &url, "--key"])
        .arg(&key)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(again.stdin.take().unwrap(), "{LINE}").unwrap();
    assert!(again.wait().unwrap().success());
}
