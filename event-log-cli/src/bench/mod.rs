//! `evlog bench`: the budgets of DESIGN §8, each measured beside its baseline in the
//! same run (the machines are shared and noisy, so only ratios mean something).
//!
//! | figure | baseline | budget |
//! |---|---|---|
//! | durable append, 32 producers (events/s) | single-core signing rate | ≥ 0.7 × |
//! | single-producer append latency | one fdatasync + one signature | ≤ 2 × |
//! | reopen of N events | raw full scan of the same rows | ≤ 3 × |
//! | resident memory per event after reopen | — | ≤ 300 bytes |
//!
//! It also times single-producer appends holding an idempotency key (each looks
//! its key up in the store first), alternating with the unkeyed ones and reported
//! against them, and the reads served by the store (the tailing read of the last
//! 1,000 events, a timeline page of 100 at a random point; their budget compares two
//! runs, `--events 100000` and `--events 10000000`).
//!
//! Raw backend inserts (pre-signed ops, one per call and in batches) are printed too,
//! to show what the store itself costs. Figures made of many calls (an fdatasync, a
//! raw insert, an append) show the median and 99th percentile of one call beside the
//! mean, from an HDR histogram.
//!
//! A figure that misses its budget makes the run exit with code 6 ("budget missed").
//! `--budget-scale S` scales every budget (below 1 tightens it: a ceiling `≤ r`
//! becomes `≤ r × S`, a floor `≥ r` becomes `≥ r ÷ S`), to hold a deployment to a
//! stricter target, or to check what a missed budget does.

use std::sync::Arc;
use std::time::Instant;

use event_log::bft::KeyPair;
use event_log::{Causal, EventLog, OpRecord, OpStore, Position, SigningKey, Transition};

use crate::exit::CmdResult;
use crate::progress::bar;

mod probe;
mod report;

use probe::{Latencies, fdatasync_latency, rss_bytes, sign_chain, spawn_producer};
use report::Row;

/// Arguments of `evlog bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// An EMPTY store to benchmark (default: a SQLite file in a temp dir).
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Events in the reopen/memory measurement (the budget is stated at 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Appends in each latency/throughput measurement.
    #[arg(long, default_value_t = 2_000)]
    appends: u64,
    /// Scales every budget: below 1 tightens it (a ceiling `≤ r` becomes
    /// `≤ r × S`, a floor `≥ r` becomes `≥ r ÷ S`), above 1 loosens it. A positive
    /// number.
    #[arg(long, default_value_t = 1.0, value_parser = budget_scale, value_name = "S")]
    budget_scale: f64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Reads served by the store on a log of `events` events of one sled: the tailing
/// read of the last 1,000 events and a timeline page of 100 at a random point,
/// 50 of each. (Their budget compares runs at two sizes, `--events 100000` and
/// `--events 10000000`: at 10M ≤ 2 × at 100k.)
async fn store_reads(
    log: &EventLog<Arc<dyn OpStore>>,
    events: u64,
) -> Result<Vec<Row>, event_log::Error> {
    let tip = log.version_vector();
    let mut tail = Latencies::new();
    let mut pages = Latencies::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..50 {
        let mut cursor = tip.clone();
        for (sled, seq) in tip.iter() {
            cursor.set(*sled, seq.saturating_sub(1000));
        }
        tail.time(async {
            loop {
                let page = log.read_since(&cursor, 1000).await?;
                cursor = page.next;
                if page.end {
                    return Ok::<_, event_log::Error>(());
                }
            }
        })
        .await?;
        // splitmix64: a point anywhere in the chain (one sled: lamport = seq).
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let at = Causal {
            lamport: (z ^ (z >> 31)) % events.max(1),
            id: event_log::OpId([0; 32]),
        };
        pages.time(log.read_timeline(&at, 100)).await?;
    }
    Ok(vec![
        Row::new(
            format!("read_since, the last 1000 of {events} events"),
            tail.quantile(0.5).as_secs_f64() * 1e3,
            "ms",
        )
        .percentiles(&tail),
        Row::new(
            format!("read_timeline, 100 events at a random point of {events}"),
            pages.quantile(0.5).as_secs_f64() * 1e3,
            "ms",
        )
        .percentiles(&pages),
    ])
}

/// Parses `--budget-scale`: a finite number above 0.
fn budget_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        self.store.iter().map(String::as_str).collect()
    }
}

