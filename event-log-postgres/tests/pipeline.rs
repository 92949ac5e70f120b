//! An `EventLog` pipelining its group commits over the store's ordered-append
//! connection: losing that connection mid-pipeline loses nothing and leaves no hole.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{SchemaGuard, admin, blocked_backend, config, key, pg_url, unique_schema};
use event_log_core::{Error, EventLog, OpStore, Position, Transition};
use event_log_postgres::{PostgresConfig, PostgresStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_pipeline_connection_loses_nothing() {
    let url = pg_url();
    let schema = unique_schema("pipe");
    let _guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::open(
        &url,
        PostgresConfig {
            pipeline: 4,
            pool_size: 8,
            ..config(&schema)
        },
    )
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
    let mut producers = Vec::new();
    for p in 0..16 {
        let log = log.clone();
        producers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..6 {
                let story = format!("p{p}-{i}");
                let r = log
                    .append_transition(Transition::now(story.clone(), "a", "b", "E"))
                    .await;
                outcomes.push((story, r));
            }
            outcomes
        }));
    }
    let pid = blocked_backend(&tx, &schema).await;
    // Give the pipeline time to fill behind the blocked group, then kill it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.query("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let mut acked = HashSet::new();
    let mut in_doubt = 0;
    for p in producers {
        for (story, r) in p.await.unwrap() {
            match r {
                Ok(_) => {
                    acked.insert(story);
                }
                Err(Error::InDoubt { .. }) => in_doubt += 1,
                Err(e) => panic!("unexpected error for {story}: {e}"),
            }
        }
    }
    assert!(in_doubt > 0, "the killed connection had appends in flight");
    log.flush().await.expect("the appends in doubt complete");

    let stored = store.load(Position::START, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = stored.iter().map(|(_, r)| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "stored seqs are contiguous, in order: no group was stored after a hole"
    );
    let events = log.events();
    assert_eq!(events.len(), stored.len(), "every stored op is visible");
    let stories: HashSet<String> = events
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    assert_eq!(stories.len(), events.len(), "no entry stored twice");
    assert!(
        acked.is_subset(&stories),
        "every acknowledged entry is stored"
    );
    assert_eq!(
        events.len(),
        1 + 16 * 6,
        "in-doubt appends were completed by the flush"
    );
    drop(log);
    let reopened = EventLog::open(store, key(3)).await.unwrap();
    assert_eq!(reopened.events(), events);
}
