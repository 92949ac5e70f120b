//! `evlog migrate`: explicit schema migration, `--dry-run` changing nothing, old
//! and newer schemas, read-only URLs; `evlog info` naming the schema version and
//! durability mode.

mod common;

use common::{json_lines, quiet as evlog, run};

fn versions(report: &serde_json::Value) -> Vec<u64> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["version"].as_u64().unwrap())
        .collect()
}

#[test]
fn dry_run_changes_nothing_and_migrate_creates_then_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for (scheme, file, steps) in [
        ("sqlite", "m.db", vec![1, 2, 3, 4]),
        ("redb", "m.redb", vec![1, 2]),
    ] {
        let path = dir.path().join(file);
        let url = format!("{scheme}://{}", path.display());

        let dry = json_lines(evlog().args(["migrate", "--dry-run", "--json", "--store", &url]));
        assert_eq!(dry[0]["from"], serde_json::Value::Null, "{dry:?}");
        assert_eq!(dry[0]["dry_run"], true);
        assert_eq!(versions(&dry[0]), steps);
        assert!(!path.exists(), "a dry run created {}", path.display());
        let (code, out, _) = run(evlog().args(["migrate", "--dry-run", "--store", &url]));
        assert_eq!(code, 0);
        assert!(
            out.contains("would apply") && out.contains("nothing changed"),
            "{out}"
        );

        let done = json_lines(evlog().args(["migrate", "--json", "--store", &url]));
        assert_eq!(versions(&done[0]), steps, "{done:?}");
        assert_eq!(done[0]["to"], *steps.last().unwrap());
        assert!(path.exists());

        let again = json_lines(evlog().args(["migrate", "--json", "--store", &url]));
        assert_eq!(again[0]["from"], *steps.last().unwrap(), "{again:?}");
        assert!(versions(&again[0]).is_empty(), "{again:?}");
        let (code, out, err) = run(evlog().args(["migrate", "--store", &url]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("up to date"), "{out}");

        // The migrated store is usable and says what it is.
        let info = json_lines(evlog().args(["info", "--json", "--store", &url]));
        assert_eq!(info[0]["backend"], scheme, "{info:?}");
        assert_eq!(info[0]["schema_version"], *steps.last().unwrap());
    }
}

#[test]
fn info_names_the_durability_mode_in_force() {
    let dir = tempfile::tempdir().unwrap();
    for (query, mode) in [
        ("", "synchronous=FULL"),
        ("?durability=normal", "synchronous=NORMAL"),
    ] {
        let url = format!(
            "sqlite://{}{query}",
            dir.path().join(format!("d{}.db", query.len())).display()
        );
        assert_eq!(run(evlog().args(["migrate", "--store", &url])).0, 0);
        let info = json_lines(evlog().args(["info", "--json", "--store", &url]));
        assert_eq!(info[0]["durability"], mode, "{info:?}");
        let (_, text, _) = run(evlog().args(["info", "--store", &url]));
        assert!(text.contains(&format!("durability:    {mode}")), "{text}");
    }
}

/// A file left at schema version 1 by an old build: reading it is refused with the
/// fix named, the dry run lists exactly the missing steps, and migrate applies them.
#[test]
fn an_old_schema_is_migrated_forward_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}", path.display());
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX ops_lamport_id; DROP INDEX ops_story; DROP INDEX ops_key;
             ALTER TABLE ops DROP COLUMN lamport; ALTER TABLE ops DROP COLUMN story;
             ALTER TABLE ops DROP COLUMN key;
             DROP INDEX ops_evidence; DROP TABLE meta; DELETE FROM schema_version WHERE version > 1;",
        )
        .unwrap();
    }
    let (code, _, err) = run(evlog().args(["show", "--store", &url]));
    assert_ne!(code, 0);
    assert!(
        err.contains("schema version 1") && err.contains("evlog migrate"),
        "{err}"
    );

    let dry = json_lines(evlog().args(["migrate", "--dry-run", "--json", "--store", &url]));
    assert_eq!(dry[0]["from"], 1, "{dry:?}");
    assert_eq!(versions(&dry[0]), [2, 3, 4]);
    // Still at version 1 after the dry run.
    assert_ne!(run(evlog().args(["show", "--store", &url])).0, 0);

    let done = json_lines(evlog().args(["migrate", "--json", "--store", &url]));
    assert_eq!(versions(&done[0]), [2, 3, 4], "{done:?}");
    let (code, out, err) = run(evlog().args(["show", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("story-1"), "{out}");
}

#[test]
fn a_newer_schema_is_reported_and_never_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    assert_eq!(run(evlog().args(["migrate", "--store", &url])).0, 0);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    let (code, out, _) = run(evlog().args(["migrate", "--dry-run", "--store", &url]));
    assert_eq!(code, 0);
    assert!(out.contains("99") && out.contains("newer"), "{out}");
    let (code, _, err) = run(evlog().args(["migrate", "--store", &url]));
    assert_ne!(code, 0);
    assert!(err.contains("99") && err.contains("newer"), "{err}");
}

#[test]
fn a_read_only_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ro.db").display());
    assert_eq!(run(evlog().args(["migrate", "--store", &url])).0, 0);
    let (code, _, err) = run(evlog().args(["migrate", "--store", &format!("{url}?mode=ro")]));
    assert_ne!(code, 0);
    assert!(err.contains("mode=ro"), "{err}");
}
