//! Reading commands on PostgreSQL never create a schema: `show` and `verify` on a
//! mistyped schema fail naming it, and leave no schema behind.
//!
//! Needs a server: run with `scripts/test.sh -p event-log-cli --test read_only_postgres`.

mod common;

use common::pg_url;

use std::process::Command;

fn with_schema(schema: &str) -> String {
    let url = pg_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("evlog runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A missing schema is an error naming it for every reading command, twice in a
/// row (the first did not create it); a writable command then creates it, and the
/// reading commands read it.
#[test]
fn reading_commands_on_a_missing_schema_fail_naming_it_and_create_nothing() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("t_cli_ro_{}_{nanos:x}", std::process::id());
    let url = with_schema(&schema);
    let evlog = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_evlog"));
        c.env_remove("EVLOG_STORE");
        c
    };
    for _ in 0..2 {
        for args in [
            vec!["show", "--store", &url],
            vec!["verify", "--store", &url],
        ] {
            let (code, out, err) = run(evlog().args(&args));
            assert_ne!(code, 0, "{args:?}: {out}{err}");
            assert!(err.contains("not found"), "{args:?}: {err}");
            assert!(err.contains(&schema), "{args:?} names the schema: {err}");
        }
    }
    let (code, _, err) = run(evlog().args(["demo", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(evlog().args(["show", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 9, "{out}");
    let (code, out, err) = run(evlog().args(["verify", "--store", &url]));
    assert_eq!(code, 0, "{out}{err}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use event_log::postgres::{PostgresConfig, PostgresStore};
        let store = PostgresStore::open(&pg_url(), PostgresConfig::default().with_schema(&schema))
            .await
            .unwrap();
        store.drop_schema().await.unwrap();
    });
}
