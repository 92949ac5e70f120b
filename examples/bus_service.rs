//! A service that publishes transitions through the bus; a persister makes each one
//! durable in SQLite (or records a gap), and a live subscriber watches them arrive.
//!
//! ```sh
//! cargo run --example bus_service
//! ```

use std::sync::Arc;

use event_log::bus::{
    EventFilter, LiveFeed, LiveFeedConfig, PersisterConfig, TransitionBus, spawn_persister,
};
use event_log::{Transition, keys};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("service.db").display());
    let log = Arc::new(event_log::open(&url, keys::generate()).await?);

    // Watch story-2 live.
    let feed = LiveFeed::attach(log.clone(), LiveFeedConfig::default())?;
    let mut watcher = feed.subscribe(EventFilter::story("story-2"));

    // The service publishes; the persister appends (one group commit per drained batch).
    let bus = TransitionBus::new(1024)?;
    let persister = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());
    for i in 0..10 {
        bus.publish(Transition::now(
            format!("story-{}", i % 3),
            "coding",
            "review",
            "Advance",
        ));
    }
    let stats = persister.shutdown().await?;
    println!(
        "persisted {} transitions in {} store calls, {} dropped",
        stats.persisted, stats.batches, stats.dropped
    );
    while let Some(event) = watcher.try_next() {
        println!("live: {event}");
    }
    Ok(())
}
