//! `evlog show`: print the events of a store.

use std::process::ExitCode;

use std::collections::HashSet;

use event_log::{LoggedEvent, SledId};

use crate::exit::CmdResult;
use crate::out::outln;
use crate::{cursor, out};

/// Arguments of `evlog show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: memory:, sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Only this sled (64 hex chars or a unique prefix).
    #[arg(long)]
    sled: Option<String>,
    /// Only this story's transitions, and the sentinels (gaps, unclean shutdowns) of
    /// the sleds they come from: transitions of the story may be among those lost.
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
    /// Newest first (the order reversed).
    #[arg(long)]
    reverse: bool,
    /// Print only the first N events (after the filters and --reverse).
    #[arg(long, value_name = "N", conflicts_with = "last")]
    limit: Option<usize>,
    /// Print only the last N events (after the filters and --reverse).
    #[arg(long, value_name = "N")]
    last: Option<usize>,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// Runs `evlog show`.
pub async fn run(a: Args) -> CmdResult {
    let log = crate::open::open_reader(&a.store).await?;
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
        keep_story(&mut events, story);
    }
    if a.reverse {
        events.reverse();
    }
    if let Some(n) = a.limit {
        events.truncate(n);
    }
    if let Some(n) = a.last {
        events.drain(..events.len().saturating_sub(n));
    }
    print_events(&events, a.json)?;
    if !a.json {
        eprintln!(
            "{} events; cursor {}",
            events.len(),
            cursor::format(&log.version_vector())
        );
    }
    report_damage(&log);
    Ok(ExitCode::SUCCESS)
}

/// Keeps the transitions of `story`, and the sentinels of the sleds they come from.
fn keep_story(events: &mut Vec<LoggedEvent>, story: &str) {
    let sleds: HashSet<SledId> = events
        .iter()
        .filter(|e| e.story_id() == Some(story))
        .map(|e| e.sled_id)
        .collect();
    events.retain(|e| e.story_id() == Some(story) || (e.is_gap() && sleds.contains(&e.sled_id)));
}

/// Says on stderr how many damaged rows the log kept out of the view and which
/// acknowledged ops the store lacks, if any (`evlog verify` lists them).
pub fn report_damage<S: event_log::OpStore>(log: &event_log::EventLog<S>) {
    let total = log.stats().damaged;
    if total > 0 {
        // Details are kept of the first rows only; all are counted.
        let rows = log.damage();
        let waiting = rows
            .iter()
            .filter(|r| matches!(r.kind, event_log::DamageKind::Unreachable { .. }))
            .count() as u64;
        let waiting = waiting + total.saturating_sub(rows.len() as u64);
        eprintln!(
            "warning: {total} row(s) kept out of the view: {} damaged, {waiting} depending on ops the store does not hold intact; run `evlog verify` to list them",
            total - waiting
        );
    }
    for m in log.missing() {
        eprintln!("warning: the store lacks acknowledged ops: {m}; run `evlog verify`");
    }
}

/// Prints events as lines or JSON lines (a closed stdout is
/// [`out::OutputError::Closed`]).
pub fn print_events(
    events: &[LoggedEvent],
    json: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for e in events {
        if json {
            out::json(e)?;
        } else {
            outln!("{e}")?;
        }
    }
    Ok(())
}
