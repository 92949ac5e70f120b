//! The suite run against `MemStore`, the reference store.

use async_trait::async_trait;
use event_log_conformance::StoreHarness;
use event_log_core::{MemStore, StoreError};

/// Each location is one shared MemStore; "reopening" hands out a clone (same data).
struct MemHarness;

#[async_trait]
impl StoreHarness for MemHarness {
    type Store = MemStore;
    type Location = MemLocation;
    type Guard = ();

    async fn create(&self) -> Result<((), MemLocation), StoreError> {
        Ok(((), MemLocation(MemStore::new())))
    }

    async fn open(&self, location: &MemLocation) -> Result<MemStore, StoreError> {
        Ok(location.0.clone())
    }
}

#[derive(Clone)]
struct MemLocation(MemStore);

impl std::fmt::Debug for MemLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemLocation")
    }
}

event_log_conformance::store_tests!(MemHarness);
