//! Group commit: the writer thread's stats show concurrent calls sharing commits.
//! (Their outcomes, every call landing and a conflict failing only its own request,
//! are the conformance scenarios `concurrent_store_appenders` and
//! `group_conflict_fails_alone`; these run the same workloads and look at the
//! commits.)

mod common;

use std::sync::Arc;

use common::{fresh, open};
use event_log_conformance::scenarios::{concurrent_appends, conflicting_group};

/// 32 concurrent appenders on a multi-threaded runtime: every call counted, no more
/// commits than calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_appenders_are_counted() {
    let (_dir, path) = fresh();
    let store = Arc::new(open(&path).await);
    concurrent_appends(store.clone()).await.unwrap();
    let stats = store.stats();
    assert_eq!(stats.appends, 32 * 6, "{stats:?}");
    assert_eq!(stats.ops_written, 32 * 7 + 10, "{stats:?}");
    assert!(stats.commits <= stats.appends, "{stats:?}");
}

/// Requests queued together share one commit; the one that conflicts with an
/// earlier request of its group fails alone.
#[tokio::test]
async fn a_conflict_fails_only_its_own_request_in_a_group() {
    let (_dir, path) = fresh();
    let store = open(&path).await;
    conflicting_group(&store).await.unwrap();
    let stats = store.stats();
    assert!(
        stats.largest_group > 1,
        "no request shared a commit: {stats:?}"
    );
    assert!(stats.commits < 32, "{stats:?}");
    assert_eq!((stats.appends, stats.conflicts), (31, 1));
    assert_eq!(stats.ops_written, 31);
}
