//! No password in any output: every command that takes a store URL, given one that
//! fails with a password in it (as a flag and as an environment variable), prints
//! neither the password nor a piece of it, on stdout or stderr.

use std::process::Command;

fn evlog() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evlog"));
    for var in ["EVLOG_STORE", "EVLOG_FROM", "EVLOG_TO", "EVLOG_LOG"] {
        cmd.env_remove(var);
    }
    // Logs at every level: a password must not reach a log line either.
    cmd.env("EVLOG_LOG", "trace");
    cmd
}

/// A URL that fails to open and the texts that must never be printed.
struct Case {
    url: &'static str,
    secrets: &'static [&'static str],
}

/// Shapes of secrets in store URLs, each failing: a server on a closed loopback port,
/// a SQLite file in a directory that does not exist, a DSN the facade cannot open.
const CASES: &[Case] = &[
    Case {
        url: "postgres://alice:hunter2@Secr3t@127.0.0.1:1/db",
        secrets: &["hunter2", "Secr3t"],
    },
    Case {
        url: "postgres://alice:Secr%40t99@127.0.0.1:1/db",
        secrets: &["Secr@t99", "Secr%40t99", "t99"],
    },
    Case {
        url: "postgres://alice@127.0.0.1:1/db?password=Pa55word",
        secrets: &["Pa55word"],
    },
    Case {
        url: "postgresql://127.0.0.1:1/db?sslmode=disable&sslpassword=Ss1Pass",
        secrets: &["Ss1Pass"],
    },
    Case {
        url: "host=127.0.0.1 port=1 password='Dsn Secr3t'",
        secrets: &["Dsn Secr3t", "Dsn", "Secr3t"],
    },
    Case {
        url: "sqlite:///missing-evlog-dir/x.db?password=SqlSecr3t",
        secrets: &["SqlSecr3t"],
    },
];

/// Runs `evlog` and returns (exit code, stdout + stderr).
fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("evlog runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn assert_hidden(what: &str, case: &Case, code: i32, text: &str) {
    assert_ne!(code, 0, "{what} with {}: must fail\n{text}", case.url);
    for s in case.secrets {
        assert!(
            !text.contains(s),
            "{what} printed {s:?} of {}:\n{text}",
            case.url
        );
    }
}

/// The arguments of each command, with `URL` where the failing store URL goes and
/// `OK` where a store that opens goes; the environment variable that can carry `URL`.
fn commands(ok: &str) -> Vec<(Vec<String>, &'static str)> {
    let args = |a: &[&str]| -> Vec<String> {
        a.iter()
            .map(|s| {
                if *s == "OK" {
                    ok.to_owned()
                } else {
                    (*s).to_owned()
                }
            })
            .collect()
    };
    vec![
        (args(&["show", "--store", "URL"]), "EVLOG_STORE"),
        (
            args(&["tail", "--for-secs", "1", "--store", "URL"]),
            "EVLOG_STORE",
        ),
        (args(&["verify", "--store", "URL"]), "EVLOG_STORE"),
        (args(&["sync", "--to", "OK", "--from", "URL"]), "EVLOG_FROM"),
        (args(&["sync", "--from", "OK", "--to", "URL"]), "EVLOG_TO"),
        (
            args(&[
                "bench",
                "--events",
                "10",
                "--appends",
                "100",
                "--store",
                "URL",
            ]),
            "EVLOG_STORE",
        ),
        (args(&["demo", "--store", "URL"]), "EVLOG_STORE"),
        (args(&["info", "--store", "URL"]), "EVLOG_STORE"),
        (
            args(&["migrate", "--dry-run", "--store", "URL"]),
            "EVLOG_STORE",
        ),
        (args(&["migrate", "--store", "URL"]), "EVLOG_STORE"),
        (args(&["export", "--store", "URL"]), "EVLOG_STORE"),
        (args(&["import", "--store", "URL"]), "EVLOG_STORE"),
    ]
}

/// Every command, every shape, given as a flag: the password is never printed.
#[test]
fn no_command_prints_a_password_given_as_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("sqlite://{}", dir.path().join("ok.db").display());
    assert_eq!(run(evlog().args(["demo", "--store", &ok])).0, 0);
    for case in CASES {
        for (args, _) in commands(&ok) {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if a == "URL" { case.url } else { a.as_str() })
                .collect();
            let (code, text) = run(evlog().args(&args));
            assert_hidden(&args.join(" "), case, code, &text);
        }
    }
}

/// Every command, every shape, given by its environment variable: the password is
/// never printed, and `--help` shows the variable's name but not its value.
#[test]
fn no_command_prints_a_password_given_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("sqlite://{}", dir.path().join("ok.db").display());
    assert_eq!(run(evlog().args(["demo", "--store", &ok])).0, 0);
    for case in CASES {
        for (args, var) in commands(&ok) {
            let at = args.iter().position(|a| a == "URL").unwrap();
            let mut args = args.clone();
            args.drain(at - 1..=at);
            let (code, text) = run(evlog().args(&args).env(var, case.url));
            assert_hidden(&format!("{} with {var}", args.join(" ")), case, code, &text);
            let (code, help) = run(evlog()
                .args([args[0].as_str(), "--help"])
                .env(var, case.url));
            assert_eq!(code, 0, "{help}");
            assert!(help.contains(var), "--help names {var}:\n{help}");
            for s in case.secrets {
                assert!(!help.contains(s), "--help printed {s:?}:\n{help}");
            }
        }
    }
}
