//! `evlog completions SHELL` prints a completion script.

use std::process::Command;

#[test]
fn completions_name_the_binary_and_its_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_evlog"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("evlog"), "{script}");
    for sub in [
        "demo",
        "show",
        "tail",
        "verify",
        "sync",
        "keygen",
        "bench",
        "completions",
    ] {
        assert!(script.contains(sub), "no `{sub}` in:\n{script}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(env!("CARGO_BIN_EXE_evlog"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("evlog"),
            "{shell}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_evlog"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
