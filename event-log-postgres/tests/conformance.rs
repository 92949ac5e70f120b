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

/// The ways a row is damaged behind the store's back, each naming the column the
/// `Corrupt` error must name: the text payload replaced by raw bytes that are not
/// UTF-8; the Lamport timestamp negative and NULL (its constraints dropped first, as
/// a schema altered by hand would be); the story and the idempotency key not UTF-8.
async fn damage(
    schema: String,
    position: Position,
    variant: usize,
) -> Result<Option<Damage>, StoreError> {
    let (alter, set, names) = match variant {
        0 => ("", "payload = NULL, payload_raw = '\\xff00'", "UTF-8"),
        1 => (
            "DROP CONSTRAINT ops_lamport_check",
            "lamport = -3",
            "lamport",
        ),
        2 => (
            "ALTER COLUMN lamport DROP NOT NULL",
            "lamport = NULL",
            "lamport",
        ),
        3 => ("", "story = '\\xff'", "story column"),
        4 => ("", "key = '\\xc3'", "key column"),
        _ => return Ok(None),
    };
    let admin = common::admin().await;
    let fail = |e| StoreError::unavailable("damage a row", e);
    if !alter.is_empty() {
        admin
            .batch_execute(&format!("ALTER TABLE \"{schema}\".ops {alter}"))
            .await
            .map_err(fail)?;
    }
    let changed = admin
        .execute(
            &format!("UPDATE \"{schema}\".ops SET {set} WHERE position = $1"),
            &[&(position.0 as i64)],
        )
        .await
        .map_err(fail)?;
    assert_eq!(changed, 1, "one row damaged");
    Ok(Some(Damage {
        names,
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
