//! `evlog demo`: the main job, end to end on an embedded SQLite file.
//!
//! A sled opens its log, publishes transitions through a deliberately small bus,
//! bursts faster than the persister can drain it (so the bus overwrites some and the
//! persister records exactly which as a gap sentinel), shuts down, restarts from the
//! same file, and prints its timeline, gap line included.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_log::bus::{PersisterConfig, TransitionBus, spawn_persister};
use event_log::{
    EventLog, EventLogConfig, FileWatermark, SharedWatermark, Transition, render_lines,
};

use crate::CmdResult;

/// Arguments of `evlog demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL (default: a fresh SQLite file in a temporary directory).
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Sled key file, created if missing (default: a fresh key for this run). The
    /// sled's signed watermark is kept beside it (`<key>.mark`), so a store that lost
    /// acknowledged ops is refused instead of having them signed again.
    #[arg(long)]
    key: Option<std::path::PathBuf>,
    /// Bus capacity (tokio rounds it up to a power of two).
    #[arg(long, default_value_t = 4)]
    capacity: usize,
    /// Transitions in the burst that overruns the bus.
    #[arg(long, default_value_t = 12)]
    burst: u64,
}

const STAGES: [&str; 5] = ["backlog", "coding", "review", "merged", "done"];

fn transition(i: u64) -> Transition {
    let s = (i % 4) as usize;
    Transition::now(
        format!("story-{}", i % 3 + 1),
        STAGES[s],
        STAGES[s + 1],
        "Advance",
    )
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        self.store.iter().map(String::as_str).collect()
    }
}

/// Runs `evlog demo` on a single-threaded runtime, so the burst really outruns the
/// persister.
pub fn run(a: Args) -> CmdResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo(a))
}

async fn demo(a: Args) -> CmdResult {
    let tmp = tempfile::tempdir()?;
    let url = a
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", tmp.path().join("evlog-demo.db").display()));
    let (key, config) = match &a.key {
        Some(path) => (
            event_log::keys::load_or_create(path)?,
            EventLogConfig {
                watermark: Some(SharedWatermark::new(FileWatermark::beside_key(path)?)),
                ..EventLogConfig::default()
            },
        ),
        None => (event_log::keys::generate(), EventLogConfig::default()),
    };

    // 1. The sled starts: log, bus, persisting subscriber.
    let log = Arc::new(event_log::open_with(&url, key.clone(), config.clone()).await?);
    println!(
        "sled {} opened {} ({} events already)",
        log.sled_id(),
        event_log::redact_url(&url),
        log.len()
    );
    let bus = TransitionBus::new(a.capacity)?;
    let persister = spawn_persister(bus.subscribe(), log.clone(), PersisterConfig::default());

    // 2. A calm start: three transitions, each persisted before the next.
    let mut published = 0u64;
    for _ in 0..3 {
        bus.publish(transition(published));
        published += 1;
        while persister.stats().persisted < published {
            if persister.is_finished() {
                // It stopped on an error: shutdown returns it.
                persister.shutdown().await?;
                return Err("the persister stopped".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // 3. A burst with no pause: the bus holds only `capacity` unread transitions, so
    //    the persister lags and records the overwritten ones as one gap.
    for _ in 0..a.burst {
        bus.publish(transition(published));
        published += 1;
    }
    tokio::task::yield_now().await;
    // 4. One more, then a graceful shutdown that flushes what was received.
    bus.publish(transition(published));
    published += 1;
    let stats = persister.shutdown().await?;
    println!(
        "published {published}: {} persisted, {} gap(s) covering {} dropped ({})",
        stats.persisted,
        stats.gaps,
        stats.dropped,
        if stats.persisted + stats.dropped == published {
            "every transition accounted for"
        } else {
            "ACCOUNTING MISMATCH"
        }
    );
    drop(bus);
    let log = Arc::try_unwrap(log).map_err(|_| "log still in use")?;
    log.close().await?;
    drop(log);

    // 5. Restart from the same store and print the timeline.
    let log: EventLog<_> = event_log::open_with(&url, key, config).await?;
    let opened = log.open_stats();
    println!(
        "restarted: {} events replayed, every id re-hashed; {} signatures verified, the rest covered by the sled's signed checkpoint\n",
        log.len(),
        opened.verified
    );
    print!("{}", render_lines(&log.timeline()));
    Ok(ExitCode::SUCCESS)
}
