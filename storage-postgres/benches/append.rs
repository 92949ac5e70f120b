//! Append throughput through `EventLog` on PostgreSQL, against raw `INSERT`s of the
//! very same rows, measured in the same run on the same server.
//!
//! ```text
//! EVENT_LOG_TEST_PG_URL=postgres://user@127.0.0.1:5432/db \
//!     cargo bench -p storage-postgres --bench append
//! ```
//!
//! `EVENT_LOG_BENCH_EVENTS` (default 20000) sets the events of the 32-producer runs;
//! single-producer runs use a tenth. Every run uses its own schema, dropped at the end.
//!
//! - `eventlog`: `EventLog::append_transition` from P tasks (sequencing, signing,
//!   group commit, conflict check, `NOTIFY`).
//! - `raw 1-row`: the rows the eventlog run stored, one `INSERT` each
//!   (`raw_insert_rows`: no checks, no notify), from P tasks.
//! - `raw batch 32`: the same rows, 32 per `INSERT`, from P tasks; 32 is the most one
//!   group commit of 32 one-at-a-time producers can gather.
//! - `raw batch 1024`: the same rows, 1024 per `INSERT`, one task: the ceiling.
//! - `eventlog x32 no notify`: the eventlog run on a store with `notify: false`.
//! - `sign only`: `Op::sign_all` of as many ops, 16 at a time, no store.
//! - `store.append batch N`: the same rows through `OpStore::append` (conflict
//!   handling, `NOTIFY`), N per call: the store's share of an eventlog run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bft_json_crdt::Op;
use event_log_core::{EventLog, OpRecord, OpStore, Position, SigningKey, Transition};
use storage_postgres::{PostgresConfig, PostgresStore};

/// Producers of the concurrent runs.
const PRODUCERS: usize = 32;

struct Row {
    name: String,
    events: usize,
    took: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }
}

fn main() {
    let url = match std::env::var("EVENT_LOG_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            eprintln!(
                "EVENT_LOG_TEST_PG_URL is not set: point it at a PostgreSQL server you own \
                 (scripts/test.sh shows how to start a throwaway one), e.g. \
                 EVENT_LOG_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
                 cargo bench -p storage-postgres --bench append"
            );
            std::process::exit(2);
        }
    };
    let events: usize = std::env::var("EVENT_LOG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = rt.block_on(run(&url, events)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A store on a fresh schema for one run.
async fn fresh(url: &str, tag: &str, notify: bool) -> Result<PostgresStore, BoxError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let schema = format!("bench_{tag}_{}_{:x}", std::process::id(), nanos);
    let config = PostgresConfig {
        pool_size: PRODUCERS + 8,
        notify,
        ..PostgresConfig::with_schema(schema)
    };
    Ok(PostgresStore::open(url, config).await?)
}

async fn run(url: &str, events: usize) -> Result<(), BoxError> {
    let single = (events / 10).max(1);
    let mut rows = Vec::new();

    let (row, _) = eventlog(url, 1, single, true).await?;
    rows.push(row);
    let (row, records) = eventlog(url, PRODUCERS, events, true).await?;
    rows.push(row);
    let (row, _) = eventlog(url, PRODUCERS, events, false).await?;
    rows.push(row);
    rows.push(sign_only(events));
    rows.push(store_append(url, 1, 16, &records).await?);
    rows.push(store_append(url, PRODUCERS, 32, &records).await?);

    rows.push(raw(url, "raw 1-row", 1, 1, &records[..single]).await?);
    rows.push(raw(url, "raw 1-row", PRODUCERS, 1, &records).await?);
    rows.push(raw(url, "raw batch 32", 1, 32, &records).await?);
    rows.push(raw(url, "raw batch 32", PRODUCERS, 32, &records).await?);
    rows.push(raw(url, "raw batch 1024", 1, 1024, &records).await?);

    let base = rows
        .iter()
        .find(|r| r.name == format!("raw batch 32 x{PRODUCERS}"))
        .map(Row::rate)
        .unwrap_or(f64::NAN);
    println!();
    println!(
        "{:<24} {:>8} {:>10} {:>12} {:>22}",
        "run", "events", "seconds", "events/s", "vs raw batch 32 x32"
    );
    for r in &rows {
        println!(
            "{:<24} {:>8} {:>10.3} {:>12.0} {:>22.2}",
            r.name,
            r.events,
            r.took.as_secs_f64(),
            r.rate(),
            r.rate() / base
        );
    }
    Ok(())
}

