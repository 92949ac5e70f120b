//! `evlog tail` filters: `--since`, `--sled`, `--story`.

mod common;

use common::{evlog, json_lines};

#[test]
fn tail_filters_by_story_sled_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    for _ in 0..2 {
        assert!(
            evlog()
                .args(["demo", "--store", &url])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let all = json_lines(evlog().args([
        "tail",
        "--json",
        "--from-start",
        "--for-secs",
        "0",
        "--store",
        &url,
    ]));
    assert_eq!(all.len(), 18);
    let sled = all[0]["sled_id"].as_str().unwrap().to_owned();
    let mine = json_lines(evlog().args([
        "tail",
        "--json",
        "--from-start",
        "--for-secs",
        "0",
        "--sled",
        &sled[..8],
        "--store",
        &url,
    ]));
    assert_eq!(mine.len(), 9);
    assert!(mine.iter().all(|e| e["sled_id"] == sled.as_str()));
    let story = json_lines(evlog().args([
        "tail",
        "--json",
        "--from-start",
        "--for-secs",
        "0",
        "--story",
        "story-1",
        "--store",
        &url,
    ]));
    assert!(!story.is_empty());
    assert!(
        story
            .iter()
            .all(|e| { e["entry"]["story_id"] == "story-1" || e["entry"]["type"] != "transition" })
    );
    assert!(
        story.iter().any(|e| e["entry"]["type"] == "gap"),
        "gaps stay in view"
    );
    let since = json_lines(evlog().args([
        "tail",
        "--json",
        "--for-secs",
        "0",
        "--since",
        &format!("{sled}=5"),
        "--store",
        &url,
    ]));
    assert!(
        since
            .iter()
            .all(|e| e["sled_id"] != sled.as_str() || e["event_id"].as_u64() >= Some(5))
    );
    assert_eq!(
        since.len(),
        9 + 4,
        "the other sled's 9, and 5..=8 of this one"
    );
}
