//! What the CLI tests share: the binary with a clean environment, its output, JSON
//! lines, and the test PostgreSQL server.
#![allow(dead_code)]

use std::process::Command;

/// The `evlog` binary, without the store variables a developer's shell may set.
pub fn evlog() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evlog"));
    for var in ["EVLOG_STORE", "EVLOG_FROM", "EVLOG_TO"] {
        cmd.env_remove(var);
    }
    cmd
}

/// [`evlog`] with its log lines off (stderr holds only errors and notices).
pub fn quiet() -> Command {
    let mut cmd = evlog();
    cmd.env("EVLOG_LOG", "off");
    cmd
}

/// Runs `cmd`: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("evlog runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd`, which must succeed, and parses each line of its stdout as a JSON
/// object.
pub fn json_lines(cmd: &mut Command) -> Vec<serde_json::Value> {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// The test server, from `EVENT_LOG_TEST_PG_URL`. Never skips: a missing server is a
/// failed run, not a green one.
pub fn pg_url() -> String {
    match std::env::var("EVENT_LOG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "EVENT_LOG_TEST_PG_URL is not set: run the tests with `scripts/test.sh` \
             (it starts a throwaway PostgreSQL 15), or set it to a server you own"
        ),
    }
}

/// Drops a test schema of the test server when dropped.
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (schema, url) = (self.0.clone(), pg_url());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                use event_log::postgres::{PostgresConfig, PostgresStore};
                let store =
                    PostgresStore::open(&url, PostgresConfig::default().with_schema(&schema))
                        .await
                        .map_err(|e| e.to_string())?;
                store.drop_schema().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("warning: could not drop test schema {}: {e}", self.0);
        }
    }
}
