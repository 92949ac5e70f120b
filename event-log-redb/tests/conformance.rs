//! The shared conformance suite, run against [`RedbStore`].

use std::path::{Path, PathBuf};

mod common;

use event_log_conformance::file::check_file_harness;
use event_log_conformance::{Damage, FnHarness};
use event_log_core::{Position, StoreError};
use event_log_redb::{RedbConfig, RedbStore};
use tempfile::TempDir;

/// Records a damaged row is overwritten with: garbage, a truncated record, nothing.
const DAMAGE: [&[u8]; 3] = [b"garbage", &[2, 0, 7], &[]];

/// Offset of the story's length in a record (crate docs, "On-disk format").
const STORY_AT: usize = 82;
/// Flag bit of a record that holds a story.
const FLAG_STORY: u8 = 0b10;

/// An edit of a stored record into a damaged one; `false` if the record cannot be
/// damaged so.
type Edit = fn(&mut Vec<u8>) -> bool;

/// The damages made from the stored record itself, after [`DAMAGE`]: what the
/// `Corrupt` error names, and the edit.
const EDITS: [(&str, Edit); 4] = [
    // Cut inside the lamport.
    ("lamport", |raw| {
        raw.truncate(STORY_AT - 3);
        true
    }),
    // Cut inside the story (the conformance row is a transition: it has one).
    ("story", |raw| {
        let has = raw.get(1).is_some_and(|f| f & FLAG_STORY != 0) && raw.len() > STORY_AT + 6;
        raw.truncate(STORY_AT + 6);
        has
    }),
    // A story that is not UTF-8.
    ("story is not UTF-8", |raw| {
        let has = raw.get(1).is_some_and(|f| f & FLAG_STORY != 0) && raw.len() > STORY_AT + 4;
        if has {
            raw[STORY_AT + 4] = 0xff;
        }
        has
    }),
    // A flag this format does not have.
    ("flags", |raw| match raw.get_mut(1) {
        Some(flags) => {
            *flags |= 0b1000_0000;
            true
        }
        None => false,
    }),
];

/// Stores in a file inside a fresh temp dir; the dir is the guard.
fn harness() -> FnHarness<TempDir, PathBuf, RedbStore> {
    event_log_conformance::file::harness("store.redb", |path| {
        RedbStore::open(path, RedbConfig::default())
    })
    .with_damage(|path, position, variant| std::future::ready(damage(&path, position, variant)))
}

/// Overwrites the record at `position` with damage number `variant`: one of
/// [`DAMAGE`], then one of [`EDITS`] of the stored record.
fn damage(path: &Path, position: Position, variant: usize) -> Result<Option<Damage>, StoreError> {
    if let Some(value) = DAMAGE.get(variant) {
        common::overwrite(path, position.0, value);
        return Ok(Some(Damage {
            names: "",
            every_reader: true,
        }));
    }
    let Some((names, edit)) = EDITS.get(variant - DAMAGE.len()) else {
        return Ok(None);
    };
    let mut raw = common::read_record(path, position.0).ok_or_else(|| StoreError::Invalid {
        message: format!("no record at {position} to damage"),
    })?;
    if !edit(&mut raw) {
        return Err(StoreError::Invalid {
            message: format!("the record at {position} cannot be damaged as {names:?}"),
        });
    }
    common::overwrite(path, position.0, &raw);
    Ok(Some(Damage {
        names,
        every_reader: true,
    }))
}

/// The harness creates a location, opens it, and reopens it after a drop without
/// close; dropping its guard removes the file.
#[tokio::test]
async fn harness_opens_and_reopens() {
    check_file_harness(&harness()).await;
}

// One #[test] per conformance scenario.
event_log_conformance::store_tests!(harness());
