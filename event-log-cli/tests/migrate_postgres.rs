//! `evlog migrate`, `info`, `export` and `import` against the test PostgreSQL.
//!
//! Needs a server: run with `scripts/test.sh -p event-log-cli --test migrate_postgres`.

mod common;

use common::{SchemaGuard, json_lines, pg_url, quiet as evlog, run};

fn url_with_schema(schema: &str) -> String {
    let base = pg_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}")
}

#[test]
fn migrate_on_postgres_dry_runs_creates_and_reports_synchronous_commit() {
    let schema = format!("evlog_migrate_{}", std::process::id());
    let _guard = SchemaGuard(schema.clone());
    let url = url_with_schema(&schema);

    let dry = json_lines(evlog().args(["migrate", "--dry-run", "--json", "--store", &url]));
    assert_eq!(dry[0]["from"], serde_json::Value::Null, "{dry:?}");
    // Every step of this build, the same number as the schema version it reaches.
    let version = event_log::postgres::SCHEMA_VERSION;
    assert_eq!(
        dry[0]["steps"].as_array().unwrap().len() as i64,
        i64::from(version)
    );
    // The dry run created nothing: a reader still finds no schema.
    let (code, _, err) = run(evlog().args(["show", "--store", &url]));
    assert_eq!(code, 3, "{err}");

    let done = json_lines(evlog().args(["migrate", "--json", "--store", &url]));
    assert_eq!(done[0]["to"], version, "{done:?}");
    let again = json_lines(evlog().args(["migrate", "--json", "--store", &url]));
    assert!(
        again[0]["steps"].as_array().unwrap().is_empty(),
        "{again:?}"
    );

    let info = json_lines(evlog().args(["info", "--json", "--store", &url]));
    assert_eq!(info[0]["backend"], "postgres", "{info:?}");
    assert_eq!(info[0]["schema_version"], version);
    // The server's own setting (the throwaway test server may run with it off).
    let durability = info[0]["durability"].as_str().unwrap();
    let mode = durability
        .strip_prefix("synchronous_commit=")
        .unwrap_or_default();
    assert!(
        ["on", "off", "local", "remote_write", "remote_apply"].contains(&mode),
        "{durability}"
    );
    let text = format!("{dry:?}{done:?}{info:?}");
    assert!(!text.contains("password="), "{text}");
}

#[test]
fn export_from_postgres_imports_into_sqlite_with_the_same_view() {
    let schema = format!("evlog_export_{}", std::process::id());
    let _guard = SchemaGuard(schema.clone());
    let url = url_with_schema(&schema);
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.jsonl");
    let (code, _, err) = run(evlog()
        .args(["export", "--store", &url, "--out"])
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    let target = format!("sqlite://{}", dir.path().join("copy.db").display());
    let (code, _, err) = run(evlog()
        .args(["import", "--store", &target, "--in"])
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    let shown = |u: &str| json_lines(evlog().args(["show", "--json", "--store", u]));
    assert_eq!(shown(&url), shown(&target));
}
