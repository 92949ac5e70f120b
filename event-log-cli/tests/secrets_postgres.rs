//! No password in the output of commands that succeed: `demo`, `sync` (both ways)
//! and `show` against a real PostgreSQL server, with a password in the URL. The test
//! server trusts loopback connections, so the password is accepted and ignored.
//!
//! Needs a server: run with `scripts/test.sh -p event-log-cli --test secrets_postgres`.

mod common;

use common::{SchemaGuard, pg_url};

use std::process::Command;

const PASSWORD: &str = "Pg5ecret@Part";

/// `postgres://user@host/db` with `PASSWORD` (percent-encoded) and a fresh schema.
fn url_with_password(schema: &str) -> String {
    let url = pg_url();
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (user, host) = rest
        .split_once('@')
        .expect("EVENT_LOG_TEST_PG_URL names a user (postgres://user@host/db)");
    let user = user.split(':').next().unwrap_or(user);
    let sep = if host.contains('?') { '&' } else { '?' };
    let encoded = PASSWORD.replace('@', "%40");
    format!("{scheme}://{user}:{encoded}@{host}{sep}schema={schema}")
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("evlog runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn assert_hidden(what: &str, text: &str) {
    for piece in [PASSWORD, "Pg5ecret", "Part", "Pg5ecret%40Part"] {
        assert!(!text.contains(piece), "{what} printed {piece:?}:\n{text}");
    }
}

/// demo, sync both ways, show, info, migrate, export, import and append succeed on
/// a URL with a password, and print the URL without it (debug logs included).
#[test]
fn successful_commands_print_urls_without_their_password() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("t_cli_secrets_{}_{nanos:x}", std::process::id());
    let _guard = SchemaGuard(schema.clone());
    let pg = url_with_password(&schema);
    let dir = tempfile::tempdir().unwrap();
    let local = format!("sqlite://{}", dir.path().join("a.db").display());
    let evlog = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_evlog"));
        c.env("EVLOG_LOG", "debug");
        c
    };

    let (code, text) = run(evlog().args(["demo", "--store", &pg]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("opened postgres://"), "{text}");
    assert_hidden("demo", &text);

    let (code, text) = run(evlog().args(["sync", "--from", &pg, "--to", &local]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("9 applied"), "{text}");
    assert_hidden("sync", &text);

    let (code, text) = run(evlog()
        .args(["sync", "--both"])
        .env("EVLOG_FROM", &local)
        .env("EVLOG_TO", &pg));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 ops sent"), "{text}");
    assert_hidden("sync by environment", &text);

    let (code, text) = run(evlog().args(["show"]).env("EVLOG_STORE", &pg));
    assert_eq!(code, 0, "{text}");
    assert_hidden("show", &text);

    for args in [
        vec!["info"],
        vec!["info", "--json"],
        vec!["migrate", "--dry-run"],
        vec!["migrate", "--json"],
    ] {
        let (code, text) = run(evlog().args(&args).env("EVLOG_STORE", &pg));
        assert_eq!(code, 0, "{args:?}: {text}");
        assert_hidden(&args.join(" "), &text);
    }
    let file = dir.path().join("ops.jsonl");
    let (code, text) = run(evlog()
        .args(["export", "--out"])
        .arg(&file)
        .env("EVLOG_STORE", &pg));
    assert_eq!(code, 0, "{text}");
    assert_hidden("export", &text);
    let (code, text) = run(evlog()
        .args(["import", "--in"])
        .arg(&file)
        .env("EVLOG_STORE", &pg));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("9 already held"), "{text}");
    assert_hidden("import", &text);
    let key = dir.path().join("sled.key");
    assert_eq!(run(evlog().args(["keygen", "--out"]).arg(&key)).0, 0);
    let (code, text) = run(evlog()
        .args(["append", "--store", &pg, "--key"])
        .arg(&key)
        .stdin(std::process::Stdio::null()));
    assert_eq!(code, 0, "{text}");
    assert_hidden("append", &text);
}
