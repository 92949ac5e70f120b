//! The store works without a tokio runtime. (Round trips, idempotency, the
//! conflict rule and empty appends are the conformance scenarios `round_trip`,
//! `odd_payloads_round_trip`, `idempotent_append` and
//! `conflict_rejected_atomically`.)

mod common;

use common::{fresh, open, rec};
use event_log_core::OpStore;

/// The store works outside a tokio runtime too (blocking work then runs inline).
#[test]
fn works_without_a_tokio_runtime() {
    let (_dir, path) = fresh();
    pollster::block_on(async {
        let store = open(&path).await;
        store.append(&[rec(1, 1, "x", false)]).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 1);
        store.close().await.unwrap();
    });
}
