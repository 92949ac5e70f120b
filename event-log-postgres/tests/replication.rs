//! Replication through one shared schema: sleds with followers converge, a late sled
//! catches up, listeners get other sleds' events once each, a follower survives the
//! loss of its listening connection, and how long an event takes to travel.
//!
//! Needs a server: run with `scripts/test.sh -p event-log-postgres`.

mod common;

use event_log_conformance::read::ReadAll;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SchemaGuard, admin, key, pg_url, unique_schema};
use event_log_core::{EventLog, EventObserver, LoggedEvent, SledId, Transition};
use event_log_postgres::{
    FollowerConfig, FollowerHandle, FollowerStats, PostgresConfig, PostgresStore, spawn_follower,
};
use tokio::time::Instant;

/// One sled: its log on the shared schema and its follower.
struct Sled {
    n: u8,
    log: Arc<EventLog<PostgresStore>>,
    follower: FollowerHandle,
}

/// The store config of sled `n` on `schema`; the application name tells its
/// backends apart in `pg_stat_activity`.
fn sled_config(schema: &str, n: u8) -> PostgresConfig {
    PostgresConfig::default()
        .with_schema(schema)
        .with_pool_size(4)
        .with_application_name(app_name(schema, n))
        .with_listen_ping_interval(Duration::from_secs(2))
}

fn app_name(schema: &str, n: u8) -> String {
    format!("{schema}_s{n}")
}

async fn open_sled(schema: &str, n: u8, follower: FollowerConfig) -> Sled {
    let store = PostgresStore::open(&pg_url(), sled_config(schema, n))
        .await
        .expect("open the sled's store");
    let log = Arc::new(EventLog::open(store, key(n)).await.expect("open the log"));
    let follower = spawn_follower(log.clone(), follower);
    Sled { n, log, follower }
}

/// A fresh schema (dropped with the guard) and the sleds `ns` on it.
async fn cluster(tag: &str, ns: &[u8], follower: FollowerConfig) -> (SchemaGuard, Vec<Sled>) {
    let schema = unique_schema(tag);
    let guard = SchemaGuard::new(&pg_url(), &schema);
    let mut sleds = Vec::new();
    for &n in ns {
        sleds.push(open_sled(&schema, n, follower.clone()).await);
    }
    (guard, sleds)
}

fn transition(n: u8, i: usize) -> Transition {
    Transition::now(
        format!("story-{n}-{i}"),
        "backlog",
        "coding",
        format!("sled {n} step {i}"),
    )
}

