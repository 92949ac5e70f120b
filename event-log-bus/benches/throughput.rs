//! Publish → persisted throughput through the bus, against direct
//! `EventLog::append_transition` calls by the same producers, on MemStore and on
//! SQLite (durable: `synchronous = FULL`), at 1 and 32 producers.
//!
//! First prints a table of paired measurements (bus and direct alternate, median of
//! the rounds) with the ratio bus / direct — the target is ≥ 0.9 (the bus costs
//! < 10 %). Then runs the same cases under criterion.
//!
//! Knobs (environment): `BUS_BENCH_EVENTS` (events per MemStore case, default
//! 10 000), `BUS_BENCH_SQLITE_EVENTS` (default 2 000), `BUS_BENCH_ROUNDS` (default
//! 3), `BUS_BENCH_MAX_BATCH` (the persister's group-commit size, default 1024),
//! `BUS_BENCH_CRITERION=0` to print the table only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use event_log_bus::{PersisterConfig, TransitionBus, spawn_persister};
use event_log_core::{EventLog, MemStore, OpStore, SigningKey, Transition};
use event_log_sqlite::{SqliteConfig, SqliteStore};
use tokio::runtime::Runtime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Mem,
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Direct,
    Bus,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn transition(p: u64, i: u64) -> Transition {
    Transition::now(format!("story-{p}-{i}"), "backlog", "coding", "DepsMet")
}

/// A fresh log on the backend; the temp dir (if any) lives as long as the log.
async fn fresh_log(
    backend: Backend,
) -> (Arc<EventLog<Box<dyn OpStore>>>, Option<tempfile::TempDir>) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let (store, dir): (Box<dyn OpStore>, _) = match backend {
        Backend::Mem => (Box::new(MemStore::new()), None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(dir.path().join("bench.db"), SqliteConfig::default())
                .await
                .expect("open sqlite");
            (Box::new(store), Some(dir))
        }
    };
    let log = EventLog::open(store, key).await.expect("open log");
    (Arc::new(log), dir)
}

/// Starts one direct producer: `per` appends, each awaited.
///
/// Generic on purpose: spawned inline where the store is `Box<dyn OpStore>`, the
/// compiler cannot prove the append future `Send` for every lifetime of the `dyn`;
/// here it follows from `S: OpStore`.
fn spawn_producer<S: OpStore>(
    log: Arc<EventLog<S>>,
    p: u64,
    per: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..per {
            log.append_transition(transition(p, i))
                .await
                .expect("append");
        }
    })
}

/// Time for `producers` tasks to get `events` transitions durably into a fresh log.
async fn run_case(backend: Backend, mode: Mode, producers: u64, events: u64) -> Duration {
    let (log, _dir) = fresh_log(backend).await;
    let per = events / producers;
    let total = per * producers;
    match mode {
        Mode::Direct => {
            let start = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|p| spawn_producer(log.clone(), p, per))
                .collect();
            for t in tasks {
                t.await.expect("producer");
            }
            let elapsed = start.elapsed();
            assert_eq!(log.visible_len() as u64, total);
            elapsed
        }
        Mode::Bus => {
            // Capacity for the whole run: this measures throughput, not lag.
            let bus = TransitionBus::new(total as usize).expect("bus");
            let persister =
                spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
            let start = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|p| {
                    let bus = bus.clone();
                    tokio::spawn(async move {
                        for i in 0..per {
                            bus.publish(transition(p, i));
                            if i % 64 == 63 {
                                tokio::task::yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("producer");
            }
            // Shutdown drains everything received: elapsed = until all are durable.
            let stats = persister.shutdown().await.expect("persister");
            let elapsed = start.elapsed();
            assert_eq!((stats.persisted, stats.gaps), (total, 0), "{stats:?}");
            elapsed
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn table(rt: &Runtime) {
    let rounds = env("BUS_BENCH_ROUNDS", 3).max(1);
    println!();
    println!("publish -> persisted throughput (median of {rounds} paired rounds)");
    println!(
        "{:<8} {:>9} {:>8} {:>14} {:>14} {:>12}",
        "store", "producers", "events", "direct ev/s", "bus ev/s", "bus/direct"
    );
    for backend in [Backend::Mem, Backend::Sqlite] {
        let events = match backend {
            Backend::Mem => env("BUS_BENCH_EVENTS", 10_000),
            Backend::Sqlite => env("BUS_BENCH_SQLITE_EVENTS", 2_000),
        };
        for producers in [1, 32] {
            let (mut direct, mut bus) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let n = (events / producers * producers) as f64;
                let d = rt.block_on(run_case(backend, Mode::Direct, producers, events));
                direct.push(n / d.as_secs_f64());
                let b = rt.block_on(run_case(backend, Mode::Bus, producers, events));
                bus.push(n / b.as_secs_f64());
            }
            let (d, b) = (median(direct), median(bus));
            println!(
                "{:<8} {:>9} {:>8} {:>14.0} {:>14.0} {:>12.2}",
                format!("{backend:?}"),
                producers,
                events,
                d,
                b,
                b / d
            );
        }
    }
    println!("target: bus/direct >= 0.90 (the bus costs < 10%)");
    println!();
}

fn criterion_cases(c: &mut Criterion, rt: &Runtime) {
    for backend in [Backend::Mem, Backend::Sqlite] {
        let events = match backend {
            Backend::Mem => 2_000,
            Backend::Sqlite => 500,
        };
        let mut group = c.benchmark_group(format!("publish_to_persisted/{backend:?}"));
        group.throughput(Throughput::Elements(events));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        for producers in [1, 32] {
            for mode in [Mode::Direct, Mode::Bus] {
                let id = BenchmarkId::new(format!("{mode:?}"), producers);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| rt.block_on(run_case(backend, mode, producers, events)))
                            .sum()
                    })
                });
            }
        }
        group.finish();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    table(&rt);
    if env("BUS_BENCH_CRITERION", 1) != 0 {
        let mut c = Criterion::default().configure_from_args();
        criterion_cases(&mut c, &rt);
        c.final_summary();
    }
}
