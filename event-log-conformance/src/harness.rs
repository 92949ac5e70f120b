//! What a backend implements to run the suite, and the setup steps scenarios share.

use async_trait::async_trait;
use event_log_core::{EventLog, OpStore, Position, SigningKey, StoreError};

use crate::ensure_eq;
use crate::failure::Context;
use crate::fixture::{chain, key, records};

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

    /// Optional: damages the stored row at `position` behind the store's back (a
    /// column edited by hand, a record overwritten), in the backend's way number
    /// `variant` (0, 1, 2, ...), and says what the store must report. The store at
    /// `location` has been closed and dropped before the call.
    ///
    /// `Ok(None)` when the backend has no such way: the default, for stores that
    /// cannot be damaged from outside (then `damaged_row_is_corrupt` checks nothing).
    async fn damage_row(
        &self,
        location: &Self::Location,
        position: Position,
        variant: usize,
    ) -> Result<Option<Damage>, StoreError> {
        let _ = (location, position, variant);
        Ok(None)
    }
}

/// What [`StoreHarness::damage_row`] did, for the scenario to check the store's
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Text the `Corrupt` error of `load` must contain besides the position (the
    /// damaged column's name, say), or `""`.
    pub names: &'static str,
    /// `get` of the damaged op and `since` meet the damage too (`false` when it
    /// hides the row from them, as a damaged id does).
    pub every_reader: bool,
}

/// A fresh location, its guard, and a store opened there.
pub async fn fresh_store<H: StoreHarness>(
    h: &H,
) -> Result<(H::Guard, H::Location, H::Store), String> {
    let (guard, location) = h.create().await.ctx("create")?;
    let store = h.open(&location).await.ctx("open")?;
    Ok((guard, location, store))
}

/// An `EventLog` signed by `key` over a new store handle at `location`.
pub async fn open_log<H: StoreHarness>(
    h: &H,
    location: &H::Location,
    key: SigningKey,
) -> Result<EventLog<H::Store>, String> {
    let store = h.open(location).await.ctx("open")?;
    EventLog::open(store, key).await.ctx("open log")
}

/// A fresh location, its guard, and an `EventLog` signed by `key` over it.
pub async fn fresh_log<H: StoreHarness>(
    h: &H,
    key: SigningKey,
) -> Result<(H::Guard, H::Location, EventLog<H::Store>), String> {
    let (guard, location) = h.create().await.ctx("create")?;
    let log = open_log(h, &location, key).await?;
    Ok((guard, location, log))
}

/// Closes `log` and drops it (and its store handle), as a clean shutdown does.
pub async fn close_log<S: OpStore>(log: EventLog<S>) -> Result<(), String> {
    log.close().await.ctx("close")?;
    drop(log);
    Ok(())
}

/// Checks the harness itself, for a backend's own tests: a fresh location is empty,
/// a store reopened there after a drop without `close` has what was appended, and
/// another fresh location has none of it. Returns that location and its guard, for the backend to
/// check that dropping the guard cleans the location up.
pub async fn check_harness<H: StoreHarness>(h: &H) -> Result<(H::Guard, H::Location), String> {
    let (guard, location, store) = fresh_store(h).await?;
    let (_other_guard, _other, other_store) = fresh_store(h).await?;
    ensure_eq!(store.count().await.ctx("count")?, 0, "ops in a fresh store");
    let ops = chain(&key(7), 3, &[]);
    store.append(&records(&ops)).await.ctx("append")?;
    drop(store);
    let store = h.open(&location).await.ctx("reopen")?;
    ensure_eq!(store.count().await.ctx("count")?, 3, "ops after reopening");
    ensure_eq!(
        other_store.count().await.ctx("count")?,
        0,
        "ops in the other location"
    );
    store.close().await.ctx("close")?;
    other_store.close().await.ctx("close")?;
    Ok((guard, location))
}
