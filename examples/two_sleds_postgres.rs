//! Two sleds sharing one PostgreSQL database: each appends its own transitions, and
//! each sees the other's after catching up from the store.
//!
//! ```sh
//! EVENT_LOG_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --example two_sleds_postgres --features postgres
//! ```

use event_log::{Causal, Transition, keys};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let base = std::env::var("EVENT_LOG_PG_URL")
        .or_else(|_| std::env::var("EVENT_LOG_TEST_PG_URL"))
        .map_err(|_| "set EVENT_LOG_PG_URL to a PostgreSQL URL")?;
    let url = format!("{base}?schema=two_sleds_example");
    let a = event_log::open(&url, keys::generate()).await?;
    let b = event_log::open(&url, keys::generate()).await?;
    a.append_transition(Transition::now("story-1", "backlog", "coding", "DepsMet"))
        .await?;
    b.append_transition(Transition::now("story-2", "coding", "review", "Done"))
        .await?;
    // Each sled reads what the other committed (a follower task does this on NOTIFY).
    a.catch_up().await?;
    b.catch_up().await?;
    // Reads are served by the store, a page at a time.
    let (pa, pb) = (
        a.read_timeline(&Causal::START, 100).await?,
        b.read_timeline(&Causal::START, 100).await?,
    );
    assert_eq!(pa.events, pb.events);
    print!("{}", event_log::render_lines(&pa.events));
    Ok(())
}
