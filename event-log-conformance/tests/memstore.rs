//! The suite run against `MemStore`, the reference store.

use event_log_conformance::FnHarness;
use event_log_core::{MemStore, StoreError};

/// Each location is one shared MemStore; "reopening" hands out a clone (same data).
fn harness() -> FnHarness<(), MemLocation, MemStore> {
    FnHarness::new(
        || Ok(((), MemLocation(MemStore::new()))),
        |location: MemLocation| async move { Ok::<_, StoreError>(location.0) },
    )
}

#[derive(Clone)]
struct MemLocation(MemStore);

impl std::fmt::Debug for MemLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemLocation")
    }
}

event_log_conformance::store_tests!(harness());
