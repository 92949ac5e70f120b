//! Append throughput through `EventLog` on PostgreSQL, against raw `INSERT`s of the
//! very same rows, measured in the same run on the same server.
//!
//! ```text
//! EVENT_LOG_TEST_PG_URL=postgres://user@127.0.0.1:5432/db \
//!     cargo bench -p event-log-postgres --bench append
//! ```
//!
//! `EVENT_LOG_BENCH_EVENTS` (default 20000) sets the events of the 32-producer runs;
//! single-producer runs use a tenth. Every run uses its own schema, dropped at the end.
//! `EVENT_LOG_BENCH_PIPELINE=N` sets the pipeline depth of the eventlog runs (default:
//! the store's default). The table is followed by the headline ratios over `EVENT_LOG_BENCH_ROUNDS` (default
//! 5) rounds in which each eventlog run and its raw baseline alternate going first.
//! `EVENT_LOG_BENCH_DELAY_MS=N` sends every connection (the baselines' too) through a
//! proxy that delays each direction by N ms, like a database on another host; the
//! round trip it adds is measured and printed.
//!
//! - `eventlog`: `EventLog::append_transition` from P tasks (sequencing, signing,
//!   group commit, conflict check, `NOTIFY`).
//! - `raw 1-row`: the rows the eventlog run stored, one `INSERT` each
//!   (`raw_insert_rows`: no checks, no notify), from P tasks.
//! - `raw batch 32`: the same rows, 32 per `INSERT`, from P tasks; 32 is the most one
//!   group commit of 32 one-at-a-time producers can gather.
//! - `raw batch 1024`: the same rows, 1024 per `INSERT`, one task: the ceiling.
//! - `eventlog x32 no notify`: the eventlog run on a store with `notify: false`.
//! - `eventlog x32 pipeline 1`: the eventlog run with pipelining off (the next group
//!   waits for the previous answer).
//! - `eventlog batch 32 x32`: 32 producers each handing 32 entries per `append_all`,
//!   the same shape as `raw batch 32 x32` (and again with pipelining off).
//! - `sign only`: `Op::sign_all` of as many ops, 16 at a time, no store (and
//!   `ed25519-dalek`: `Op::sign` one by one, the signer without the `aws-lc` feature).
//! - `store.append batch N`: the same rows through `OpStore::append` (conflict
//!   handling, `NOTIFY`), N per call: the store's share of an eventlog run.
//!
//! Beside each run's rate, the table shows the median and 99th percentile latency of
//! one call (an `append`/`append_all`, a store call or an `INSERT`), from an HDR
//! histogram of every call of the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bft_json_crdt::{KeyPair, Op};
use comfy_table::{CellAlignment, Table, presets};
use event_log_core::{Entry, EventLog, OpRecord, OpStore, Position, SigningKey, Transition};
use event_log_postgres::{PostgresConfig, PostgresStore};
use hdrhistogram::Histogram;

/// Producers of the concurrent runs.
const PRODUCERS: usize = 32;

struct Row {
    name: String,
    events: usize,
    took: Duration,
    cpu: Option<CpuUse>,
    /// The latency of each call of the run (none for signing alone).
    calls: Option<Calls>,
}

/// The latencies of a run's calls, in nanoseconds (3 significant digits).
struct Calls(Histogram<u64>);

impl Calls {
    fn new() -> Calls {
        // 3 significant digits, resizing to what it records: cannot fail.
        Calls(Histogram::new(3).expect("3 significant digits are in range"))
    }

    /// Runs `f` and records how long it took.
    async fn time<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        let t = Instant::now();
        let out = f.await;
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // The histogram resizes itself, so only a value past u64 could be refused.
        let _ = self.0.record(nanos.max(1));
        out
    }

    fn merge(&mut self, other: &Calls) {
        // Both resize themselves: adding cannot run out of range.
        let _ = self.0.add(&other.0);
    }

    /// The `q` quantile, in µs.
    fn us(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1e3
    }
}

/// Machine-wide CPU use over a run, from `/proc/stat` (Linux; `None` elsewhere):
/// tells a run bound by latency (cores idle) from one bound by CPU.
#[derive(Clone, Copy)]
struct CpuUse {
    /// Busy share of all cores, 0..=1.
    busy: f64,
    /// Cores on the machine.
    cores: usize,
    /// Busy core-seconds.
    busy_secs: f64,
}

