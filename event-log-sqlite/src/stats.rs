//! [`WriterStats`]: counters of the writer thread a user may graph.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the writer, for graphs. Read them with [`crate::SqliteStore::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions committed (each holds one or more append calls).
    pub groups: u64,
    /// Append calls answered `Ok`.
    pub appends: u64,
    /// Ops written (ops skipped as already stored are not counted).
    pub ops_written: u64,
    /// Append calls refused with `StoreError::Conflict`.
    pub conflicts: u64,
    /// Append calls failed for any other reason.
    pub failures: u64,
}

/// The live counters, updated by the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) groups: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) ops_written: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WriterStats {
            groups: get(&self.groups),
            appends: get(&self.appends),
            ops_written: get(&self.ops_written),
            conflicts: get(&self.conflicts),
            failures: get(&self.failures),
        }
    }
}
