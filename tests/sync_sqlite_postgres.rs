//! Sync between a sled's local SQLite log and the shared PostgreSQL log, both ways,
//! in chunks, interrupted half-way and resumed after reopening both stores.
//!
//! Needs a server: run with `scripts/test.sh -p event-log --test sync_sqlite_postgres`.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

use event_log::postgres::{PostgresConfig, PostgresStore};
use event_log::{AnyStore, EventLog, OpStore, SigningKey, Transition};
use event_log_conformance::read::ReadAll;

/// The test server, from `EVENT_LOG_TEST_PG_URL`. Never skips: a missing server is a
/// failed run, not a green one.
fn pg_url() -> String {
    match std::env::var("EVENT_LOG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "EVENT_LOG_TEST_PG_URL is not set: run the tests with `scripts/test.sh` \
             (it starts a throwaway PostgreSQL 15), or set it to a server you own, \
             e.g. postgres://postgres@127.0.0.1:5432/postgres"
        ),
    }
}

/// A schema name no other test or run uses.
fn unique_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("t_{tag}_{}_{nanos:x}", std::process::id())
}

/// Drops the schema when dropped (on its own thread and runtime, so it works from
/// inside an async test).
struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let store =
                    PostgresStore::open(&url, PostgresConfig::default().with_schema(&schema))
                        .await
                        .map_err(|e| e.to_string())?;
                store.drop_schema().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = outcome {
            eprintln!("warning: could not drop test schema {}: {e}", self.schema);
        }
    }
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn transition(who: &str, i: usize) -> Transition {
    Transition::now(format!("{who}-story-{i}"), "backlog", "coding", "DepsMet")
}

async fn append_n(log: &EventLog<AnyStore>, who: &str, n: usize) {
    for i in 0..n {
        log.append_transition(transition(who, i))
            .await
            .expect("append");
    }
}

/// Sends `from`'s ops that `to` lacks, at most `chunk` per merge, and only the first
/// `chunks` merges (`usize::MAX`: all). Returns how many ops were applied.
async fn push_chunks(
    from: &EventLog<AnyStore>,
    to: &EventLog<AnyStore>,
    chunk: usize,
    chunks: usize,
) -> usize {
    let ops = from.export_since(&to.version_vector()).await.unwrap();
    let mut applied = 0;
    for part in ops.chunks(chunk).take(chunks) {
        let report = to.merge(part.to_vec()).await.expect("merge a chunk");
        assert!(report.rejected().is_empty(), "{:?}", report.rejected());
        assert_eq!(
            report.buffered(),
            0,
            "export order is causal: nothing waits"
        );
        applied += report.applied();
    }
    applied
}

async fn stored(log: &EventLog<AnyStore>) -> u64 {
    log.store().count().await.expect("count stored ops")
}

/// A sled's SQLite log and the shared PostgreSQL log sync both ways in chunks; the
/// sync is cut after the first chunk of each direction, both stores are closed and
/// reopened, and the resumed sync ends with identical events on both sides and every
/// op stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_resumes_after_interruption() {
    let base = pg_url();
    let schema = unique_schema("sync_sqlite");
    let _guard = SchemaGuard {
        url: base.clone(),
        schema: schema.clone(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("sled.db").display());
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg = format!("{base}{sep}schema={schema}");

    // The local sled (key 1) records 40 events offline; two other sleds (keys 2 and
    // 3) record 30 each in the shared store.
    {
        let local = event_log::open(&sqlite_url, key(1)).await.expect("sqlite");
        append_n(&local, "local", 40).await;
        local.close().await.expect("close");
        for (n, who) in [(2, "two"), (3, "three")] {
            let other = event_log::open(&pg, key(n)).await.expect("postgres");
            append_n(&other, who, 30).await;
            other.close().await.expect("close");
        }
    }

    // First attempt: one chunk of 10 each way, then everything is dropped. The local
    // sled opens the shared log with its own key and never appends through it.
    {
        let local = event_log::open(&sqlite_url, key(1)).await.expect("sqlite");
        let shared = event_log::open(&pg, key(1)).await.expect("postgres");
        assert_eq!((local.visible_len(), shared.visible_len()), (40, 60));
        assert_eq!(push_chunks(&local, &shared, 10, 1).await, 10);
        assert_eq!(push_chunks(&shared, &local, 10, 1).await, 10);
        // Interrupted: no close, the handles are simply dropped.
    }

    // Reopened from disk and schema: the first chunks survived, the rest is resumed.
    let local = event_log::open(&sqlite_url, key(1))
        .await
        .expect("reopen sqlite");
    let shared = event_log::open(&pg, key(1)).await.expect("reopen postgres");
    assert_eq!(
        (local.visible_len(), shared.visible_len()),
        (50, 70),
        "merged chunks are durable"
    );
    assert_eq!(
        push_chunks(&local, &shared, 10, usize::MAX).await,
        30,
        "only what is missing is sent"
    );
    assert_eq!(push_chunks(&shared, &local, 10, usize::MAX).await, 50);

    assert_eq!(
        local.all_events().await.unwrap(),
        shared.all_events().await.unwrap(),
        "identical events"
    );
    assert_eq!(
        local.all_timeline().await.unwrap(),
        shared.all_timeline().await.unwrap(),
        "identical timelines"
    );
    assert_eq!(local.version_vector(), shared.version_vector());
    assert_eq!(local.visible_len(), 100);
    assert_eq!((stored(&local).await, stored(&shared).await), (100, 100));

    // A full sync now has nothing left to do, both ways.
    let again = event_log::sync(&local, &shared).await.expect("sync");
    assert_eq!(again.a_to_b.applied() + again.b_to_a.applied(), 0);
    assert_eq!((stored(&local).await, stored(&shared).await), (100, 100));

    // New events on both sides travel with `sync`; another sled of the shared store
    // sees the local sled's events.
    append_n(&local, "local-more", 5).await;
    let other = event_log::open(&pg, key(2)).await.expect("postgres");
    append_n(&other, "two-more", 5).await;
    shared.catch_up().await.expect("catch up");
    let report = event_log::sync(&local, &shared).await.expect("sync");
    assert_eq!((report.a_to_b.applied(), report.b_to_a.applied()), (5, 5));
    other.catch_up().await.expect("catch up");
    assert_eq!(
        other.all_events().await.unwrap(),
        local.all_events().await.unwrap()
    );
    assert_eq!(local.visible_len(), 110);
    assert_eq!((stored(&local).await, stored(&shared).await), (110, 110));

    // Reopening once more changes nothing.
    drop((local, shared, other));
    let local = event_log::open(&sqlite_url, key(1))
        .await
        .expect("reopen sqlite");
    let shared = event_log::open(&pg, key(1)).await.expect("reopen postgres");
    assert_eq!(
        local.all_timeline().await.unwrap(),
        shared.all_timeline().await.unwrap()
    );
    assert_eq!(local.visible_len(), 110);
}