/// Busy and total jiffies of all cores, and the number of cores.
fn cpu_ticks() -> Option<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let all: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let cores = lines.filter(|l| l.starts_with("cpu")).count();
    // user nice system idle iowait irq softirq steal
    let idle = all.get(3)? + all.get(4).copied().unwrap_or(0);
    let total: u64 = all.iter().take(8).sum();
    Some((total - idle, total, cores))
}

/// Measures `f`'s machine-wide CPU use.
struct CpuMeter(Option<(u64, u64, usize)>);

impl CpuMeter {
    fn start() -> Self {
        CpuMeter(cpu_ticks())
    }

    fn stop(self) -> Option<CpuUse> {
        let (b0, t0, cores) = self.0?;
        let (b1, t1, _) = cpu_ticks()?;
        let total = t1.checked_sub(t0).filter(|t| *t > 0)?;
        let busy_ticks = b1.saturating_sub(b0) as f64;
        Some(CpuUse {
            busy: busy_ticks / total as f64,
            cores,
            // /proc/stat counts in USER_HZ ticks, 100 per second on Linux.
            busy_secs: busy_ticks / 100.0,
        })
    }
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
                 cargo bench -p event-log-postgres --bench append"
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
    let delay = std::env::var("EVENT_LOG_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    if let Err(e) = rt.block_on(async {
        let url = match delay {
            Some(d) => delayed(&url, d).await?,
            None => url,
        };
        run(&url, events).await
    }) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A store on a fresh schema for one run.
async fn fresh(
    url: &str,
    tag: &str,
    notify: bool,
    pipeline: usize,
) -> Result<PostgresStore, BoxError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let schema = format!("bench_{tag}_{}_{:x}", std::process::id(), nanos);
    let config = PostgresConfig::default()
        .with_schema(schema)
        .with_pool_size(PRODUCERS + 8)
        .with_notify(notify)
        .with_pipeline(pipeline);
    Ok(PostgresStore::open(url, config).await?)
}

