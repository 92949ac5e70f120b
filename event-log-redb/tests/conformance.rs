//! The shared conformance suite, run against [`RedbStore`].

use std::path::{Path, PathBuf};

mod common;

use event_log_conformance::file::check_file_harness;
use event_log_conformance::{Damage, FnHarness};
use event_log_core::{Position, StoreError};
use event_log_redb::{RedbConfig, RedbStore};
use tempfile::TempDir;

/// Records a damaged row is overwritten with: garbage, a truncated record, nothing.
const DAMAGE: [&[u8]; 3] = [b"garbage", &[1, 0, 7], &[]];

/// Stores in a file inside a fresh temp dir; the dir is the guard.
fn harness() -> FnHarness<TempDir, PathBuf, RedbStore> {
    event_log_conformance::file::harness("store.redb", |path| {
        RedbStore::open(path, RedbConfig::default())
    })
    .with_damage(|path, position, variant| std::future::ready(damage(&path, position, variant)))
}

/// Overwrites the record at `position` with damage number `variant`.
fn damage(path: &Path, position: Position, variant: usize) -> Result<Option<Damage>, StoreError> {
    let Some(value) = DAMAGE.get(variant) else {
        return Ok(None);
    };
    common::overwrite(path, position.0, value);
    Ok(Some(Damage {
        names: "",
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
