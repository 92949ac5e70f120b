//! `evlog show`: print the events of a store.

use std::process::ExitCode;

use event_log::LoggedEvent;

use crate::{CmdResult, cursor};

/// Arguments of `evlog show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: memory:, sqlite://PATH, redb://PATH, postgres://…
    #[arg(long, env = "EVLOG_STORE")]
    store: String,
    /// Only this sled (64 hex chars or a unique prefix).
    #[arg(long)]
    sled: Option<String>,
    /// Only this story.
    #[arg(long)]
    story: Option<String>,
    /// Only events after this cursor: SLED=N[,SLED=N…] (N = next event id wanted).
    #[arg(long)]
    since: Option<String>,
    /// Causal order (by lamport, op id) instead of by (sled, event id).
    #[arg(long)]
    timeline: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Runs `evlog show`.
pub async fn run(a: Args) -> CmdResult {
    let log = crate::open_reader(&a.store).await?;
    let sleds: Vec<_> = log.version_vector().iter().map(|(s, _)| *s).collect();
    let mut events: Vec<LoggedEvent> = match &a.since {
        Some(c) => log.events_since(&cursor::parse(c, &sleds)?),
        None if a.timeline => log.timeline(),
        None => log.events(),
    };
    if let Some(s) = &a.sled {
        let sled = cursor::resolve(s, &sleds)?;
        events.retain(|e| e.sled_id == sled);
    }
    if let Some(story) = &a.story {
        events.retain(|e| e.story_id() == Some(story.as_str()));
    }
    print_events(&events, a.json)?;
    if !a.json {
        eprintln!(
            "{} events; cursor {}",
            events.len(),
            cursor::format(&log.cursor())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints events as lines or JSON lines.
pub fn print_events(events: &[LoggedEvent], json: bool) -> Result<(), serde_json::Error> {
    for e in events {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!("{e}");
        }
    }
    Ok(())
}
