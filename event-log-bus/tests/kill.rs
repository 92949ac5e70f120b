//! A real crash: a child process (this test binary, re-executed in a child role)
//! publishes fast into a persister over SQLite and is killed with SIGKILL; the next
//! persister over the same file records the killed run as one unclean-shutdown
//! sentinel, and every logical id of that run is accounted for: persisted, inside a
//! gap, or at or after the sentinel's `from`.

mod common;

use event_log_conformance::read::ReadAll;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use common::{fired, key};
use event_log_bus::{PersisterConfig, TransitionBus, spawn_persister};
use event_log_core::{Entry, EventLog, RunId};
use event_log_sqlite::{SqliteConfig, SqliteStore};

/// Set in the child: the SQLite file to publish into.
const CHILD_DB: &str = "BUS_KILL_TEST_CHILD_DB";
/// Transitions the child publishes: more than its bus holds (the persister lags and
/// records a gap), and more than it persists before the kill.
const PUBLISHED: u64 = 60_000;
const TEST_NAME: &str = "killed_run_is_recorded_as_one_unclean_sentinel";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open_log(db: &Path) -> Arc<EventLog<SqliteStore>> {
    let store = SqliteStore::open(db, SqliteConfig::default())
        .await
        .expect("open sqlite");
    Arc::new(EventLog::open(store, key(1)).await.expect("open log"))
}

/// The child role: publish `PUBLISHED` transitions as fast as the bus takes them,
/// let the persister work a while, say so, and wait to be killed.
fn child(db: &Path) {
    runtime().block_on(async {
        let log = open_log(db).await;
        let bus = TransitionBus::new(32_768).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        println!("child: run {}", p.run_id());
        for i in 0..PUBLISHED {
            bus.publish(fired(i));
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
        println!("child: published {PUBLISHED}");
        // Until a refresh of the run record that began after the last publish has
        // completed (the second save from now), or everything is persisted.
        let saves = p.stats().record_saves;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = p.stats();
            let done = s.received == PUBLISHED && s.is_settled();
            if s.record_saves >= saves + 2 || done || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!("child: ready {:?}", p.stats());
        std::future::pending::<()>().await;
    });
}

#[test]
fn killed_run_is_recorded_as_one_unclean_sentinel() {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        child(Path::new(&db));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &db)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let (tx, lines) = mpsc::channel();
    let stdout = proc.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut run = None;
    loop {
        let line = match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(e) => {
                let _ = proc.kill();
                panic!("the child stopped talking: {e}");
            }
        };
        eprintln!("{line}");
        // libtest may print its own words before ours on the line.
        let Some(said) = line.find("child: ").map(|i| &line[i + "child: ".len()..]) else {
            continue;
        };
        if let Some(r) = said.strip_prefix("run ") {
            run = Some(r.parse::<RunId>().unwrap());
        }
        if said.starts_with("ready") {
            break;
        }
    }
    // SIGKILL: no destructor, no shutdown, nothing flushed.
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let killed = run.expect("the child named its run");

    runtime().block_on(async {
        let log = open_log(&db).await;
        let bus = TransitionBus::new(64).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        bus.publish(fired(0));
        let stats = p.shutdown().await.unwrap();
        assert_eq!(stats.unclean_recorded, 1, "{stats:?}");
        let events = log.all_sled_events(&log.sled_id()).await.unwrap();
        let sentinels: Vec<_> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.entry {
                Entry::Unclean(u) => Some((i, u.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(sentinels.len(), 1, "one unclean sentinel");
        let (at, u) = &sentinels[0];
        assert_eq!(u.run, killed);
        eprintln!("{}", events[*at].render());
        // Before it: the killed run's ids from 0, each once, in order, up to `from`.
        let mut next = 0;
        for e in &events[..*at] {
            match &e.entry {
                Entry::Transition(t) => {
                    let o = t.origin.expect("a persisted transition names its origin");
                    assert_eq!((o.run, o.id), (killed, next), "event #{}", e.event_id);
                    assert_eq!(t.story_id, format!("test_{next}"));
                    next += 1;
                }
                Entry::Gap(g) => {
                    assert_eq!((g.run, g.from), (killed, next), "event #{}", e.event_id);
                    next = g.to + 1;
                }
                Entry::Unclean(_) => unreachable!(),
            }
        }
        assert_eq!(u.from, next, "from = one past the last persisted id");
        assert!(u.from <= PUBLISHED);
        // The record was refreshed after the last publish: exactly the rest is
        // known lost, never more than was published.
        assert_eq!(u.from + u.known_lost, PUBLISHED, "{u:?}");
        assert_eq!(stats.unclean_known_lost, u.known_lost);
        // After it: only the new run.
        for e in &events[at + 1..] {
            assert!(matches!(&e.entry, Entry::Transition(t)
                if t.origin.is_some_and(|o| o.run == stats.run)));
        }
        assert_eq!(events.len(), at + 2);
    });
    // The new run ended cleanly: one more start records nothing new.
    runtime().block_on(async {
        let log = open_log(&db).await;
        let bus = TransitionBus::new(64).unwrap();
        let p = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
        p.shutdown().await.unwrap();
        let n = log
            .all_sled_events(&log.sled_id())
            .await
            .unwrap()
            .iter()
            .filter(|e| matches!(e.entry, Entry::Unclean(_)))
            .count();
        assert_eq!(n, 1);
    });
}