/// Runs `evlog bench`.
pub async fn run(a: Args) -> CmdResult {
    let tmp = tempfile::tempdir()?;
    let url = a
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", tmp.path().join("bench.db").display()));
    let fsync_dir = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("redb://"))
        .and_then(|p| {
            std::path::Path::new(p.split('?').next().unwrap_or(p))
                .parent()
                .map(|d| d.to_path_buf())
        })
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let store = event_log::open_store(&url).await?;
    if store.count().await? != 0 {
        return Err(format!(
            "bench needs an empty store; {} holds ops",
            event_log::redact_url(&url)
        )
        .into());
    }
    let store: Arc<dyn OpStore> = Arc::from(store);
    let n = a.appends.max(100);
    let scale = a.budget_scale;
    let mut rows = Vec::new();
    eprintln!(
        "benchmarking {} ({n} appends, {} events for reopen)",
        event_log::redact_url(&url),
        a.events
    );

    // Baselines: signing, fdatasync.
    let key = KeyPair::new(SigningKey::from_bytes(&[42; 32]));
    let t = Instant::now();
    let signed = sign_chain(&key, 1, n, None)?;
    let sign_each = t.elapsed() / n as u32;
    let sign_rate = 1.0 / sign_each.as_secs_f64();
    let fsync_calls = fdatasync_latency(&fsync_dir, 200)?;
    let fsync = fsync_calls.mean();

    // Raw backend inserts of pre-signed ops: one per call, then batched.
    let half = (n / 2) as usize;
    let mut raw_calls = Latencies::new();
    for op in &signed[..half] {
        raw_calls
            .time(store.append(&[OpRecord::new(op, false)]))
            .await?;
    }
    let raw_single = raw_calls.mean();
    let t = Instant::now();
    for chunk in signed[half..].chunks(256) {
        let recs: Vec<OpRecord> = chunk.iter().map(|o| OpRecord::new(o, false)).collect();
        store.append(&recs).await?;
    }
    let raw_batched_rate = (signed.len() - half) as f64 / t.elapsed().as_secs_f64();

    // The log over the same store (a fresh sled).
    let log = Arc::new(EventLog::open(store.clone(), SigningKey::from_bytes(&[43; 32])).await?);
    // Unkeyed and keyed appends alternate, so both meet the same disk.
    let mut single_calls = Latencies::new();
    let mut keyed_calls = Latencies::new();
    for i in 0..n {
        let t = Transition::now(format!("s{i}"), "a", "b", "E");
        if i % 2 == 0 {
            single_calls.time(log.append_transition(t)).await?;
        } else {
            let t = t.with_idempotency_key(format!("bench-{i}"));
            keyed_calls.time(log.append_transition(t)).await?;
        }
    }
    let single = single_calls.mean();
    let keyed = keyed_calls.mean();
    let producers = 32u64;
    let per = (n / producers).max(1);
    let before = log.stats();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let log = log.clone();
        tasks.push(spawn_producer(log, p, per));
    }
    let mut calls32 = Latencies::new();
    for t in tasks {
        calls32.merge(&t.await??);
    }
    let rate32 = (per * producers) as f64 / t.elapsed().as_secs_f64();
    let after = log.stats();
    let group = (after.appended - before.appended) as f64
        / (after.append_calls - before.append_calls).max(1) as f64;
    drop(log);

    rows.push(
        Row::new("fdatasync of 4 KiB", fsync.as_secs_f64() * 1e6, "µs").percentiles(&fsync_calls),
    );
    rows.push(
        Row::new(
            "raw insert, 1 op per call",
            raw_single.as_secs_f64() * 1e6,
            "µs/op",
        )
        .against(
            "fdatasync",
            fsync.as_secs_f64() * 1e6,
            raw_single.as_secs_f64() / fsync.as_secs_f64(),
        )
        .percentiles(&raw_calls),
    );
    rows.push(
        Row::new("raw insert, 256 ops per call", raw_batched_rate, "ops/s").against(
            "signing rate (1 core)",
            sign_rate,
            raw_batched_rate / sign_rate,
        ),
    );
    let lat_base = fsync + sign_each;
    rows.push(
        Row::new(
            "append latency, 1 producer",
            single.as_secs_f64() * 1e6,
            "µs",
        )
        .against(
            "fdatasync + 1 signature",
            lat_base.as_secs_f64() * 1e6,
            single.as_secs_f64() / lat_base.as_secs_f64(),
        )
        .percentiles(&single_calls)
        .at_most(2.0, scale),
    );
    rows.push(
        Row::new(
            "append latency, 1 producer, with an idempotency key",
            keyed.as_secs_f64() * 1e6,
            "µs",
        )
        .against(
            "append latency, 1 producer",
            single.as_secs_f64() * 1e6,
            keyed.as_secs_f64() / single.as_secs_f64(),
        )
        .percentiles(&keyed_calls),
    );
    rows.push(
        Row::new(
            format!("append, 32 producers ({:.1} entries/store call)", group),
            rate32,
            "events/s",
        )
        .against("signing rate (1 core)", sign_rate, rate32 / sign_rate)
        .percentiles(&calls32)
        .at_least(0.7, scale),
    );

    // Reopen and memory: fill a second, empty location of the same kind.
    let fill_url = match a.store {
        None => Some(format!(
            "sqlite://{}",
            tmp.path().join("reopen.db").display()
        )),
        Some(ref u) if u.starts_with("memory:") => None,
        Some(ref u) if u.starts_with("sqlite://") || u.starts_with("redb://") => {
            let (scheme, _) = u.split_once("://").unwrap_or(("sqlite", ""));
            Some(format!(
                "{scheme}://{}",
                tmp.path().join("reopen.db").display()
            ))
        }
        Some(_) => None,
    };
    let reopen_store: Arc<dyn OpStore> = match &fill_url {
        Some(u) => Arc::from(event_log::open_store(u).await?),
        None => store.clone(),
    };
    let fill_key = KeyPair::new(SigningKey::from_bytes(&[44; 32]));
    let pb = bar(Some(a.events), "filling");
    let mut prev = None;
    let mut seq = 1;
    while seq <= a.events {
        let k = (a.events - seq + 1).min(4096);
        let ops = sign_chain(&fill_key, seq, k, prev)?;
        prev = ops.last().map(|o| (o.id(), o.lamport()));
        let recs: Vec<OpRecord> = ops.iter().map(|o| OpRecord::new(o, false)).collect();
        reopen_store.append(&recs).await?;
        seq += k;
        pb.inc(k);
    }
    pb.finish_and_clear();
    let t = Instant::now();
    let mut after = Position::START;
    let mut scanned = 0u64;
    loop {
        let page = reopen_store.load(after, 4096).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        scanned += page.len() as u64;
    }
    let scan = t.elapsed();
    // First open: every signature verified (batched, on every core); it leaves a
    // signed checkpoint, as a running sled does at close.
    let rss0 = rss_bytes();
    let t = Instant::now();
    let first = EventLog::open(reopen_store.clone(), SigningKey::from_bytes(&[45; 32])).await?;
    let first_open = t.elapsed();
    // Memory: the growth of the process while the first open built its state (later
    // opens reuse freed memory, so their growth says nothing).
    let rss1 = rss_bytes();
    first.checkpoint().await?;
    drop(first);
    let t = Instant::now();
    let reopened = EventLog::open(reopen_store.clone(), SigningKey::from_bytes(&[45; 32])).await?;
    let reopen = t.elapsed();
    rows.push(
        Row::new(
            format!("first open of {scanned} ops (all verified)"),
            first_open.as_secs_f64() * 1e3,
            "ms",
        )
        .against(
            "raw full scan",
            scan.as_secs_f64() * 1e3,
            first_open.as_secs_f64() / scan.as_secs_f64(),
        ),
    );
    let events = reopened.visible_len() as u64;
    rows.push(
        Row::new(
            format!("reopen of {scanned} ops (checkpointed)"),
            reopen.as_secs_f64() * 1e3,
            "ms",
        )
        .against(
            "raw full scan",
            scan.as_secs_f64() * 1e3,
            reopen.as_secs_f64() / scan.as_secs_f64(),
        )
        .at_most(3.0, scale),
    );
    if let (Some(r0), Some(r1)) = (rss0, rss1) {
        let per = r1.saturating_sub(r0) as f64 / events.max(1) as f64;
        rows.push(
            Row::new(
                format!("resident memory per event ({events} events)"),
                per,
                "bytes",
            )
            .against("budget", 300.0, per / 300.0)
            .at_most(1.0, scale),
        );
    }
    rows.extend(store_reads(&reopened, a.events).await?);
    drop(reopened);

    report::print(&rows, a.json)?;
    Ok(report::verdict(&rows))
}
