//! What a backend implements to run the suite.

use async_trait::async_trait;
use event_log_core::{OpStore, StoreError};

/// Creates fresh store locations and opens stores at them.
///
/// Modelled on openraft's store builder: one call gives a location and a guard that
/// cleans the location up when dropped (a temp dir, a schema), and the location can be
/// opened again and again to simulate restarts.
#[async_trait]
pub trait StoreHarness: Send + Sync + 'static {
    /// The store under test.
    type Store: OpStore;
    /// Where a store lives (a path, a schema name); opened again for restarts.
    type Location: Clone + Send + Sync + std::fmt::Debug + 'static;
    /// Cleans the location up when dropped.
    type Guard: Send + 'static;

    /// A fresh, empty location and its guard.
    async fn create(&self) -> Result<(Self::Guard, Self::Location), StoreError>;

    /// Opens (or reopens) the store at `location`. A previous store at the same
    /// location has been dropped (without `close` in some scenarios) before this call.
    async fn open(&self, location: &Self::Location) -> Result<Self::Store, StoreError>;
}
