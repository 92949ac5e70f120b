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
//! Raw backend inserts (pre-signed ops, one per call and in batches) are printed too,
//! to show what the store itself costs.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::bft::{KeyPair, Op, OpId, SignedOp, WrongKey};
use event_log::{Entry, EventLog, OpRecord, OpStore, Position, SigningKey, Transition};
use serde::Serialize;

use crate::exit::{self, CmdResult};
use crate::out::outln;
use crate::progress::bar;

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
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Clone)]
struct Row {
    figure: String,
    value: f64,
    unit: String,
    baseline_name: String,
    baseline: f64,
    ratio: f64,
    budget: String,
    within: Option<bool>,
}

fn payload(i: u64) -> Vec<u8> {
    Entry::Transition(Transition::now(
        format!("story-{}", i % 1000),
        "backlog",
        "coding",
        "DepsMet",
    ))
    .to_payload()
}

/// A chain of `n` ops by `key` after `prev`, signed one by one as the log signs.
fn sign_chain(
    key: &KeyPair,
    start_seq: u64,
    n: u64,
    mut prev: Option<(OpId, u64)>,
) -> Result<Vec<SignedOp>, WrongKey> {
    let mut out = Vec::with_capacity(n as usize);
    for k in 0..n {
        let op = Op {
            author: Default::default(),
            seq: start_seq + k,
            lamport: prev.map_or(0, |p| p.1) + 1,
            deps: prev.map(|p| vec![p.0]).unwrap_or_default(),
            payload: payload(k),
        }
        .draft(key)
        .sign(key)?;
        prev = Some((op.id(), op.lamport()));
        out.push(op);
    }
    Ok(out)
}

/// Starts one producer of the throughput measurement: `per` appends, each awaited.
///
/// Generic on purpose: spawned where the store type is `Arc<dyn OpStore>`, the
/// compiler cannot prove the append future `Send` for every lifetime of the `dyn`;
/// here it follows from `S: OpStore`.
fn spawn_producer<S: OpStore>(
    log: Arc<EventLog<S>>,
    p: u64,
    per: u64,
) -> tokio::task::JoinHandle<Result<(), event_log::Error>> {
    tokio::spawn(async move {
        for i in 0..per {
            log.append_transition(Transition::now(format!("p{p}-{i}"), "a", "b", "E"))
                .await?;
        }
        Ok(())
    })
}

