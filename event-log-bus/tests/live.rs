//! The live feed: catch-up from any cursor, live continuation, lag recovery from the
//! durable log, filters, merged remote events, end of feed.

mod common;

use event_log_conformance::read::ReadAll;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{cases, fired, key};
use event_log_bus::{EventFilter, LiveFeed, LiveFeedConfig, Subscription};
use event_log_core::{
    EventLog, Gap, LoggedEvent, MemStore, OpStore, RunId, SledId, VersionVector, push,
};
use futures::StreamExt;
use proptest::prelude::*;

type Key = (SledId, u64);

fn keys(events: &[LoggedEvent]) -> Vec<Key> {
    events.iter().map(|e| (e.sled_id, e.event_id)).collect()
}

/// Everything ready now, without waiting.
fn drain<S: OpStore>(sub: &mut Subscription<S>) -> Vec<LoggedEvent> {
    std::iter::from_fn(|| sub.try_next()).collect()
}

/// Per sled, event ids strictly increasing; no key twice.
fn assert_once_in_order(got: &[LoggedEvent]) {
    let mut last: std::collections::HashMap<SledId, u64> = Default::default();
    for e in got {
        if let Some(prev) = last.insert(e.sled_id, e.event_id) {
            assert!(
                e.event_id > prev,
                "sled {} went {prev} -> {}",
                e.sled_id.short(),
                e.event_id
            );
        }
    }
}

async fn two_sleds(a_n: u64, b_n: u64) -> (Arc<EventLog<MemStore>>, EventLog<MemStore>) {
    let a = Arc::new(EventLog::open(MemStore::new(), key(1)).await.unwrap());
    let b = EventLog::open(MemStore::new(), key(2)).await.unwrap();
    for i in 0..a_n {
        if i % 4 == 3 {
            a.append_gap(Gap::new(RunId(7), i, i)).await.unwrap();
        } else {
            a.append_transition(fired(i)).await.unwrap();
        }
    }
    for i in 0..b_n {
        b.append_transition(fired(100 + i)).await.unwrap();
    }
    push(&b, &a).await.unwrap();
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(16)))]

    /// From every cursor of a random two-sled log, a catch-up subscription sees each
    /// event after the cursor exactly once, then the live events (local appends and
    /// merged remote ops) exactly once — whether the live events land before or after
    /// its backlog read.
    #[test]
    fn catch_up_from_every_cursor_sees_each_event_once(a_n in 0u64..8, b_n in 0u64..6) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let (a, b) = two_sleds(a_n, b_n).await;
            let feed = LiveFeed::attach(a.clone(), LiveFeedConfig::default()).unwrap();
            let (sa, sb) = (a.sled_id(), b.sled_id());
            let mut subs = Vec::new();
            for i in 0..=a_n {
                for j in 0..=b_n {
                    let mut c = VersionVector::new();
                    c.set(sa, i);
                    c.set(sb, j);
                    let mut sub = feed.subscribe_from(c.clone(), EventFilter::all());
                    // Half read their backlog before the live events exist.
                    let early = if (i + j) % 2 == 0 { drain(&mut sub) } else { Vec::new() };
                    if (i + j) % 2 == 0 {
                        // The backlog alone: exactly the events after the cursor, by sled.
                        let want: Vec<Key> = keys(&a.all_events_since(&c).await.unwrap());
                        assert_eq!(keys(&early), want);
                    }
                    subs.push((c, sub, early));
                }
            }
            a.append_transition(fired(50)).await.unwrap();
            b.append_transition(fired(150)).await.unwrap();
            push(&b, &a).await.unwrap();
            a.append_all(vec![
                event_log_core::Entry::Transition(fired(51)),
                event_log_core::Entry::Transition(fired(52)),
            ]).await.unwrap();
            let all = a.all_events().await.unwrap();
            assert_eq!(all.len() as u64, a_n + b_n + 4);
            for (c, mut sub, mut got) in subs {
                got.extend(drain(&mut sub));
                let want: BTreeSet<Key> = all
                    .iter()
                    .filter(|e| e.event_id >= c.get(&e.sled_id))
                    .map(|e| (e.sled_id, e.event_id))
                    .collect();
                assert_once_in_order(&got);
                let got_keys = keys(&got);
                assert_eq!(got_keys.len(), want.len(), "cursor {c:?}: duplicates or holes");
                assert_eq!(got_keys.iter().copied().collect::<BTreeSet<_>>(), want);
                assert_eq!(sub.cursor(), &a.version_vector());
            }
        });
    }
}

