//! Embedding only the core: an application's unit test with `MemStore`.
//!
//! `event-log-core` has no runtime and no I/O, so the test needs no database and no
//! tokio; any executor runs it (here `futures::executor::block_on`).
//!
//! ```sh
//! cargo run --example embed_core
//! cargo test --example embed_core
//! ```

use event_log::{Causal, EventLog, Gap, MemStore, RunId, SigningKey, Transition, render_lines};

/// The application code under test: records a work item's progress.
async fn advance(
    log: &EventLog<MemStore>,
    story: &str,
    from: &str,
    to: &str,
) -> event_log::Result<u64> {
    let e = log
        .append_transition(Transition::now(story, from, to, "Advance"))
        .await?;
    Ok(e.event_id)
}

fn main() -> event_log::Result<()> {
    futures::executor::block_on(async {
        let log = EventLog::open(MemStore::new(), SigningKey::from_bytes(&[1; 32])).await?;
        advance(&log, "story-1", "backlog", "coding").await?;
        log.append_gap(Gap::new(RunId(1), 1, 2)).await?;
        advance(&log, "story-1", "coding", "review").await?;
        // Reads are served by the store, a page at a time.
        let page = log.read_timeline(&Causal::START, 100).await?;
        print!("{}", render_lines(&page.events));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_logged_in_order_and_survives_a_restart() {
        futures::executor::block_on(async {
            let store = MemStore::new();
            let key = SigningKey::from_bytes(&[2; 32]);
            let log = EventLog::open(store.clone(), key.clone()).await.unwrap();
            assert_eq!(advance(&log, "s", "backlog", "coding").await.unwrap(), 0);
            assert_eq!(advance(&log, "s", "coding", "review").await.unwrap(), 1);
            drop(log);
            // A clone of a MemStore shares its ops: reopening is a restart.
            let log = EventLog::open(store, key).await.unwrap();
            let page = log.read_story("s", &Causal::START, 100).await.unwrap();
            let stages: Vec<_> = page
                .events
                .into_iter()
                .map(|e| e.entry.to_string())
                .collect();
            assert_eq!(
                stages,
                [
                    "s: backlog -> coding (Advance)",
                    "s: coding -> review (Advance)"
                ]
            );
        });
    }
}
