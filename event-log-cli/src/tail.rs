//! `evlog tail`: follow a store live.
//!
//! The store is read into an in-memory view with [`event_log::EventLog::catch_up`]:
//! every op other writers commit (other sleds on a shared PostgreSQL, another process
//! on a SQLite file) is validated and printed once. It polls at `--interval`; a missed
//! wake-up loses nothing, the next poll catches up by version vector.

use std::process::ExitCode;
use std::time::Duration;

use crate::CmdResult;
use crate::show::print_events;

/// Arguments of `evlog tail`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Print the events already stored before following.
    #[arg(long)]
    from_start: bool,
    /// Poll interval in milliseconds.
    #[arg(long, default_value_t = 250)]
    interval: u64,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    for_secs: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// Runs `evlog tail`.
pub async fn run(a: Args) -> CmdResult {
    let log = crate::open_reader(&a.store).await?;
    let mut cursor = if a.from_start {
        Default::default()
    } else {
        log.cursor()
    };
    let deadline = a
        .for_secs
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_millis(a.interval.max(10)));
    loop {
        let fresh = log.events_since(&cursor);
        for e in &fresh {
            cursor.raise(e.sled_id, e.event_id + 1);
        }
        print_events(&fresh, a.json)?;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        log.catch_up().await?;
    }
}
