//! [`RedbStats`]: counters of a [`crate::RedbStore`] a user may graph.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a store's counters since it was opened. Plain numbers, so they can
/// be exported to any metrics system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbStats {
    /// Write transactions committed (one per group).
    pub commits: u64,
    /// Append requests acknowledged with `Ok`.
    pub appends: u64,
    /// New ops written (duplicates skipped by id are not counted).
    pub ops_written: u64,
    /// Append requests refused with a conflict.
    pub conflicts: u64,
    /// Append requests failed by a storage error.
    pub failures: u64,
    /// The most requests that shared one commit.
    pub largest_group: u64,
}

/// The live counters, updated by the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) ops_written: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) largest_group: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RedbStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedbStats {
            commits: get(&self.commits),
            appends: get(&self.appends),
            ops_written: get(&self.ops_written),
            conflicts: get(&self.conflicts),
            failures: get(&self.failures),
            largest_group: get(&self.largest_group),
        }
    }
}
