//! The shared conformance suite, run against `SqliteStore`.

mod common;

use std::path::PathBuf;

use event_log_conformance::file::check_file_harness;
use event_log_conformance::{Damage, FnHarness};
use event_log_core::{Position, StoreError};
use event_log_sqlite::SqliteStore;
use tempfile::TempDir;

/// The ways a row is damaged by hand: a column set to a value of the wrong type or
/// size, the column the error must name, and whether `get` and `since` meet it.
const DAMAGE: [(&str, &str, bool); 14] = [
    ("payload = x'ff00'", "column payload", true),
    ("author = x'0102'", "column author", true),
    ("seq = 'x'", "column seq", true),
    ("evidence = 'yes'", "column evidence", true),
    ("seq = -4", "column seq", false),
    ("evidence = 2", "column evidence", false),
    ("bytes = 'text'", "column bytes", false),
    ("id = 42", "column id", false),
    ("id = x'00'", "column id", false),
    ("lamport = 'x'", "column lamport", true),
    ("lamport = -1", "column lamport", true),
    ("story = x'01'", "column story", true),
    ("story = CAST(x'ff' AS TEXT)", "column story", true),
    ("key = x'02'", "column key", true),
];

/// Stores in a database file inside a fresh temp dir; the dir is the guard.
fn harness() -> FnHarness<TempDir, PathBuf, SqliteStore> {
    event_log_conformance::file::harness("events.db", SqliteStore::open_default)
        .with_damage(|path, position, variant| std::future::ready(damage(&path, position, variant)))
}

/// Sets the column of damage number `variant` in the row at `position` by hand.
fn damage(
    path: &PathBuf,
    position: Position,
    variant: usize,
) -> Result<Option<Damage>, StoreError> {
    let Some(&(set, names, every_reader)) = DAMAGE.get(variant) else {
        return Ok(None);
    };
    let update = format!("UPDATE ops SET {set} WHERE position = {}", position.0);
    let changed = common::raw(path)
        .execute(&update, [])
        .map_err(|e| StoreError::unavailable("damage a row", e))?;
    assert_eq!(changed, 1, "{update}");
    Ok(Some(Damage {
        names,
        every_reader,
    }))
}

/// The harness gives a fresh empty location that reopens with what was appended,
/// also after a drop without `close` (what the suite's restart scenarios do), and
/// dropping its guard removes the file.
#[tokio::test]
async fn harness_creates_and_reopens() {
    check_file_harness(&harness()).await;
}

// One #[test] per conformance scenario.
event_log_conformance::store_tests!(harness());