/// Appends `count` transitions on every sled at once (one task per sled).
async fn append_concurrently(sleds: &[&Sled], count: usize) {
    let tasks: Vec<_> = sleds
        .iter()
        .map(|s| {
            let (n, log) = (s.n, s.log.clone());
            tokio::spawn(async move {
                for i in 0..count {
                    log.append_transition(transition(n, i))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("append task");
    }
}

/// Waits until every sled shows `expected` events, the same timeline and the same
/// version vector; fails naming what differs after `within`.
async fn converge(sleds: &[&Sled], expected: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let first = sleds[0].log.all_timeline().await.unwrap();
        let vv = sleds[0].log.version_vector();
        let mut done = first.len() == expected;
        for s in sleds {
            done = done
                && s.log.version_vector() == vv
                && s.log.all_timeline().await.unwrap() == first;
        }
        if done {
            return;
        }
        if Instant::now() >= deadline {
            let lens: Vec<_> = sleds.iter().map(|s| s.log.visible_len()).collect();
            let stats: Vec<_> = sleds.iter().map(|s| s.follower.stats()).collect();
            panic!(
                "sleds did not converge on {expected} events within {within:?}: \
                 visible events per sled {lens:?}; follower stats {stats:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a follower's counters satisfy `ok` (they are bumped just after the
/// catch-up whose events are already visible); fails showing them after 5 s.
async fn stats_reach(
    sled: &Sled,
    what: &str,
    ok: impl Fn(&FollowerStats) -> bool,
) -> FollowerStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = sled.follower.stats();
        if ok(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "follower of sled {}: expected {what}, got {stats:?}",
            sled.n
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Collects every event a log's listener receives, counted per event.
#[derive(Default)]
struct Received {
    seen: Mutex<HashMap<(SledId, u64), usize>>,
}

impl EventObserver for Received {
    fn on_events(&self, events: &[LoggedEvent]) {
        let mut seen = self.seen.lock().expect("listener lock");
        for e in events {
            *seen.entry((e.sled_id, e.event_id)).or_default() += 1;
        }
    }
}

impl Received {
    fn of(&self, sled: SledId) -> HashMap<u64, usize> {
        let seen = self.seen.lock().expect("listener lock");
        seen.iter()
            .filter(|((s, _), _)| *s == sled)
            .map(|((_, id), n)| (*id, *n))
            .collect()
    }
}

/// Three sleds with followers append 50 events each, concurrently: every sled ends with
/// all 150 events, the same timeline and the same version vector.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sleds_converge() {
    let (_guard, sleds) = cluster("conv3", &[1, 2, 3], FollowerConfig::default()).await;
    let all: Vec<&Sled> = sleds.iter().collect();
    append_concurrently(&all, 50).await;
    converge(&all, 150, Duration::from_secs(10)).await;
    for s in &sleds {
        let stats = stats_reach(s, "the other two's 100 ops applied", |st| st.applied >= 100).await;
        assert_eq!(stats.applied, 100, "nothing applied twice: {stats:?}");
        assert_eq!(stats.errors, 0, "{stats:?}");
        assert_eq!(
            s.log.all_sled_events(&s.log.sled_id()).await.unwrap().len(),
            50
        );
    }
    for s in sleds {
        s.follower.shutdown().await;
    }
}

/// A sled opened later replays everything on open, then gets the others' new events
/// through its follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_sled_catches_up() {
    let (guard, sleds) = cluster("late", &[1, 2, 3], FollowerConfig::default()).await;
    let all: Vec<&Sled> = sleds.iter().collect();
    append_concurrently(&all, 50).await;
    converge(&all, 150, Duration::from_secs(10)).await;

    let late = open_sled(&guard.schema, 4, FollowerConfig::default()).await;
    assert_eq!(
        late.log.visible_len(),
        150,
        "open replays every stored event"
    );
    assert_eq!(
        late.log.all_timeline().await.unwrap(),
        sleds[0].log.all_timeline().await.unwrap()
    );

    append_concurrently(&all, 10).await;
    let mut everyone = all.clone();
    everyone.push(&late);
    converge(&everyone, 180, Duration::from_secs(10)).await;
    let stats = stats_reach(&late, "30 ops applied", |st| st.applied >= 30).await;
    assert_eq!(stats.applied, 30, "{stats:?}");

    // And the late sled's own events reach the others.
    append_concurrently(&[&late], 5).await;
    converge(&everyone, 185, Duration::from_secs(10)).await;
}

/// A listener on sled A receives each of sled B's events exactly once, through A's
/// follower, even while A also catches up by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listener_gets_each_remote_event_once() {
    let (_guard, sleds) = cluster("push", &[1, 2], FollowerConfig::default()).await;
    let (a, b) = (&sleds[0], &sleds[1]);
    let received = Arc::new(Received::default());
    a.log.add_observer(received.clone());

    // Extra catch-ups racing the follower's must not deliver anything twice.
    let racer = {
        let log = a.log.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                log.catch_up().await.expect("catch up by hand");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    append_concurrently(&[b], 60).await;
    racer.await.expect("racer");
    converge(&[a, b], 60, Duration::from_secs(10)).await;
    // Leave the poll time to run once more: it must not deliver again.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let got = received.of(b.log.sled_id());
    assert_eq!(got.len(), 60, "every event of B reached A's listener");
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "events delivered more than once: {twice:?}"
    );
    assert!(
        received.of(a.log.sled_id()).is_empty(),
        "A appended nothing"
    );
}

/// Killing a follower's listening backend loses the notifications of that moment; the
/// follower learns of it (`Reconnected`) and catches up without waiting for the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_survives_listener_loss() {
    // A poll far beyond the test's deadline: only notifications can bring the ops.
    let slow_poll = FollowerConfig {
        poll_interval: Duration::from_secs(120),
        ..FollowerConfig::default()
    };
    let (guard, sleds) = cluster("relisten", &[1, 2], slow_poll).await;
    let (a, b) = (&sleds[0], &sleds[1]);
    append_concurrently(&[b], 5).await;
    converge(&[a, b], 5, Duration::from_secs(10)).await;

    let admin = admin().await;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
            &[&app_name(&guard.schema, 1)],
        )
        .await
        .expect("kill A's listener");
    assert_eq!(killed.len(), 1, "A has one listening backend");
    // Appended while A is not listening: their notifications are lost.
    append_concurrently(&[b], 20).await;
    converge(&[a, b], 25, Duration::from_secs(15)).await;
    let stats = stats_reach(a, "the loss noticed", |st| st.reconnects >= 1).await;
    assert_eq!(stats.applied_by_poll, 0, "{stats:?}");

    // Notifications flow again.
    append_concurrently(&[b], 5).await;
    converge(&[a, b], 30, Duration::from_secs(10)).await;
}

/// Without notifications at all (the writer's store does not `NOTIFY`), the poll
/// alone brings every op.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_alone_converges() {
    let schema = unique_schema("poll");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let quick_poll = FollowerConfig {
        poll_interval: Duration::from_millis(200),
        ..FollowerConfig::default()
    };
    let a = open_sled(&schema, 1, quick_poll.clone()).await;
    let silent = PostgresStore::open(&pg_url(), sled_config(&schema, 2).with_notify(false))
        .await
        .expect("open the silent store");
    let log = Arc::new(EventLog::open(silent, key(2)).await.expect("open"));
    let b = Sled {
        n: 2,
        follower: spawn_follower(log.clone(), quick_poll),
        log,
    };
    // A's first catch-up (at start, not from the poll) has run before B appends.
    stats_reach(&a, "a first catch-up", |st| st.catch_ups >= 1).await;
    append_concurrently(&[&b], 20).await;
    converge(&[&a, &b], 20, Duration::from_secs(10)).await;
    let stats = stats_reach(&a, "20 ops found by the poll", |st| st.applied >= 20).await;
    assert_eq!(stats.applied_by_poll, 20, "{stats:?}");
    a.follower.shutdown().await;
    b.follower.shutdown().await;
}

/// How long an event takes from the start of its append on B to A's listener: printed
/// (run with `--nocapture`), not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_latency() {
    let (_guard, sleds) = cluster("latency", &[1, 2], FollowerConfig::default()).await;
    let (a, b) = (&sleds[0], &sleds[1]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    struct Arrivals(tokio::sync::mpsc::UnboundedSender<(u64, Instant)>);
    impl EventObserver for Arrivals {
        fn on_events(&self, events: &[LoggedEvent]) {
            let now = Instant::now();
            for e in events {
                let _ = self.0.send((e.event_id, now));
            }
        }
    }
    a.log.add_observer(Arc::new(Arrivals(tx)));

    const N: usize = 200;
    let mut travel = Vec::with_capacity(N);
    let mut append = Vec::with_capacity(N);
    for i in 0..N {
        let start = Instant::now();
        let e = b
            .log
            .append_transition(transition(2, i))
            .await
            .expect("append");
        append.push(start.elapsed());
        let (id, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the event reaches A within 5 s")
            .expect("listener alive");
        assert_eq!(id, e.event_id, "events arrive in order, once each");
        travel.push(at - start);
    }
    let (mean, p50, p99, max) = summary(&mut travel);
    let (amean, _, ap99, _) = summary(&mut append);
    println!(
        "replication latency B append -> A listener over {N} appends: \
         mean {mean:?}, p50 {p50:?}, p99 {p99:?}, max {max:?} \
         (B's append alone: mean {amean:?}, p99 {ap99:?})"
    );
    let stats = a.follower.stats();
    println!("A's follower: {stats:?}");
}

fn summary(v: &mut [Duration]) -> (Duration, Duration, Duration, Duration) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (mean, at(0.50), at(0.99), v[v.len() - 1])
}