/// A live subscriber with a 1-commit buffer that does not read while 200 commits
/// happen lags, re-reads the durable log, and still sees every event exactly once,
/// in order.
#[tokio::test]
async fn lagging_live_subscriber_rereads_the_log_and_misses_nothing() {
    let log = Arc::new(EventLog::open(MemStore::new(), key(1)).await.unwrap());
    log.append_transition(fired(0)).await.unwrap(); // before: not part of a live feed
    let feed = LiveFeed::attach(log.clone(), LiveFeedConfig { capacity: 1 }).unwrap();
    let mut sub = feed.subscribe(EventFilter::all());
    let mut got = Vec::new();
    for i in 1..=200 {
        log.append_transition(fired(i)).await.unwrap();
        if i == 100 {
            got.push(sub.next().await.unwrap()); // read a little, then fall behind again
        }
    }
    got.extend(drain(&mut sub));
    assert!(
        sub.rereads() >= 2,
        "expected lag recoveries, got {}",
        sub.rereads()
    );
    let ids: Vec<u64> = got.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (1..=200).collect::<Vec<_>>());
}

/// Catch-up subscriptions taken while another task appends concurrently never see a
/// duplicate or a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_during_concurrent_appends_has_no_hole_and_no_duplicate() {
    // Over two pages of a catch-up read (512), so a read spans pages while appends go on.
    const N: u64 = 1500;
    let log = Arc::new(EventLog::open(MemStore::new(), key(1)).await.unwrap());
    let feed = Arc::new(LiveFeed::attach(log.clone(), LiveFeedConfig { capacity: 4 }).unwrap());
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..N {
                log.append_transition(fired(i)).await.unwrap();
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut readers = Vec::new();
    for r in 0..8u64 {
        let feed = feed.clone();
        let log = log.clone();
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(r * 300)).await;
            let start = log.version_vector();
            let from = start.get(&log.sled_id());
            let mut sub = feed.subscribe_from(start, EventFilter::all());
            let mut ids = Vec::new();
            while ids.len() as u64 != N - from {
                let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .expect("no event for 10 s: a hole")
                    .unwrap();
                ids.push(e.event_id);
            }
            assert_eq!(ids, (from..N).collect::<Vec<_>>(), "reader {r}");
        }));
    }
    // Readers from event 0 once the backlog is long (up to 1,050 events: pages of
    // the catch-up read while the writer goes on).
    for r in 0..8u64 {
        let feed = feed.clone();
        let log = log.clone();
        readers.push(tokio::spawn(async move {
            while log.version_vector().get(&log.sled_id()) < r * 150 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let mut sub = feed.subscribe_from(VersionVector::new(), EventFilter::all());
            let mut ids = Vec::new();
            while (ids.len() as u64) < N {
                let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .expect("no event for 10 s: a hole")
                    .unwrap();
                ids.push(e.event_id);
            }
            assert_eq!(ids, (0..N).collect::<Vec<_>>(), "reader from 0, {r}");
        }));
    }
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}

/// Filters select by story or by sled, for backlog and live events alike, and
/// merged remote events reach the feed.
#[tokio::test]
async fn filters_select_by_story_and_by_sled_including_merged_events() {
    let (a, b) = two_sleds(6, 3).await;
    let feed = LiveFeed::attach(a.clone(), LiveFeedConfig::default()).unwrap();
    let mut by_story = feed.subscribe_from(VersionVector::new(), EventFilter::story("test_101"));
    let mut by_sled = feed.subscribe_from(VersionVector::new(), EventFilter::sled(b.sled_id()));
    let mut live = feed.subscribe(EventFilter::all());
    b.append_transition(fired(101)).await.unwrap();
    push(&b, &a).await.unwrap();
    a.append_transition(fired(101)).await.unwrap();

    let story: Vec<_> = drain(&mut by_story);
    assert_eq!(story.len(), 3, "backlog one + remote one + local one");
    assert!(story.iter().all(|e| e.story_id() == Some("test_101")));
    let sled: Vec<_> = drain(&mut by_sled);
    assert_eq!(
        sled.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(sled.iter().all(|e| e.sled_id == b.sled_id()));
    let live_keys = keys(&drain(&mut live));
    assert_eq!(live_keys, [(b.sled_id(), 3), (a.sled_id(), 6)]);
}

/// A subscription is also a `Stream`, and it ends once the feed is dropped, after
/// what it already holds.
#[tokio::test]
async fn subscription_as_stream_ends_when_the_feed_is_dropped() {
    let log = Arc::new(EventLog::open(MemStore::new(), key(1)).await.unwrap());
    log.append_transition(fired(0)).await.unwrap();
    let feed = LiveFeed::attach(log.clone(), LiveFeedConfig::default()).unwrap();
    let mut sub = feed.subscribe_from(VersionVector::new(), EventFilter::all());
    assert_eq!(sub.next().await.unwrap().event_id, 0); // backlog read
    for i in 1..5 {
        log.append_transition(fired(i)).await.unwrap(); // live
    }
    let stream = sub.into_stream();
    drop(feed);
    log.append_transition(fired(5)).await.unwrap(); // after the end: not delivered
    let got: Vec<LoggedEvent> = tokio::time::timeout(Duration::from_secs(5), stream.collect())
        .await
        .expect("stream ends");
    assert_eq!(
        got.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}
