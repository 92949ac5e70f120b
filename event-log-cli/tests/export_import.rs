//! `evlog export` and `evlog import`: JSON lines in causal order, verified on the
//! way in, idempotent, resumable; an edited or forged line is refused by name.

mod common;

use std::path::Path;

use common::{json_lines, quiet as evlog, run};

fn demo(url: &str) {
    let (code, _, err) = run(evlog().args(["demo", "--store", url]));
    assert_eq!(code, 0, "{err}");
}

fn export(url: &str) -> String {
    let (code, out, err) = run(evlog().args(["export", "--store", url]));
    assert_eq!(code, 0, "{err}");
    out
}

fn import(url: &str, file: &Path) -> (i32, String, String) {
    run(evlog()
        .args(["import", "--json", "--store", url, "--in"])
        .arg(file))
}

fn shown(url: &str) -> Vec<serde_json::Value> {
    json_lines(evlog().args(["show", "--json", "--store", url]))
}

#[test]
fn export_then_import_gives_the_same_view_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("src.db").display());
    demo(&source);
    let text = export(&source);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 8, "{text}");
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // The readable columns are there to be read.
    assert!(lines[0]["payload"].as_str().unwrap().contains("story-1"));

    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &text).unwrap();
    for target in [
        format!("redb://{}", dir.path().join("copy.redb").display()),
        format!("sqlite://{}", dir.path().join("copy.db").display()),
    ] {
        let (code, out, err) = import(&target, &file);
        assert_eq!(code, 0, "{err}");
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(report["applied"], lines.len(), "{report}");
        assert_eq!(shown(&target), shown(&source));

        let (code, out, err) = import(&target, &file);
        assert_eq!(code, 0, "{err}");
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(report["applied"], 0, "{report}");
        assert_eq!(report["duplicates"], lines.len(), "{report}");
        assert_eq!(export(&target).lines().count(), lines.len());
    }
}

#[test]
fn an_interrupted_export_resumes_after_its_last_complete_line() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("src.db").display());
    demo(&source);
    let full = export(&source);
    let file = dir.path().join("part.jsonl");
    // Three complete lines and half of the fourth, as a killed export leaves it.
    let mut torn: String = full.lines().take(3).map(|l| format!("{l}\n")).collect();
    let fourth = full.lines().nth(3).unwrap();
    torn.push_str(&fourth[..fourth.len() / 2]);
    std::fs::write(&file, torn).unwrap();
    let (code, _, err) = run(evlog()
        .args(["export", "--store", &source, "--resume", "--out"])
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("torn"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), full);

    // Resuming a complete export adds nothing.
    let (code, _, err) = run(evlog()
        .args(["export", "--store", &source, "--resume", "--out"])
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), full);

    // --after resumes from a position given by hand.
    let third: serde_json::Value = serde_json::from_str(full.lines().nth(2).unwrap()).unwrap();
    let after = third["position"].to_string();
    let (code, rest, err) = run(evlog().args(["export", "--store", &source, "--after", &after]));
    assert_eq!(code, 0, "{err}");
    let expected: String = full.lines().skip(3).map(|l| format!("{l}\n")).collect();
    assert_eq!(rest, expected);
}

/// Changes field `field` of line `index` (0-based) of `text` with `edit`.
fn edited(text: &str, index: usize, edit: impl Fn(&mut serde_json::Value)) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == index {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                edit(&mut v);
                format!("{v}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[test]
fn an_edited_line_is_named_and_the_lines_before_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("src.db").display());
    demo(&source);
    let text = export(&source);
    let file = dir.path().join("edited.jsonl");
    std::fs::write(
        &file,
        edited(&text, 4, |v| {
            let p = v["payload"].as_str().unwrap().replace("story-", "STORY-");
            v["payload"] = p.into();
        }),
    )
    .unwrap();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let (code, _, err) = import(&target, &file);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 5") && err.contains("payload"), "{err}");
    assert_eq!(
        export(&target).lines().count(),
        4,
        "the four lines before it are kept"
    );

    std::fs::write(&file, "not json\n").unwrap();
    let (code, _, err) = import(&target, &file);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("line 1") && err.contains("not an evlog export line"),
        "{err}"
    );
}

/// A line whose signature was forged (the last byte flipped) is refused by the
/// target's verification, and so is everything that depends on it: exit 5.
#[test]
fn a_forged_op_is_refused_with_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("src.db").display());
    demo(&source);
    let text = export(&source);
    let n = text.lines().count();
    let file = dir.path().join("forged.jsonl");
    std::fs::write(
        &file,
        edited(&text, n - 1, |v| {
            let mut bytes = hex::decode(v["bytes"].as_str().unwrap()).unwrap();
            *bytes.last_mut().unwrap() ^= 1;
            v["bytes"] = hex::encode(bytes).into();
        }),
    )
    .unwrap();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let (code, out, err) = import(&target, &file);
    assert_eq!(code, 5, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["refused"], 1, "{report}");
    assert_eq!(report["applied"], n - 1, "{report}");
    assert!(err.contains("refused op"), "{err}");
}
