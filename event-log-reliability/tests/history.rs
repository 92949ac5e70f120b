//! The history checker: a multi-sled deployment under kills, checked Jepsen-style.
//!
//! Three stores: a shared PostgreSQL schema that two sleds append to, and two SQLite
//! files, each the local store of one more sled. Every round runs a kill chain of
//! `crash-child` processes on each store (SIGKILL at random moments, restarts), then
//! syncs each SQLite store with the shared one, store to store, and records every
//! view. At the end (after a last sync, so news reaches every store through the
//! shared one) the checker asserts, over the whole history:
//! - every acknowledged append, from any sled, is in every view exactly once;
//! - no sled's sequence has a hole or a duplicate, in any view;
//! - the views converge: every store shows the same events in the same order;
//! - every view recorded along the way was a prefix-closed state: each sled
//!   contiguous from 0 (checked each round).
//!
//! `EVLOG_HISTORY_ROUNDS` (default 3) and `EVLOG_HISTORY_KILLS` (kills per store per
//! round, default 3) raise it for long runs; `EVLOG_CRASH_SEED` replays the kill
//! moments. Needs `EVENT_LOG_TEST_PG_URL` (`scripts/test.sh` sets it).

use event_log_conformance::read::ReadAll;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use event_log::{EventLogConfig, OpStore};
use event_log_reliability::{Ack, ChainConfig, check, run_chain};

fn env_count(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Err(_) => default,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => panic!("{var} must be a whole number, at least 1; got {v:?}"),
        },
    }
}

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

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn pg_url() -> String {
    match std::env::var("EVENT_LOG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "EVENT_LOG_TEST_PG_URL is not set: run the tests with `scripts/test.sh` \
             (it starts a throwaway PostgreSQL 15), or set it to a server you own"
        ),
    }
}

/// Syncs two stores both ways, as `evlog sync --both` does: each opened as the
/// target of ops of others (a throwaway key that never appends).
async fn sync_stores(a: &str, b: &str) -> (usize, usize) {
    let config = || EventLogConfig::default().with_save_checkpoints(false);
    let la = event_log::open_with(a, event_log::keys::generate(), config())
        .await
        .unwrap_or_else(|e| panic!("opening {a} to sync: {e}"));
    let lb = event_log::open_with(b, event_log::keys::generate(), config())
        .await
        .unwrap_or_else(|e| panic!("opening the other store to sync: {e}"));
    let report = event_log::sync(&la, &lb).await.expect("sync");
    assert!(
        report.a_to_b.rejected().is_empty() && report.b_to_a.rejected().is_empty(),
        "a sync refused ops: {report:?}"
    );
    la.close().await.expect("close");
    lb.close().await.expect("close");
    (report.a_to_b.applied(), report.b_to_a.applied())
}

/// The view of a store: its events in timeline order, as text.
async fn view(url: &str) -> Vec<String> {
    let log = event_log::open_read_only(url).await.expect("open to read");
    let events = log
        .all_events()
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    log.close().await.expect("close");
    events
}

#[test]
fn acknowledged_appends_reach_every_view_exactly_once_and_views_converge() {
    let rounds = env_count("EVLOG_HISTORY_ROUNDS", 3);
    let kills = env_count("EVLOG_HISTORY_KILLS", 3);
    let seed = seed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = pg_url();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("history_{}_{nanos:x}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let shared = format!("{base}{sep}schema={schema}&options=-c%20synchronous_commit%3Don");
    let local = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let (a, b) = (local("a.db"), local("b.db"));
    let key = |name: &str| dir.path().join(name);
    let stores: Vec<(&str, &str, Vec<PathBuf>)> = vec![
        ("shared", &shared, vec![key("s1.key"), key("s2.key")]),
        ("a", &a, vec![key("a.key")]),
        ("b", &b, vec![key("b.key")]),
    ];

    let mut acks: Vec<Ack> = Vec::new();
    let mut views_checked = 0;
    for round in 0..rounds {
        for (i, (name, url, keys)) in stores.iter().enumerate() {
            let mut config =
                ChainConfig::new(env!("CARGO_BIN_EXE_crash-child"), *url, keys.clone());
            config.kills = kills;
            // Disjoint run numbers, so every ack's tag is unique in the deployment.
            config.first_run = ((round * stores.len() + i) * kills) as u64;
            config.seed = seed ^ ((round as u64) << 8 | i as u64);
            let chain = run_chain(&config).unwrap_or_else(|e| {
                panic!("round {round}, store {name} (EVLOG_CRASH_SEED={seed}): {e}")
            });
            assert_eq!(chain.runs, kills);
            // This store's own acks are all in it, right after its chain.
            let report = rt.block_on(check(url, &chain.acks)).expect("check");
            assert!(
                report.is_clean(),
                "round {round}, store {name} (EVLOG_CRASH_SEED={seed}): lost {:?}, \
                 duplicates {:?}, holes {:?}, problems {:?}",
                &report.lost[..report.lost.len().min(5)],
                &report.duplicates[..report.duplicates.len().min(5)],
                report.holes,
                report.problems
            );
            acks.extend(chain.acks);
        }
        // Anti-entropy through the shared store, as sleds on separate machines do.
        rt.block_on(sync_stores(&a, &shared));
        rt.block_on(sync_stores(&b, &shared));
        for (name, url, _) in &stores {
            // Every view along the way: no hole, no duplicate (acks of other stores
            // may not have arrived yet, so only the sequences are checked here).
            let report = rt.block_on(check(url, &[])).expect("check");
            assert!(
                report.duplicates.is_empty()
                    && report.holes.is_empty()
                    && report.problems.is_empty(),
                "round {round}, view of {name} (EVLOG_CRASH_SEED={seed}): {report:?}"
            );
            views_checked += 1;
        }
    }
    // A's news reached the shared store after A's last sync; one more pass carries
    // everything everywhere.
    rt.block_on(sync_stores(&a, &shared));

    let mut reference: Option<Vec<String>> = None;
    for (name, url, _) in &stores {
        let report = rt.block_on(check(url, &acks)).expect("check");
        assert!(
            report.is_clean(),
            "final view of {name} (EVLOG_CRASH_SEED={seed}): lost {:?}, duplicates {:?}, \
             holes {:?}, problems {:?}",
            &report.lost[..report.lost.len().min(5)],
            &report.duplicates[..report.duplicates.len().min(5)],
            report.holes,
            report.problems
        );
        assert_eq!(report.events.len(), 4, "{name} holds the four sleds");
        let shown = rt.block_on(view(url));
        match &reference {
            None => reference = Some(shown),
            Some(r) => assert!(
                *r == shown,
                "the view of {name} differs from the shared store's"
            ),
        }
    }
    let events = reference.map_or(0, |r| r.len());
    say(&format!(
        "history check: {rounds} rounds, {} kills, 3 stores, 4 sleds, acknowledged {}, \
         lost = 0, duplicates = 0, {views_checked} views checked, {events} events in every \
         view, converged (EVLOG_CRASH_SEED={seed})",
        rounds * kills * stores.len(),
        acks.len()
    ));
    rt.block_on(async {
        use event_log::postgres::{PostgresConfig, PostgresStore};
        let handle = PostgresStore::open(&shared, PostgresConfig::default())
            .await
            .expect("reopen the schema to drop it");
        handle.drop_schema().await.expect("drop the test schema");
        let _ = OpStore::close(&handle).await;
    });
}
