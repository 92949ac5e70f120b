//! The shared conformance suite, run against PostgresStore.
//!
//! [`PostgresHarness`] gives every case its own schema (location) and drops it when
//! the case's guard is dropped.

mod common;

use async_trait::async_trait;
use common::{SchemaGuard, pg_url, unique_schema};
use event_log_conformance::{Damage, StoreHarness};
use event_log_core::{OpStore, Position, StoreError};
use event_log_postgres::{PostgresConfig, PostgresStore};

/// Stores on the test server, one fresh schema per [`StoreHarness::create`].
pub struct PostgresHarness {
    url: String,
}

impl PostgresHarness {
    /// The harness for the server in `EVENT_LOG_TEST_PG_URL` (panics, telling to run
    /// `scripts/test.sh`, if it is unset).
    pub fn from_env() -> Self {
        PostgresHarness { url: pg_url() }
    }
}

#[async_trait]
impl StoreHarness for PostgresHarness {
    type Store = PostgresStore;
    /// A schema name.
    type Location = String;
    /// Drops the schema.
    type Guard = SchemaGuard;

    async fn create(&self) -> Result<(SchemaGuard, String), StoreError> {
        let schema = unique_schema("conf");
        Ok((SchemaGuard::new(&self.url, &schema), schema))
    }

    async fn open(&self, location: &String) -> Result<PostgresStore, StoreError> {
        PostgresStore::open(
            &self.url,
            PostgresConfig::default()
                .with_schema(location.clone())
                .with_pool_size(4),
        )
        .await
    }

    /// The one way: the text payload replaced by raw bytes that are not UTF-8.
    async fn damage_row(
        &self,
        location: &String,
        position: Position,
        variant: usize,
    ) -> Result<Option<Damage>, StoreError> {
        if variant > 0 {
            return Ok(None);
        }
        let changed = common::admin()
            .await
            .execute(
                &format!(
                    "UPDATE \"{location}\".ops SET payload = NULL, payload_raw = '\\xff00'
                     WHERE position = $1"
                ),
                &[&(position.0 as i64)],
            )
            .await
            .map_err(|e| StoreError::unavailable("damage a row", e))?;
        assert_eq!(changed, 1, "one row damaged");
        Ok(Some(Damage {
            names: "UTF-8",
            every_reader: true,
        }))
    }
}

/// The harness itself works: fresh locations are empty and distinct, reopening finds
/// the ops, and dropping the guard drops the schema.
#[tokio::test]
async fn harness_creates_reopens_and_cleans_up() {
    let harness = PostgresHarness::from_env();
    let (guard, location) = harness.create().await.unwrap();
    let (_other_guard, other) = harness.create().await.unwrap();
    assert_ne!(location, other);

    let store = harness.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    store.append(&common::chain(1, 1, 3, "h")).await.unwrap();
    drop(store);
    let store = harness.open(&location).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(
        harness.open(&other).await.unwrap().count().await.unwrap(),
        0
    );
    store.close().await.unwrap();
    drop(store);

    drop(guard);
    let exists = common::admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&location],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(exists, 0, "the guard dropped the schema");
}

// One #[test] per conformance scenario, each case in its own schema.
event_log_conformance::store_tests!(PostgresHarness::from_env());
