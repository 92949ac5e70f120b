//! The shared conformance suite, run against PostgresStore.
//!
//! [`harness`] gives every case its own schema (location) and drops it when the
//! case's guard is dropped.

mod common;

use common::{SchemaGuard, pg_url, unique_schema};
use event_log_conformance::harness::check_harness;
use event_log_conformance::{Damage, FnHarness, StoreHarness};
use event_log_core::{Position, StoreError};
use event_log_postgres::{PostgresConfig, PostgresStore};

/// Stores on the test server in `EVENT_LOG_TEST_PG_URL` (panics, telling to run
/// `scripts/test.sh`, if it is unset), one fresh schema per location; the guard
/// drops the schema.
fn harness() -> FnHarness<SchemaGuard, String, PostgresStore> {
    let url = pg_url();
    let create = move || {
        let schema = unique_schema("conf");
        Ok((SchemaGuard::new(&url, &schema), schema))
    };
    let open = |schema: String| async move {
        let config = PostgresConfig::default()
            .with_schema(schema)
            .with_pool_size(4);
        PostgresStore::open(&pg_url(), config).await
    };
    FnHarness::new(create, open).with_damage(damage)
}

/// The one way: the text payload replaced by raw bytes that are not UTF-8.
async fn damage(
    schema: String,
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
                "UPDATE \"{schema}\".ops SET payload = NULL, payload_raw = '\\xff00'
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

/// The harness itself works: fresh locations are empty and distinct, reopening finds
/// the ops, and dropping the guard drops the schema.
#[tokio::test]
async fn harness_creates_reopens_and_cleans_up() {
    let harness = harness();
    let (guard, location) = check_harness(&harness).await.unwrap();
    let (_other_guard, other) = harness.create().await.unwrap();
    assert_ne!(location, other);

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
event_log_conformance::store_tests!(harness());
