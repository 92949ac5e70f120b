//! Crash tests: per backend, a chain of `crash-child` runs on one store, each killed
//! with SIGKILL at a random moment, then the store is checked, Jepsen-style: no
//! acknowledged event lost, no duplicate `(sled, event_id)`, every sled's sequence
//! contiguous from 0, and the next append continues after the last.
//!
//! `EVLOG_CRASH_KILLS` (default 20) sets the kills per backend, `EVLOG_CRASH_SEED`
//! replays a chain's kill moments. The PostgreSQL test needs `EVENT_LOG_TEST_PG_URL`
//! (`scripts/test.sh` sets it). Each test prints one line of counts, past the test
//! harness's capture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use event_log_reliability::{ChainConfig, check, next_append, run_chain};

/// Kills per backend when `EVLOG_CRASH_KILLS` is not set.
const DEFAULT_KILLS: usize = 20;

fn kills() -> usize {
    match std::env::var("EVLOG_CRASH_KILLS") {
        Err(_) => DEFAULT_KILLS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => panic!("EVLOG_CRASH_KILLS must be a whole number of kills, at least 1; got {v:?}"),
        },
    }
}

/// The kill moments' seed: `EVLOG_CRASH_SEED`, or fresh per run (printed, so a
/// failure can be replayed).
fn seed() -> u64 {
    if let Ok(v) = std::env::var("EVLOG_CRASH_SEED") {
        return v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("EVLOG_CRASH_SEED must be a number; got {v:?}"));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One line on stdout, past libtest's capture (which takes `print!`, not writes).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs a kill chain on `store` (two sleds, keys in `dir`), checks it, and prints
/// the counts.
fn crash_chain(backend: &str, store: &str, dir: &Path) {
    let kills = kills();
    let seed = seed();
    let keys: Vec<PathBuf> = ["sled-a.key", "sled-b.key"]
        .iter()
        .map(|k| dir.join(k))
        .collect();
    let mut config = ChainConfig::new(env!("CARGO_BIN_EXE_crash-child"), store, keys.clone());
    config.kills = kills;
    config.seed = seed;
    let chain = run_chain(&config)
        .unwrap_or_else(|e| panic!("{backend} crash chain (EVLOG_CRASH_SEED={seed}): {e}"));
    let rt = runtime();
    let report = rt
        .block_on(check(store, &chain.acks))
        .unwrap_or_else(|e| panic!("{backend}: checking the store: {e}"));
    let mut next = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let key = event_log::keys::load(key)
            .unwrap_or_else(|e| panic!("{backend}: a chain run created no key {i}: {e}"));
        let sled = event_log::keys::sled_id(&key);
        let append = rt
            .block_on(next_append(store, key, &format!("final-{i}")))
            .unwrap_or_else(|e| panic!("{backend}: the next append of sled {i}: {e}"));
        let stored = report.events.get(&sled).copied().unwrap_or(0);
        next.push((i, stored, append));
    }
    let duplicates = report.duplicates.len();
    say(&format!(
        "crash test {backend}: runs {}, acknowledged {}, lost = {}, duplicates = {duplicates} \
         (kills {} of them early, {} events in {} sleds, {} torn lines; EVLOG_CRASH_SEED={seed})",
        chain.runs,
        report.acknowledged,
        report.lost.len(),
        chain.early,
        report.events.values().sum::<u64>(),
        report.events.len(),
        chain.torn,
    ));
    assert_eq!(chain.runs, kills, "{backend}: every run was killed");
    assert!(
        report.acknowledged > 0,
        "{backend}: the children acknowledged nothing"
    );
    assert!(
        report.lost.is_empty(),
        "{backend}: {} acknowledged events lost (EVLOG_CRASH_SEED={seed}), first: {:?}",
        report.lost.len(),
        &report.lost[..report.lost.len().min(5)]
    );
    assert!(
        report.duplicates.is_empty(),
        "{backend}: duplicates (EVLOG_CRASH_SEED={seed}): {:?}",
        &report.duplicates[..duplicates.min(5)]
    );
    assert!(
        report.holes.is_empty(),
        "{backend}: sequences with a hole (EVLOG_CRASH_SEED={seed}): {:?}",
        report.holes
    );
    assert!(
        report.problems.is_empty(),
        "{backend}: the reopened log reports (EVLOG_CRASH_SEED={seed}): {:?}",
        report.problems
    );
    for (i, stored, append) in next {
        assert_eq!(
            append.expected, stored,
            "{backend}: sled {i} reopened at another event id than its stored events"
        );
        assert_eq!(
            append.got, append.expected,
            "{backend}: sled {i}'s next append does not continue after its last event"
        );
    }
}

#[test]
fn sqlite_full_sync_loses_nothing_acknowledged_across_kills() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    // FULL is the default; said here so the test keeps meaning it.
    let store = format!("sqlite://{}?durability=full", db.display());
    crash_chain("sqlite", &store, dir.path());
}

#[test]
fn redb_immediate_durability_loses_nothing_acknowledged_across_kills() {
    let dir = tempfile::tempdir().unwrap();
    // redb commits with Durability::Immediate (fsync per commit), its only mode here.
    let store = format!("redb://{}", dir.path().join("crash.redb").display());
    crash_chain("redb", &store, dir.path());
}

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

#[test]
fn postgres_synchronous_commit_loses_nothing_acknowledged_across_kills() {
    let base = pg_url();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // A schema of this run only: runs never collide.
    let schema = format!("crash_{}_{nanos:x}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    // `synchronous_commit=on` for the child's sessions, whatever the server's default.
    let store = format!("{base}{sep}schema={schema}&options=-c%20synchronous_commit%3Don");
    let dir = tempfile::tempdir().unwrap();
    crash_chain("postgres", &store, dir.path());
    // Dropped only after a passing check: a failure leaves the schema to look at.
    runtime().block_on(async {
        use event_log::postgres::{PostgresConfig, PostgresStore};
        let handle = PostgresStore::open(&store, PostgresConfig::default())
            .await
            .expect("reopen the schema to drop it");
        handle.drop_schema().await.expect("drop the test schema");
    });
}
