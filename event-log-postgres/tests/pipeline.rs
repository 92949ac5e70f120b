//! An `EventLog` pipelining its group commits over the store's ordered-append
//! connection: losing that connection mid-pipeline loses nothing and leaves no hole.

mod common;

use event_log_conformance::read::ReadAll;
use std::sync::Arc;
use std::time::Duration;

use common::{SchemaGuard, admin, blocked_backend, config, key, pg_url, unique_schema};
use event_log_conformance::producers::{check_stored, produce};
use event_log_core::{Error, EventLog, OpStore, Transition};
use event_log_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_pipeline_connection_loses_nothing() {
    let url = pg_url();
    let schema = unique_schema("pipe");
    let _guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::open(&url, config(&schema).with_pipeline(4).with_pool_size(8))
        .await
        .unwrap();
    assert_eq!(store.append_pipeline(), 4);
    let log = Arc::new(EventLog::open(store.clone(), key(3)).await.unwrap());
    log.append_transition(Transition::now("warm-up", "a", "b", "E"))
        .await
        .unwrap();

    // Block inserts, so groups pile up in flight on the ordered-append connection.
    let mut admin = admin().await;
    let tx = admin.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE \"{schema}\".ops IN EXCLUSIVE MODE"))
        .await
        .unwrap();
    let producing = {
        let log = log.clone();
        tokio::spawn(async move { produce(&log, 16, 6).await })
    };
    let pid = blocked_backend(&tx, &schema).await;
    // Give the pipeline time to fill behind the blocked group, then kill it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.query("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let out = producing.await.unwrap().unwrap();
    for (story, e) in &out.failed {
        assert!(
            matches!(e, Error::InDoubt { .. }),
            "unexpected error for {story}: {e}"
        );
    }
    assert!(
        !out.failed.is_empty(),
        "the killed connection had appends in flight"
    );
    log.flush().await.expect("the appends in doubt complete");
    check_stored(&log, &store, &out.acked).await.unwrap();
    let events = log.all_events().await.unwrap();
    assert_eq!(
        events.len(),
        1 + 16 * 6,
        "in-doubt appends were completed by the flush"
    );
    drop(log);
    let reopened = EventLog::open(store, key(3)).await.unwrap();
    assert_eq!(reopened.all_events().await.unwrap(), events);
}
