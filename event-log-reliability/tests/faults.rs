//! Storage and network fault tests: real resources broken under an open log while
//! tasks append to it, then the store checked, Jepsen-style, against every ack.
//!
//! - **Full disk** (SQLite, redb): the store lives on a small tmpfs the test mounts
//!   (root only; without root the test fails saying so); a ballast file fills it
//!   while the log appends. Appends must fail with a typed store error, never panic or
//!   return `Ok` for what was not stored; once the ballast is deleted, the **same**
//!   open log appends again.
//! - **PostgreSQL stopped and restarted** (a throwaway server of the test's own, as
//!   the shared one is not the test's to stop): stopped fast, restarted, then crashed
//!   (immediate stop), restarted; appends fail with `Unavailable` within the bound
//!   while it is down and succeed again once it is up.
//! - **Black-holed connection** (the shared server, `EVENT_LOG_TEST_PG_URL`, through a
//!   TCP proxy that stops forwarding but keeps every socket open): appends fail with
//!   `Unavailable` within the operation timeout, and succeed again once it forwards.
//!
//! Then, every time: no acknowledged event lost, no duplicate `(sled, event_id)` or
//! append stored twice, the sled's sequence contiguous from 0, the next append
//! continues. Each test prints one summary line past the harness's capture.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use event_log::{AnyStore, EventLog, SigningKey, StoreErrorKind};
use event_log_reliability::load::{Load, LoadConfig, Record};
use event_log_reliability::pg_server::{PgServer, StopMode};
use event_log_reliability::proxy::{Mode, Proxy};
use event_log_reliability::tmpfs::Tmpfs;
use event_log_reliability::{Report, check, next_append};

/// The PostgreSQL tests' client-side bound (operation, connect and sled-lock timeouts).
const BOUND: Duration = Duration::from_secs(1);
/// An append taking longer than this is a hang (the bound, the in-doubt retry before
/// it and scheduling on a busy machine fit well within it).
const HANG: Duration = Duration::from_secs(15);
/// How long a phase may take to show its effect before the test fails.
const PHASE: Duration = Duration::from_secs(20);
/// The tmpfs size of the full-disk tests: the ballast fills it when the store holds
/// a few hundred KiB, so its removal gives back more than the recovery phase writes.
const TMPFS_BYTES: u64 = 16 << 20;
/// Appending tasks.
const TASKS: usize = 3;
/// Acks each task must get in a phase that appends.
const ACKS_PER_PHASE: u64 = 20;
/// Failures each task must see while the fault lasts.
const FAILURES_PER_FAULT: u64 = 2;

/// Fault rounds per test when `EVLOG_FAULT_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 1;

/// Fault rounds per test (`EVLOG_FAULT_ROUNDS`): each injects the fault, waits until
/// every task's appends fail, lifts it and waits until every task appends again.
fn rounds() -> usize {
    match std::env::var("EVLOG_FAULT_ROUNDS") {
        Err(_) => DEFAULT_ROUNDS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                panic!("EVLOG_FAULT_ROUNDS must be a whole number of rounds, at least 1; got {v:?}")
            }
        },
    }
}

/// One line on stdout, past libtest's capture (which takes `print!`, not writes).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn load_config() -> LoadConfig {
    LoadConfig {
        tasks: TASKS,
        hang_after: HANG,
        // Paced, so no task starves behind the others' group commits and a disk that
        // has space again is not refilled before every task has appended.
        pause_between: Duration::from_millis(2),
        ..LoadConfig::default()
    }
}

/// A new sled key in `dir` (outside any file system the test breaks).
fn new_key(dir: &std::path::Path) -> SigningKey {
    event_log::keys::load_or_create(dir.join("sled.key")).expect("a sled key")
}