async fn run(url: &str, events: usize) -> Result<(), BoxError> {
    let single = (events / 10).max(1);
    let mut rows = Vec::new();
    let pipeline = std::env::var("EVENT_LOG_BENCH_PIPELINE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PostgresConfig::default().pipeline);
    if std::env::var("EVENT_LOG_BENCH_ONLY").as_deref() == Ok("eventlog") {
        // For profilers: the 32-producer eventlog run alone.
        let per_call = std::env::var("EVENT_LOG_BENCH_PER_CALL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let (row, _) = eventlog_batched(url, PRODUCERS, per_call, events, true, pipeline).await?;
        println!("{} {:.0} events/s", row.name, row.rate());
        return Ok(());
    }

    let (row, _) = eventlog(url, 1, single, true, pipeline).await?;
    rows.push(row);
    let (row, records) = eventlog(url, PRODUCERS, events, true, pipeline).await?;
    rows.push(row);
    let (row, _) = eventlog(url, PRODUCERS, events, false, pipeline).await?;
    rows.push(row);
    let (row, _) = eventlog(url, PRODUCERS, events, true, 1).await?;
    rows.push(row);
    let (row, _) = eventlog_batched(url, PRODUCERS, 32, events, true, pipeline).await?;
    rows.push(row);
    let (row, _) = eventlog_batched(url, PRODUCERS, 32, events, true, 1).await?;
    rows.push(row);
    rows.push(sign_only(events, false));
    rows.push(sign_only(events, true));
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
    println!("{}", table(&rows, base));
    rounds(url, events, pipeline, &records).await
}

/// The runs as a table (Markdown-shaped, so it pastes into an issue as it is).
fn table(rows: &[Row], base: f64) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header([
        "run".to_owned(),
        "events".into(),
        "seconds".into(),
        "events/s".into(),
        format!("vs raw batch 32 x{PRODUCERS}"),
        "p50 µs/call".into(),
        "p99 µs/call".into(),
        "cpu busy".into(),
        "cpu µs/event".into(),
    ]);
    for r in rows {
        let (busy, per) = match r.cpu {
            Some(c) => (
                format!("{:.0}% of {}", c.busy * 100.0, c.cores),
                format!("{:.1}", c.busy_secs * 1e6 / r.events as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        let (p50, p99) = match &r.calls {
            Some(c) => (format!("{:.0}", c.us(0.5)), format!("{:.0}", c.us(0.99))),
            None => ("-".into(), "-".into()),
        };
        t.add_row([
            r.name.clone(),
            r.events.to_string(),
            format!("{:.3}", r.took.as_secs_f64()),
            format!("{:.0}", r.rate()),
            format!("{:.2}", r.rate() / base),
            p50,
            p99,
            busy,
            per,
        ]);
    }
    for i in 1..=8 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The headline ratios again, over `EVENT_LOG_BENCH_ROUNDS` rounds (default 5) in
/// which the eventlog runs and their raw baseline take turns going first: one run
/// of a fraction of a second on a shared machine is noise, a median of alternating
/// pairs much less so.
async fn rounds(
    url: &str,
    events: usize,
    pipeline: usize,
    records: &[OpRecord],
) -> Result<(), BoxError> {
    let n: usize = std::env::var("EVENT_LOG_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if n == 0 {
        return Ok(());
    }
    let mut batched = Vec::new();
    let mut one = Vec::new();
    for round in 0..n {
        let raw_first = round % 2 == 1;
        let mut base = None;
        if raw_first {
            base = Some(
                raw(url, "raw batch 32", PRODUCERS, 32, records)
                    .await?
                    .rate(),
            );
        }
        let (b, _) = eventlog_batched(url, PRODUCERS, 32, events, true, pipeline).await?;
        let (o, _) = eventlog(url, PRODUCERS, events, true, pipeline).await?;
        let base = match base {
            Some(b) => b,
            None => raw(url, "raw batch 32", PRODUCERS, 32, records)
                .await?
                .rate(),
        };
        batched.push(b.rate() / base);
        one.push(o.rate() / base);
    }
    println!();
    println!("against raw batch 32 x{PRODUCERS}, {n} alternating rounds:");
    for (name, mut v) in [
        (format!("eventlog batch 32 x{PRODUCERS}"), batched),
        (format!("eventlog x{PRODUCERS}"), one),
    ] {
        v.sort_by(f64::total_cmp);
        let shown: Vec<String> = v.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{name:<34} median {:.2}  (min {:.2}, max {:.2}; {})",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            shown.join(" ")
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
    pipeline: usize,
) -> Result<(Row, Vec<OpRecord>), BoxError> {
    eventlog_batched(url, producers, 1, events, notify, pipeline).await
}

/// `events` appends through an `EventLog` from `producers` tasks, `per_call` entries
/// per `append_all`; returns the timing and the rows stored, in store order.
async fn eventlog_batched(
    url: &str,
    producers: usize,
    per_call: usize,
    events: usize,
    notify: bool,
    pipeline: usize,
) -> Result<(Row, Vec<OpRecord>), BoxError> {
    let store = fresh(url, "log", notify, pipeline).await?;
    let log = Arc::new(EventLog::open(store.clone(), SigningKey::from_bytes(&[9; 32])).await?);
    // The entries are built before the clock starts, as the raw runs' rows are.
    let per = events.div_ceil(producers);
    let calls: Vec<Vec<Vec<Entry>>> = (0..producers)
        .map(|p| {
            let n = per.min(events.saturating_sub(p * per));
            let entries: Vec<Entry> = (0..n)
                .map(|i| {
                    Entry::Transition(Transition::now(
                        format!("story-{p}-{i}"),
                        "backlog",
                        "coding",
                        "DepsMet",
                    ))
                })
                .collect();
            entries.chunks(per_call).map(<[Entry]>::to_vec).collect()
        })
        .collect();
    let meter = CpuMeter::start();
    let started = Instant::now();
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|mine| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut calls = Calls::new();
                for mut entries in mine {
                    if entries.len() == 1 {
                        let entry = entries.pop().expect("one entry");
                        calls.time(log.append(entry)).await?;
                    } else {
                        calls.time(log.append_all(entries)).await?;
                    }
                }
                Ok::<_, event_log_core::Error>(calls)
            })
        })
        .collect();
    let mut calls = Calls::new();
    for t in tasks {
        calls.merge(&t.await??);
    }
    let took = started.elapsed();
    let cpu = meter.stop();
    let stats = log.stats();
    eprintln!(
        "eventlog x{producers} ({per_call} per call, notify {notify}, pipeline {pipeline}): {} \
         appends in {} store calls ({:.1} per call)",
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
            "eventlog{} x{producers}{}{}",
            if per_call > 1 {
                format!(" batch {per_call}")
            } else {
                String::new()
            },
            if notify { "" } else { " no notify" },
            if pipeline == 1 { " pipeline 1" } else { "" }
        ),
        events,
        took,
        cpu,
        calls: Some(calls),
    };
    Ok((row, records))
}

/// Signing alone, 16 ops per `Op::sign_all` as in a group commit: the core's CPU
/// cost per event, no store involved. `dalek`: one by one with ed25519-dalek
/// ([`Op::sign`]) instead of the log's [`KeyPair`] (AWS-LC with the default features).
fn sign_only(events: usize, dalek: bool) -> Row {
    let key = SigningKey::from_bytes(&[9; 32]);
    let pair = KeyPair::new(key.clone());
    let meter = CpuMeter::start();
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
        signed += if dalek {
            drafts
                .into_iter()
                .map(|op| op.sign(&key))
                .collect::<Vec<_>>()
                .len()
        } else {
            Op::sign_all(drafts, &pair).len()
        };
    }
    Row {
        name: if dalek {
            "sign only, ed25519-dalek, 1 core".into()
        } else {
            "sign only (no store)".into()
        },
        events,
        took: started.elapsed(),
        cpu: meter.stop(),
        calls: None,
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
    let store = fresh(url, "raw", checked, 1).await?;
    let batches: Vec<Vec<OpRecord>> = records.chunks(batch).map(<[_]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let meter = CpuMeter::start();
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|_| {
            let (store, queue) = (store.clone(), queue.clone());
            tokio::spawn(async move {
                let mut calls = Calls::new();
                loop {
                    let next = queue.lock().map_err(|_| "queue poisoned")?.next();
                    let Some(b) = next else {
                        return Ok::<_, BoxError>(calls);
                    };
                    if checked {
                        calls.time(store.append(&b)).await?;
                    } else {
                        calls.time(store.raw_insert_rows(&b)).await?;
                    }
                }
            })
        })
        .collect();
    let mut calls = Calls::new();
    for t in tasks {
        calls.merge(&t.await??);
    }
    let took = started.elapsed();
    let cpu = meter.stop();
    store.drop_schema().await?;
    Ok(Row {
        name: format!("{name} x{producers}"),
        events: records.len(),
        took,
        cpu,
        calls: Some(calls),
    })
}

/// Starts a proxy in front of the server of `url` that delays every byte by `delay`
/// in each direction, and returns `url` pointed at it. Prints the round trip it adds.
async fn delayed(url: &str, delay: Duration) -> Result<String, BoxError> {
    use tokio::net::{TcpListener, TcpStream};

    let config: tokio_postgres::Config = url.parse()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => return Err("the delay proxy needs a TCP host in the URL".into()),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let server = format!("{host}:{port}");
    if !url.contains(&server) {
        return Err(
            format!("cannot find {server} in the URL to route it through the proxy").into(),
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?;
    let upstream = server.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(delay_line(cr, sw, delay), delay_line(sr, cw, delay));
            });
        }
    });
    let proxied = url.replace(&server, &proxy.to_string());
    // Measure what the proxy adds: a trivial query, direct and proxied.
    let rtt = |u: String| async move {
        let (client, conn) = tokio_postgres::connect(&u, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let mut best = Duration::MAX;
        for _ in 0..20 {
            let t = Instant::now();
            client.simple_query("SELECT 1").await?;
            best = best.min(t.elapsed());
        }
        Ok::<_, BoxError>(best)
    };
    let (direct, via) = (rtt(url.to_owned()).await?, rtt(proxied.clone()).await?);
    eprintln!(
        "delay proxy: {} ms each way; SELECT 1 round trip {:.2} ms direct, {:.2} ms proxied",
        delay.as_millis(),
        direct.as_secs_f64() * 1e3,
        via.as_secs_f64() * 1e3
    );
    Ok(proxied)
}

/// Copies `from` to `to`, each chunk sent `delay` after it was read; order and
/// throughput are kept (reading never waits for the delayed writes).
async fn delay_line(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
