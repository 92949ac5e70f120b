//! `evlog demo` without `--store` keeps its store in `./evlog-demo.db` and says what
//! to run next; with `memory:` it warns that the restart cannot survive; `--json`
//! prints one JSON object per line.

use std::process::Command;

fn evlog(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evlog"));
    cmd.env_remove("EVLOG_STORE")
        .env("EVLOG_LOG", "off")
        .current_dir(dir);
    cmd
}

#[test]
fn demo_without_a_store_keeps_evlog_demo_db_and_prints_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = evlog(dir.path()).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("evlog-demo.db").is_file(), "{text}");
    let next = text.lines().last().unwrap_or_default();
    assert!(
        next.contains("evlog show --store sqlite://./evlog-demo.db"),
        "the last line says what to run next: {text}"
    );
    let out = evlog(dir.path())
        .args(["show", "--store", "sqlite://./evlog-demo.db"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 9);
    // The next run adds to it.
    let out = evlog(dir.path()).arg("demo").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(9 events already)"));
}

#[test]
fn demo_on_a_memory_store_warns_that_nothing_persists() {
    let dir = tempfile::tempdir().unwrap();
    let out = evlog(dir.path())
        .args(["demo", "--store", "memory:"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning") && err.contains("memory"), "{err}");
    assert!(err.contains("persist"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");
}

#[test]
fn demo_json_is_one_object_per_line_with_run_ids_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    let lines = json_lines(evlog(dir.path()).args(["demo", "--json", "--store", &url]));
    let published = lines
        .iter()
        .find(|v| v["step"] == "published")
        .expect("a published summary");
    assert_eq!(published["published"], 16);
    assert!(published["run"].is_string(), "{published}");
    let events: Vec<_> = lines.iter().filter(|v| v.get("entry").is_some()).collect();
    assert_eq!(events.len(), 9);
    assert!(
        lines
            .iter()
            .any(|v| v["step"] == "restarted" && v["events"] == 9)
    );
}

/// Each line of stdout parsed as a JSON object.
fn json_lines(cmd: &mut Command) -> Vec<serde_json::Value> {
    let out = cmd.output().expect("evlog runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}