/// Waits until every task has `more` acks beyond `since`.
async fn acks_beyond(load: &Load, what: &str, since: &Record, more: u64) {
    let since: Vec<u64> = since.per_task.iter().map(|t| t.acked).collect();
    load.wait_for(what, PHASE, |r| {
        r.per_task
            .iter()
            .zip(&since)
            .all(|(t, s)| t.acked >= s + more)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until every task has `more` failures beyond `since`.
async fn failures_beyond(load: &Load, what: &str, since: &Record, more: u64) {
    let since: Vec<u64> = since.per_task.iter().map(|t| t.failed).collect();
    load.wait_for(what, PHASE, |r| {
        r.per_task
            .iter()
            .zip(&since)
            .all(|(t, s)| t.failed >= s + more)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Asserts every failure is a typed store error of one of `kinds` (never a hang or
/// another error).
fn assert_typed(test: &str, record: &Record, kinds: &[StoreErrorKind]) {
    for f in &record.failures {
        assert!(
            f.kind.store_kind().is_some_and(|k| kinds.contains(&k)),
            "{test}: append {} (task {}) failed with {:?} after {:?}, not a typed store error \
             of kind {kinds:?}: {}",
            f.tag,
            f.task,
            f.kind,
            f.took,
            f.message
        );
    }
}

/// Closes the log (every load task has stopped), checks the store at `url` against
/// the acks, checks the next append continues, and asserts it all.
async fn close_and_check(
    test: &str,
    log: Arc<EventLog<AnyStore>>,
    url: &str,
    key: SigningKey,
    record: &Record,
) -> Report {
    let log = Arc::into_inner(log).expect("the load's tasks have let go of the log");
    log.close().await.expect("close the log");
    let report = check(url, &record.acks)
        .await
        .unwrap_or_else(|e| panic!("{test}: checking the store: {e}"));
    assert!(!record.acks.is_empty(), "{test}: nothing was acknowledged");
    assert!(
        report.lost.is_empty(),
        "{test}: {} acknowledged events lost, first: {:?}",
        report.lost.len(),
        &report.lost[..report.lost.len().min(5)]
    );
    assert!(
        report.duplicates.is_empty(),
        "{test}: duplicates: {:?}",
        &report.duplicates[..report.duplicates.len().min(5)]
    );
    assert!(
        report.holes.is_empty(),
        "{test}: a sequence with a hole: {:?}",
        report.holes
    );
    assert!(
        report.problems.is_empty(),
        "{test}: the reopened log reports: {:?}",
        report.problems
    );
    let stored = report.events.values().sum::<u64>();
    let next = next_append(url, key, "final")
        .await
        .unwrap_or_else(|e| panic!("{test}: the next append: {e}"));
    assert_eq!(
        next.expected, stored,
        "{test}: reopened at another event id"
    );
    assert_eq!(
        next.got, next.expected,
        "{test}: the next append does not continue after the last event"
    );
    report
}

fn summary(test: &str, injected: &str, record: &Record, report: &Report, after: u64) -> String {
    format!(
        "fault test {test}: injected {injected}; acknowledged {} ({after} after the fault), \
         failed appends {} ({}; slowest {:?}), lost = {}, duplicates = {}, {} events stored",
        report.acknowledged,
        record.failures.len(),
        record.failure_kinds(),
        record.slowest_failure(),
        report.lost.len(),
        report.duplicates.len(),
        report.events.values().sum::<u64>(),
    )
}

/// The full-disk test on a store at `url_in(tmpfs)`.
async fn full_disk(test: &str, url_in: impl Fn(&std::path::Path) -> String) {
    let fs = Tmpfs::mount(TMPFS_BYTES).unwrap_or_else(|e| panic!("{test}: {e}"));
    let keys = tempfile::tempdir().unwrap();
    let key = new_key(keys.path());
    let url = url_in(fs.path());
    let log = Arc::new(event_log::open(&url, key.clone()).await.unwrap());
    let load = Load::start(log.clone(), &load_config());
    let start = load.record();
    acks_beyond(&load, "acks before the disk fills", &start, ACKS_PER_PHASE).await;

    let rounds = rounds();
    let mut ballast_bytes = 0;
    let mut last = load.record();
    for round in 0..rounds {
        if round == 0 {
            // Taken before the ballast starts: while it fills the disk, appends racing
            // it for the last free pages may already fail, as they should.
            let before_fill = load.record();
            assert!(
                before_fill.failures.is_empty(),
                "{test}: appends failed before the disk was filled: {:?}",
                before_fill.failures
            );
        }
        let ballast = fs.fill("ballast").unwrap_or_else(|e| panic!("{test}: {e}"));
        ballast_bytes = ballast.bytes();
        let at_full = load.record();
        failures_beyond(
            &load,
            &format!("every task's appends failing on the full disk (round {round})"),
            &at_full,
            FAILURES_PER_FAULT,
        )
        .await;
        let full = load.record();
        ballast.remove().expect("remove the ballast");
        acks_beyond(
            &load,
            &format!("appends on the same open log after space returned (round {round})"),
            &full,
            ACKS_PER_PHASE,
        )
        .await;
        last = full;
    }
    let record = load.stop().await;
    let after = (record.acks.len() - last.acks.len()) as u64;
    // A full disk is a backend failure (SQLite's SQLITE_FULL, redb's I/O error) or
    // makes the store unavailable; never a conflict, corruption or an invalid request.
    assert_typed(
        test,
        &record,
        &[StoreErrorKind::Backend, StoreErrorKind::Unavailable],
    );
    let report = close_and_check(test, log, &url, key, &record).await;
    say(&summary(
        test,
        &format!(
            "a full disk {rounds}× (tmpfs of {} MiB, last ballast {} KiB)",
            fs.size() >> 20,
            ballast_bytes >> 10
        ),
        &record,
        &report,
        after,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_fails_typed_loses_nothing_and_recovers() {
    full_disk("sqlite full disk", |dir| {
        format!(
            "sqlite://{}?durability=full",
            dir.join("faults.db").display()
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_full_disk_fails_typed_loses_nothing_and_recovers() {
    full_disk("redb full disk", |dir| {
        format!("redb://{}", dir.join("faults.redb").display())
    })
    .await;
}

/// The bounded URL parameters of the PostgreSQL tests, after `?` or `&`.
fn bounded_params(schema: &str) -> String {
    let ms = BOUND.as_millis();
    format!(
        "schema={schema}&operation_timeout={ms}ms&sled_lock_timeout={ms}ms&connect_timeout={}",
        BOUND.as_secs().max(1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_stopped_and_restarted_loses_nothing() {
    let test = "postgres restart";
    let mut server = PgServer::start().unwrap_or_else(|e| panic!("{test}: {e}"));
    let url = format!("{}?{}", server.url(), bounded_params("faults"));
    let keys = tempfile::tempdir().unwrap();
    let key = new_key(keys.path());
    let log = Arc::new(event_log::open(&url, key.clone()).await.unwrap());
    let load = Load::start(log.clone(), &load_config());
    let start = load.record();
    acks_beyond(
        &load,
        "acks before the server stops",
        &start,
        ACKS_PER_PHASE,
    )
    .await;
    let mut after = 0;
    let rounds = rounds();
    let modes = [StopMode::Fast, StopMode::Immediate];
    for mode in std::iter::repeat_n(modes, rounds).flatten() {
        server
            .stop(mode)
            .unwrap_or_else(|e| panic!("{test}: stop: {e}"));
        let stopped = load.record();
        failures_beyond(
            &load,
            &format!("every task's appends failing while the server is down ({mode:?} stop)"),
            &stopped,
            FAILURES_PER_FAULT,
        )
        .await;
        server
            .restart()
            .unwrap_or_else(|e| panic!("{test}: restart: {e}"));
        let restarted = load.record();
        acks_beyond(
            &load,
            &format!("appends after the restart ({mode:?} stop)"),
            &restarted,
            ACKS_PER_PHASE,
        )
        .await;
        after = (load.record().acks.len() - restarted.acks.len()) as u64;
    }
    let record = load.stop().await;
    assert_typed(test, &record, &[StoreErrorKind::Unavailable]);
    let report = close_and_check(test, log, &url, key, &record).await;
    say(&summary(
        test,
        &format!(
            "a server stopped (fast), restarted, crashed (immediate stop), restarted; {rounds}×"
        ),
        &record,
        &report,
        after,
    ));
}

/// The shared test server, from `EVENT_LOG_TEST_PG_URL`. Never skips: a missing
/// server is a failed run, not a green one.
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

/// `url`'s `host:port` (`postgres://user@host:port/db?…`), resolved, and `url` with
/// it replaced by `via`.
fn split_server(url: &str, via: Option<SocketAddr>) -> (SocketAddr, String) {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .expect("EVENT_LOG_TEST_PG_URL must be a postgres:// URL for the proxy test");
    let start = url.len() - rest.len()
        + rest[..rest.find('/').unwrap_or(rest.len())]
            .rfind('@')
            .map_or(0, |i| i + 1);
    let end = start + url[start..].find(['/', '?']).unwrap_or(url.len() - start);
    let authority = &url[start..end];
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .expect("EVENT_LOG_TEST_PG_URL's host resolves");
    let replaced = match via {
        Some(via) => format!("{}{via}{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    };
    (addr, replaced)
}

fn unique_schema(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos:x}", std::process::id())
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_black_holed_connection_fails_in_bound_and_recovers() {
    let test = "postgres black hole";
    let base = pg_url();
    let (server, _) = split_server(&base, None);
    let proxy = Proxy::start(server).await.expect("start the proxy");
    let (_, via) = split_server(&base, Some(proxy.addr()));
    let schema = unique_schema("faults_bh");
    let params = bounded_params(&schema);
    let url = with_params(&via, &params);
    let direct = with_params(&base, &params);
    let keys = tempfile::tempdir().unwrap();
    let key = new_key(keys.path());
    let log = Arc::new(event_log::open(&url, key.clone()).await.unwrap());
    let load = Load::start(log.clone(), &load_config());
    let start = load.record();
    acks_beyond(&load, "acks before the black hole", &start, ACKS_PER_PHASE).await;

    let rounds = rounds();
    let mut healed = load.record();
    for round in 0..rounds {
        proxy.set(Mode::BlackHole);
        let holed = load.record();
        failures_beyond(
            &load,
            &format!("every task's appends failing while black-holed (round {round})"),
            &holed,
            FAILURES_PER_FAULT,
        )
        .await;
        proxy.set(Mode::Forward);
        healed = load.record();
        acks_beyond(
            &load,
            &format!("appends after the proxy forwards again (round {round})"),
            &healed,
            ACKS_PER_PHASE,
        )
        .await;
    }
    let record = load.stop().await;
    let after = (record.acks.len() - healed.acks.len()) as u64;
    assert_typed(test, &record, &[StoreErrorKind::Unavailable]);
    // Checked directly, not through the proxy.
    let report = close_and_check(test, log, &direct, key, &record).await;
    say(&summary(
        test,
        &format!(
            "a black-holed connection {rounds}× (proxy {}, bound {BOUND:?})",
            proxy.addr()
        ),
        &record,
        &report,
        after,
    ));
    // Dropped only after a passing check: a failure leaves the schema to look at.
    let store = event_log::postgres::PostgresStore::open(
        &direct,
        event_log::postgres::PostgresConfig::default(),
    )
    .await
    .expect("reopen the schema to drop it");
    store.drop_schema().await.expect("drop the test schema");
}
