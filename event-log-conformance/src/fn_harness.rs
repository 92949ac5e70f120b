//! A [`StoreHarness`] made of functions, so a backend's `tests/conformance.rs` states
//! only what is its own: how a location is made, how a store opens there, and
//! (optionally) how a row is damaged behind its back.

use std::future::Future;

use async_trait::async_trait;
use event_log_core::{OpStore, Position, StoreError};
use futures::future::BoxFuture;

use crate::harness::{Damage, StoreHarness};

type Create<G, L> = Box<dyn Fn() -> Result<(G, L), StoreError> + Send + Sync>;
type Open<L, S> = Box<dyn Fn(L) -> BoxFuture<'static, Result<S, StoreError>> + Send + Sync>;
type DamageRow<L> = Box<
    dyn Fn(L, Position, usize) -> BoxFuture<'static, Result<Option<Damage>, StoreError>>
        + Send
        + Sync,
>;

/// A harness whose steps are functions: `create` gives a fresh location and its
/// guard, `open` opens a store at (a clone of) a location, and the optional
/// [`with_damage`](Self::with_damage) hook is [`StoreHarness::damage_row`].
///
/// For a store in one file, [`crate::file::harness`] builds one around a temp dir.
pub struct FnHarness<G, L, S> {
    create: Create<G, L>,
    open: Open<L, S>,
    damage: Option<DamageRow<L>>,
}

impl<G, L, S> FnHarness<G, L, S> {
    /// A harness that creates locations with `create` and opens stores with `open`;
    /// it damages no rows.
    pub fn new<C, O, F>(create: C, open: O) -> Self
    where
        C: Fn() -> Result<(G, L), StoreError> + Send + Sync + 'static,
        O: Fn(L) -> F + Send + Sync + 'static,
        F: Future<Output = Result<S, StoreError>> + Send + 'static,
    {
        FnHarness {
            create: Box::new(create),
            open: Box::new(move |location| Box::pin(open(location))),
            damage: None,
        }
    }

    /// The same harness, damaging rows with `damage` (see
    /// [`StoreHarness::damage_row`] for the contract).
    pub fn with_damage<D, F>(mut self, damage: D) -> Self
    where
        D: Fn(L, Position, usize) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Option<Damage>, StoreError>> + Send + 'static,
    {
        self.damage = Some(Box::new(move |location, position, variant| {
            Box::pin(damage(location, position, variant))
        }));
        self
    }
}

#[async_trait]
impl<G, L, S> StoreHarness for FnHarness<G, L, S>
where
    G: Send + 'static,
    L: Clone + Send + Sync + std::fmt::Debug + 'static,
    S: OpStore,
{
    type Store = S;
    type Location = L;
    type Guard = G;

    async fn create(&self) -> Result<(G, L), StoreError> {
        (self.create)()
    }

    async fn open(&self, location: &L) -> Result<S, StoreError> {
        (self.open)(location.clone()).await
    }

    async fn damage_row(
        &self,
        location: &L,
        position: Position,
        variant: usize,
    ) -> Result<Option<Damage>, StoreError> {
        match &self.damage {
            Some(damage) => damage(location.clone(), position, variant).await,
            None => Ok(None),
        }
    }
}
