//! `evlog show --limit/--last/--reverse`, and `--story` keeping the sentinels of the
//! sleds it shows.

mod common;

use common::quiet as evlog;

use std::process::Command;

fn stdout(cmd: &mut Command) -> Vec<String> {
    let out = cmd.output().expect("evlog runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A store written by two demo runs (two sleds, each with a gap sentinel).
fn store(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    for _ in 0..2 {
        stdout(evlog().args(["demo", "--store", &url]));
    }
    url
}

#[test]
fn limit_last_and_reverse_select_and_order_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let url = store(&dir);
    let all = stdout(evlog().args(["show", "--store", &url]));
    assert_eq!(all.len(), 18);
    let first = stdout(evlog().args(["show", "--limit", "3", "--store", &url]));
    assert_eq!(first, all[..3]);
    let last = stdout(evlog().args(["show", "--last", "2", "--store", &url]));
    assert_eq!(last, all[16..]);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(
        stdout(evlog().args(["show", "--reverse", "--store", &url])),
        reversed
    );
    // Newest first, then the first N of that: the N newest.
    assert_eq!(
        stdout(evlog().args(["show", "--reverse", "--limit", "4", "--store", &url])),
        reversed[..4]
    );
    // After the filters: the last 2 transitions of story-2.
    let story: Vec<String> = stdout(evlog().args(["show", "--story", "story-2", "--store", &url]));
    let last2 =
        stdout(evlog().args(["show", "--story", "story-2", "--last", "2", "--store", &url]));
    assert_eq!(last2, story[story.len() - 2..]);
    assert_eq!(
        stdout(evlog().args(["show", "--limit", "0", "--store", &url])),
        Vec::<String>::new()
    );
    // --limit and --last together are a usage error.
    let out = evlog()
        .args(["show", "--limit", "1", "--last", "1", "--store", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A story's owner sees that transitions may be missing: the gap sentinels of the
/// sleds whose transitions of that story are shown stay in the view.
#[test]
fn story_keeps_the_gap_sentinels_of_its_sleds() {
    let dir = tempfile::tempdir().unwrap();
    let url = store(&dir);
    let lines = stdout(evlog().args(["show", "--story", "story-1", "--store", &url]));
    let gaps = lines.iter().filter(|l| l.contains("were dropped")).count();
    assert_eq!(gaps, 2, "one gap per sled:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("story-1")));
    assert!(
        lines
            .iter()
            .all(|l| l.contains("story-1") || l.contains("were dropped")),
        "{}",
        lines.join("\n")
    );
    let json = stdout(evlog().args(["show", "--json", "--story", "story-1", "--store", &url]));
    assert_eq!(json.len(), lines.len());
    for line in &json {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let story = &v["entry"]["story_id"];
        assert!(story == "story-1" || story.is_null(), "{line}");
        if story.is_null() {
            assert!(v["entry"]["run"].is_string(), "run ids are strings: {line}");
        }
    }
    // No transition of the story, no sled shown, no sentinel either.
    assert!(stdout(evlog().args(["show", "--story", "nope", "--store", &url])).is_empty());
}
