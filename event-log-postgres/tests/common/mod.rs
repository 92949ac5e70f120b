//! Shared by the event-log-postgres integration tests: the server URL, unique schemas
//! that drop themselves, and signed test ops.
#![allow(dead_code)]

pub mod proxy;

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bft_json_crdt::{Op, OpId, SignedOp, SigningKey};
use event_log_core::OpRecord;
use event_log_postgres::{PostgresConfig, PostgresStore};

/// The test server, from `EVENT_LOG_TEST_PG_URL`. Never skips: a missing server is a
/// failed run, not a green one.
pub fn pg_url() -> String {
    match std::env::var("EVENT_LOG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "EVENT_LOG_TEST_PG_URL is not set: run the tests with `scripts/test.sh` \
             (it starts a throwaway PostgreSQL 15), or set it to a server you own, \
             e.g. postgres://postgres@127.0.0.1:5432/postgres"
        ),
    }
}

/// A schema name no other test (or run) uses: `t_<tag>_<random hex>`.
pub fn unique_schema(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("t_{tag}_{:016x}", h.finish())
}

/// Drops a schema when dropped (blocking, on its own thread and runtime, so it works
/// from inside or outside an async test).
#[derive(Debug)]
pub struct SchemaGuard {
    pub url: String,
    pub schema: String,
}

impl SchemaGuard {
    pub fn new(url: &str, schema: &str) -> Self {
        SchemaGuard {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = outcome {
            eprintln!("warning: could not drop test schema {}: {e}", self.schema);
        }
    }
}

/// A fresh schema (dropped with the guard) and a store on it.
pub async fn fresh_store(tag: &str) -> (SchemaGuard, PostgresStore) {
    let url = pg_url();
    let schema = unique_schema(tag);
    let guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::open(&url, config(&schema))
        .await
        .expect("open a fresh store");
    (guard, store)
}

/// The test configuration for `schema`: a small pool, the schema as
/// `application_name` so tests can find the store's backends.
pub fn config(schema: &str) -> PostgresConfig {
    PostgresConfig::default()
        .with_schema(schema)
        .with_pool_size(4)
        .with_application_name(schema.to_owned())
        .with_listen_ping_interval(Duration::from_secs(2))
}

/// A plain connection for inspecting or disturbing the server.
pub async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .expect("connect the admin client");
    tokio::spawn(conn);
    client
}

/// Waits (up to 10 s) for a backend of `application_name` to block on a lock, and
/// returns its pid. `client` is any connection (a transaction holding the lock, say).
pub async fn blocked_backend(
    client: &impl tokio_postgres::GenericClient,
    application_name: &str,
) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&application_name],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backend of {application_name} ever blocked on a lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The signing key of test sled `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A signed op of sled `n`.
pub fn signed(n: u8, seq: u64, deps: Vec<OpId>, payload: &str) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: seq,
        deps,
        payload: payload.as_bytes().to_vec(),
    }
    .sign(&key(n))
}

/// `count` primary ops of sled `n`, seqs `first..`, each depending on the previous.
pub fn chain(n: u8, first: u64, count: u64, tag: &str) -> Vec<OpRecord> {
    let mut out: Vec<OpRecord> = Vec::new();
    for seq in first..first + count {
        let deps = out.last().map(|r| vec![r.id]).unwrap_or_default();
        let payload = format!(r#"{{"sled":{n},"seq":{seq},"tag":"{tag}"}}"#);
        out.push(OpRecord::new(&signed(n, seq, deps, &payload), false));
    }
    out
}