fn fdatasync_latency(dir: &std::path::Path, n: u32) -> std::io::Result<Duration> {
    let path = dir.join("evlog-bench-fsync.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = [7u8; 4096];
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let d = start.elapsed() / n;
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(d)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
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
    let fsync = fdatasync_latency(&fsync_dir, 200)?;

    // Raw backend inserts of pre-signed ops: one per call, then batched.
    let half = (n / 2) as usize;
    let t = Instant::now();
    for op in &signed[..half] {
        store.append(&[OpRecord::new(op, false)]).await?;
    }
    let raw_single = t.elapsed() / half as u32;
    let t = Instant::now();
    for chunk in signed[half..].chunks(256) {
        let recs: Vec<OpRecord> = chunk.iter().map(|o| OpRecord::new(o, false)).collect();
        store.append(&recs).await?;
    }
    let raw_batched_rate = (signed.len() - half) as f64 / t.elapsed().as_secs_f64();

    // The log over the same store (a fresh sled).
    let log = Arc::new(EventLog::open(store.clone(), SigningKey::from_bytes(&[43; 32])).await?);
    let t = Instant::now();
    for i in 0..n {
        log.append_transition(Transition::now(format!("s{i}"), "a", "b", "E"))
            .await?;
    }
    let single = t.elapsed() / n as u32;
    let producers = 32u64;
    let per = (n / producers).max(1);
    let before = log.stats();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let log = log.clone();
        tasks.push(spawn_producer(log, p, per));
    }
    for t in tasks {
        t.await??;
    }
    let rate32 = (per * producers) as f64 / t.elapsed().as_secs_f64();
    let after = log.stats();
    let group = (after.appended - before.appended) as f64
        / (after.append_calls - before.append_calls).max(1) as f64;
    drop(log);

    rows.push(Row {
        figure: "raw insert, 1 op per call".into(),
        value: raw_single.as_secs_f64() * 1e6,
        unit: "µs/op".into(),
        baseline_name: "fdatasync".into(),
        baseline: fsync.as_secs_f64() * 1e6,
        ratio: raw_single.as_secs_f64() / fsync.as_secs_f64(),
        budget: "(info)".into(),
        within: None,
    });
    rows.push(Row {
        figure: "raw insert, 256 ops per call".into(),
        value: raw_batched_rate,
        unit: "ops/s".into(),
        baseline_name: "signing rate (1 core)".into(),
        baseline: sign_rate,
        ratio: raw_batched_rate / sign_rate,
        budget: "(info)".into(),
        within: None,
    });
    let lat_base = fsync + sign_each;
    rows.push(Row {
        figure: "append latency, 1 producer".into(),
        value: single.as_secs_f64() * 1e6,
        unit: "µs".into(),
        baseline_name: "fdatasync + 1 signature".into(),
        baseline: lat_base.as_secs_f64() * 1e6,
        ratio: single.as_secs_f64() / lat_base.as_secs_f64(),
        budget: "≤ 2.0".into(),
        within: Some(single.as_secs_f64() <= 2.0 * lat_base.as_secs_f64()),
    });
    rows.push(Row {
        figure: format!("append, 32 producers ({:.1} entries/store call)", group),
        value: rate32,
        unit: "events/s".into(),
        baseline_name: "signing rate (1 core)".into(),
        baseline: sign_rate,
        ratio: rate32 / sign_rate,
        budget: "≥ 0.7".into(),
        within: Some(rate32 >= 0.7 * sign_rate),
    });

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
    rows.push(Row {
        figure: format!("first open of {scanned} ops (all verified)"),
        value: first_open.as_secs_f64() * 1e3,
        unit: "ms".into(),
        baseline_name: "raw full scan".into(),
        baseline: scan.as_secs_f64() * 1e3,
        ratio: first_open.as_secs_f64() / scan.as_secs_f64(),
        budget: "(info)".into(),
        within: None,
    });
    let events = reopened.len() as u64;
    rows.push(Row {
        figure: format!("reopen of {scanned} ops (checkpointed)"),
        value: reopen.as_secs_f64() * 1e3,
        unit: "ms".into(),
        baseline_name: "raw full scan".into(),
        baseline: scan.as_secs_f64() * 1e3,
        ratio: reopen.as_secs_f64() / scan.as_secs_f64(),
        budget: "≤ 3.0".into(),
        within: Some(reopen.as_secs_f64() <= 3.0 * scan.as_secs_f64()),
    });
    if let (Some(r0), Some(r1)) = (rss0, rss1) {
        let per = r1.saturating_sub(r0) as f64 / events.max(1) as f64;
        rows.push(Row {
            figure: format!("resident memory per event ({events} events)"),
            value: per,
            unit: "bytes".into(),
            baseline_name: "budget".into(),
            baseline: 300.0,
            ratio: per / 300.0,
            budget: "≤ 1.0".into(),
            within: Some(per <= 300.0),
        });
    }
    drop(reopened);

    if a.json {
        for row in &rows {
            outln!("{}", serde_json::to_string(row)?)?;
        }
    } else {
        outln!(
            "{:<52} {:>14} {:<9} {:<26} {:>12} {:>7} {:>7}",
            "figure",
            "measured",
            "unit",
            "baseline",
            "baseline",
            "ratio",
            "budget"
        )?;
        for r in &rows {
            let verdict = match r.within {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            outln!(
                "{:<52} {:>14.1} {:<9} {:<26} {:>12.1} {:>7.2} {:>7} {}",
                r.figure,
                r.value,
                r.unit,
                r.baseline_name,
                r.baseline,
                r.ratio,
                r.budget,
                verdict
            )?;
        }
    }
    Ok(verdict(&rows))
}

/// The exit code of a run: [`exit::BUDGET`] if a figure missed its budget.
fn verdict(rows: &[Row]) -> ExitCode {
    if rows.iter().any(|r| r.within == Some(false)) {
        exit::code(exit::BUDGET)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(within: Option<bool>) -> Row {
        Row {
            figure: "f".into(),
            value: 1.0,
            unit: "u".into(),
            baseline_name: "b".into(),
            baseline: 1.0,
            ratio: 1.0,
            budget: "≤ 1.0".into(),
            within,
        }
    }

    #[test]
    fn a_missed_budget_exits_6_and_information_rows_do_not_count() {
        assert_eq!(verdict(&[row(None), row(Some(true))]), ExitCode::SUCCESS);
        assert_eq!(
            verdict(&[row(Some(true)), row(Some(false))]),
            exit::code(exit::BUDGET)
        );
    }
}
