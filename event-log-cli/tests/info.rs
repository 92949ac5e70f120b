//! `evlog info`: a store's sleds, counts, heads, equivocations and damage.

mod common;

use common::evlog;

#[test]
fn info_summarises_sleds_counts_and_heads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("i.db").display());
    for _ in 0..2 {
        let out = evlog().args(["demo", "--store", &url]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = evlog()
        .args(["info", "--json", "--store", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one object: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ops"], 18, "{v}");
    assert_eq!(v["events"], 18, "{v}");
    let sleds = v["sleds"].as_array().unwrap();
    assert_eq!(sleds.len(), 2, "two demo runs, two sleds: {v}");
    for s in sleds {
        assert_eq!(s["seq"], 9, "{s}");
        assert_eq!(s["events"], 9, "{s}");
        assert!(s.get("excluded_from").is_none(), "{s}");
    }
    // The second run saw the first's ops: its ops follow them, one head.
    assert_eq!(v["heads"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["equivocations"].as_array().unwrap().len(), 0);
    assert_eq!(v["damaged_rows"], 0);
    let out = evlog().args(["info", "--store", &url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ops stored:    18"), "{text}");
    assert!(text.contains("sleds:         2"), "{text}");
}

#[test]
fn info_on_a_missing_store_exits_3_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let out = evlog()
        .args(["info", "--store", &format!("sqlite://{}", db.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!db.exists());
}
