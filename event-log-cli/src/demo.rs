//! `evlog demo`: the main job, end to end on an embedded SQLite file.
//!
//! A sled opens its log, publishes transitions through a deliberately small bus,
//! bursts faster than the persister can drain it (so the bus overwrites some and the
//! persister records exactly which as a gap sentinel), shuts down, restarts from the
//! same file, and prints its timeline, gap line included.
//!
//! Without `--store` the file is `./evlog-demo.db` in the current directory, kept so
//! that the command printed last (`evlog show --store sqlite://./evlog-demo.db`)
//! works, and a second run adds to it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_log::bus::{PersisterConfig, TransitionBus, spawn_persister};
use event_log::{EventLog, EventLogConfig, FileWatermark, SharedWatermark, Transition};

use crate::exit::CmdResult;
use crate::out;
use crate::out::outln;
use crate::show::print_timeline;

/// The store of a demo run without `--store`: a file in the current directory.
pub const DEFAULT_STORE: &str = "sqlite://./evlog-demo.db";

/// Arguments of `evlog demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL (default: sqlite://./evlog-demo.db, a file in the current directory,
    /// kept). A memory: store does not persist: the restart starts empty.
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
    /// One JSON object per line: the steps (`"step"`: opened, published, restarted,
    /// next), and the events of the timeline as `evlog show --json` prints them.
    #[arg(long)]
    json: bool,
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
    let url = a.store.clone().unwrap_or_else(|| DEFAULT_STORE.to_owned());
    let persistent = !url.starts_with("memory:");
    if !persistent {
        eprintln!(
            "warning: memory: stores do not persist: the restart below opens a new, empty store, so it cannot show what this run wrote (use --store sqlite://PATH to keep it)"
        );
    }
    let (key, config) = match &a.key {
        Some(path) => (
            event_log::keys::load_or_create(path)?,
            EventLogConfig::default()
                .with_watermark(Some(SharedWatermark::new(FileWatermark::beside_key(path)?))),
        ),
        None => (event_log::keys::generate(), EventLogConfig::default()),
    };

    // 1. The sled starts: log, bus, persisting subscriber.
    let log = Arc::new(event_log::open_with(&url, key.clone(), config.clone()).await?);
    let shown = event_log::redact_url(&url);
    if a.json {
        out::json(&serde_json::json!({
            "step": "opened",
            "sled": log.sled_id().to_string(),
            "store": shown,
            "events": log.visible_len(),
        }))?;
    } else {
        outln!(
            "sled {} opened {shown} ({} events already)",
            log.sled_id(),
            log.visible_len()
        )?;
    }
    let bus = TransitionBus::new(a.capacity)?;
    let persister = spawn_persister(bus.receiver(), log.clone(), PersisterConfig::default());

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
    let accounted = stats.persisted + stats.dropped == published;
    if a.json {
        out::json(&serde_json::json!({
            "step": "published",
            "run": stats.run,
            "published": published,
            "persisted": stats.persisted,
            "gaps": stats.gaps,
            "dropped": stats.dropped,
            "accounted_for": accounted,
        }))?;
    } else {
        outln!(
            "published {published}: {} persisted, {} gap(s) covering {} dropped ({})",
            stats.persisted,
            stats.gaps,
            stats.dropped,
            if accounted {
                "every transition accounted for"
            } else {
                "ACCOUNTING MISMATCH"
            }
        )?;
    }
    drop(bus);
    let log = Arc::try_unwrap(log).map_err(|_| "log still in use")?;
    log.close().await?;
    drop(log);

    // 5. Restart from the same store and print the timeline.
    let log: EventLog<_> = event_log::open_with(&url, key, config).await?;
    let opened = log.open_stats();
    let next = format!("evlog show --store {}", shell_word(&shown));
    if a.json {
        out::json(&serde_json::json!({
            "step": "restarted",
            "events": log.visible_len(),
            "verified": opened.verified,
        }))?;
        print_timeline(&log, true).await?;
        if persistent {
            out::json(&serde_json::json!({ "step": "next", "command": next }))?;
        }
    } else {
        outln!(
            "restarted: {} events replayed, every id re-hashed; {} signatures verified, the rest covered by the sled's signed checkpoint\n",
            log.visible_len(),
            opened.verified
        )?;
        print_timeline(&log, false).await?;
        if persistent {
            outln!("\nto look at it again: {next}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` as one shell word: as it is if it is plain, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_one_shell_word() {
        assert_eq!(shell_word(DEFAULT_STORE), DEFAULT_STORE);
        assert_eq!(shell_word("sqlite:///a b/x.db"), "'sqlite:///a b/x.db'");
        assert_eq!(shell_word("sqlite:///it's.db"), r"'sqlite:///it'\''s.db'");
        assert_eq!(
            shell_word("postgres://u:***@h/db?x=1&y=2"),
            "'postgres://u:***@h/db?x=1&y=2'"
        );
    }
}