/// `events` appends through an `EventLog` from `producers` tasks; returns the timing
/// and the rows stored, in store order.
async fn eventlog(
    url: &str,
    producers: usize,
    events: usize,
    notify: bool,
) -> Result<(Row, Vec<OpRecord>), BoxError> {
    let store = fresh(url, "log", notify).await?;
    let log = Arc::new(EventLog::open(store.clone(), SigningKey::from_bytes(&[9; 32])).await?);
    let per = events.div_ceil(producers);
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let log = log.clone();
            let n = per.min(events.saturating_sub(p * per));
            tokio::spawn(async move {
                for i in 0..n {
                    let t =
                        Transition::now(format!("story-{p}-{i}"), "backlog", "coding", "DepsMet");
                    log.append_transition(t).await?;
                }
                Ok::<_, event_log_core::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed();
    let stats = log.stats();
    eprintln!(
        "eventlog x{producers} (notify {notify}): {} appends in {} store calls ({:.1} per call)",
        stats.appended,
        stats.append_calls,
        stats.appended as f64 / stats.append_calls.max(1) as f64
    );
    let records: Vec<OpRecord> = store
        .load(Position::START, usize::MAX)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    store.drop_schema().await?;
    let row = Row {
        name: format!(
            "eventlog x{producers}{}",
            if notify { "" } else { " no notify" }
        ),
        events,
        took,
    };
    Ok((row, records))
}

/// Signing alone, 16 ops per `Op::sign_all` as in a group commit: the core's CPU
/// cost per event, no store involved.
fn sign_only(events: usize) -> Row {
    let key = SigningKey::from_bytes(&[9; 32]);
    let started = Instant::now();
    let mut signed = 0;
    let mut seq = 0;
    while signed < events {
        let drafts: Vec<Op> = (0..16.min(events - signed))
            .map(|_| {
                seq += 1;
                Op {
                    author: Default::default(),
                    seq,
                    lamport: seq,
                    deps: Vec::new(),
                    payload: format!(r#"{{"story":"story-{seq}","to":"coding"}}"#).into_bytes(),
                }
            })
            .collect();
        signed += Op::sign_all(drafts, &key).len();
    }
    Row {
        name: "sign only (no store)".into(),
        events,
        took: started.elapsed(),
    }
}

/// The rows inserted raw, `batch` per statement, from `producers` tasks.
async fn raw(
    url: &str,
    name: &str,
    producers: usize,
    batch: usize,
    records: &[OpRecord],
) -> Result<Row, BoxError> {
    insert(url, name, producers, batch, records, false).await
}

/// The rows through `OpStore::append` (conflict handling, `NOTIFY`), `batch` per call,
/// from `producers` tasks: the store's share of an eventlog run, without signing.
async fn store_append(
    url: &str,
    producers: usize,
    batch: usize,
    records: &[OpRecord],
) -> Result<Row, BoxError> {
    let name = format!("store.append batch {batch}");
    insert(url, &name, producers, batch, records, true).await
}

async fn insert(
    url: &str,
    name: &str,
    producers: usize,
    batch: usize,
    records: &[OpRecord],
    checked: bool,
) -> Result<Row, BoxError> {
    // Producers take batches off one shared queue.
    let store = fresh(url, "raw", checked).await?;
    let batches: Vec<Vec<OpRecord>> = records.chunks(batch).map(<[_]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|_| {
            let (store, queue) = (store.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().map_err(|_| "queue poisoned")?.next();
                    let Some(b) = next else {
                        return Ok::<_, BoxError>(());
                    };
                    if checked {
                        store.append(&b).await?;
                    } else {
                        store.raw_insert_rows(&b).await?;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed();
    store.drop_schema().await?;
    Ok(Row {
        name: format!("{name} x{producers}"),
        events: records.len(),
        took,
    })
}
