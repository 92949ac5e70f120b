//! For stores kept in one file (SQLite, redb): a harness around a fresh temp dir,
//! and the checks every such store's own tests share.

use std::future::Future;
use std::path::{Path, PathBuf};

use event_log_core::{OpStore, StoreError, StoreErrorKind};
use tempfile::TempDir;

use crate::FnHarness;
use crate::assert::fails_with;
use crate::harness::check_harness;

/// A harness whose locations are the file `file_name` in a fresh temp dir (the dir
/// is the guard), opened with `open`.
pub fn harness<S, O, F>(file_name: &'static str, open: O) -> FnHarness<TempDir, PathBuf, S>
where
    S: OpStore,
    O: Fn(PathBuf) -> F + Send + Sync + 'static,
    F: Future<Output = Result<S, StoreError>> + Send + 'static,
{
    let create = move || {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::unavailable("create a temp dir for a test store", e))?;
        let path = dir.path().join(file_name);
        Ok((dir, path))
    };
    FnHarness::new(create, open)
}

/// Asserts that a read-only `open` of a missing file is `NotFound` naming the path,
/// also in a directory that does not exist, and creates nothing (a writable open
/// would create an empty store there).
pub async fn missing_file_read_only<S, O, F>(file_name: &str, open: O)
where
    O: Fn(PathBuf) -> F,
    F: Future<Output = Result<S, StoreError>>,
{
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(file_name);
    let shown = path.display().to_string();
    fails_with(open(path).await, StoreErrorKind::NotFound, &[&shown]);
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    let deeper = dir.path().join("no-such-dir").join(file_name);
    fails_with(
        open(deeper).await,
        StoreErrorKind::NotFound,
        &["no-such-dir"],
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// The names of the entries of `dir`, sorted (for checking what a store left there).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the temp dir")
        .map(|e| {
            e.expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Checks a file harness itself (see [`check_harness`]), and that dropping its
/// guard removes the file.
pub async fn check_file_harness<S: OpStore>(h: &FnHarness<TempDir, PathBuf, S>) {
    let (guard, path) = check_harness(h).await.unwrap_or_else(|e| panic!("{e}"));
    drop(guard);
    assert!(!path.exists(), "{} is left after the guard", path.display());
}
