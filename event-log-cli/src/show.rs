//! `evlog show`: print the events of a store.

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;

use event_log::{Causal, EventLog, LoggedEvent, OpStore, SledId, VersionVector};

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

/// Events read from the store a page at a time.
const PAGE: usize = 512;

/// Where `show` reads from: one of the log's paged reads, with its cursor.
enum Source {
    /// By (sled, event id), after a cursor (everything from an empty one).
    Since(VersionVector),
    /// One sled, from an event id.
    Sled(SledId, u64),
    /// The causal timeline.
    Timeline(Causal),
}

impl Source {
    /// The next page of events; sets `done` after the last.
    async fn next<S: OpStore>(
        &mut self,
        log: &EventLog<S>,
        done: &mut bool,
    ) -> event_log::Result<Vec<LoggedEvent>> {
        let (events, end) = match self {
            Source::Since(vv) => {
                let page = log.read_since(vv, PAGE).await?;
                *vv = page.next;
                (page.events, page.end)
            }
            Source::Sled(sled, from) => {
                let page = log.read_sled(sled, *from, PAGE).await?;
                *from = page.next;
                (page.events, page.end)
            }
            Source::Timeline(after) => {
                let page = log.read_timeline(after, PAGE).await?;
                *after = page.next;
                (page.events, page.end)
            }
        };
        *done = end;
        Ok(events)
    }
}

/// Which events `show` prints.
#[derive(Clone, Copy)]
enum Select {
    /// The first N, printed as they are read.
    Stream(usize),
    /// The first N, held (to print them reversed).
    Oldest(usize),
    /// The last N, held.
    Newest(usize),
}

/// Runs `evlog show`. Events stream from the store a page at a time, so memory
/// does not grow with the log, except with `--reverse` (without `--limit`), which
/// holds the selection to print it backwards, and `--last N`, which holds N.
pub async fn run(a: Args) -> CmdResult {
    let log = crate::open::open_reader(&a.store).await?;
    let sleds: Vec<_> = log.version_vector().iter().map(|(s, _)| *s).collect();
    let sled = a
        .sled
        .as_deref()
        .map(|s| cursor::resolve(s, &sleds))
        .transpose()?;
    let mut source = match (&a.since, sled) {
        (Some(c), _) => Source::Since(cursor::parse(c, &sleds)?),
        (None, _) if a.timeline => Source::Timeline(Causal::START),
        (None, Some(sled)) => Source::Sled(sled, 0),
        (None, None) => Source::Since(VersionVector::new()),
    };
    // With --story: the sleds whose transitions of the story are shown, whose
    // sentinels are shown too (read from the story's index first).
    let story_sleds = match &a.story {
        Some(story) => Some(story_sleds(&log, story).await?),
        None => None,
    };
    let keep = |e: &LoggedEvent| {
        sled.is_none_or(|s| e.sled_id == s)
            && match (&a.story, &story_sleds) {
                (Some(story), Some(owners)) => {
                    e.story_id() == Some(story.as_str())
                        || (e.is_gap() && owners.contains(&e.sled_id))
                }
                _ => true,
            }
    };
    // Which events are printed, and whether they stream or wait for the end.
    let select = match (a.reverse, a.limit, a.last) {
        (false, None, None) => Select::Stream(usize::MAX),
        (false, Some(n), _) => Select::Stream(n),
        (false, None, Some(n)) => Select::Newest(n),
        // Reversed, the first N are the newest N, the last N the oldest N.
        (true, Some(n), _) => Select::Newest(n),
        (true, None, Some(n)) => Select::Oldest(n),
        (true, None, None) => Select::Oldest(usize::MAX),
    };
    let mut held: VecDeque<LoggedEvent> = VecDeque::new();
    let mut printed = 0usize;
    let mut done = false;
    'read: while !done {
        let page = source.next(&log, &mut done).await?;
        for e in page.into_iter().filter(|e| keep(e)) {
            match select {
                Select::Stream(n) | Select::Oldest(n) if printed + held.len() >= n => {
                    break 'read;
                }
                Select::Stream(_) => {
                    print_events(std::slice::from_ref(&e), a.json)?;
                    printed += 1;
                }
                Select::Oldest(_) => held.push_back(e),
                Select::Newest(n) => {
                    held.push_back(e);
                    if held.len() > n {
                        held.pop_front();
                    }
                }
            }
        }
    }
    let mut events: Vec<LoggedEvent> = held.into();
    if a.reverse {
        events.reverse();
    }
    print_events(&events, a.json)?;
    printed += events.len();
    if !a.json {
        eprintln!(
            "{printed} events; cursor {}",
            cursor::format(&log.version_vector())
        );
    }
    report_damage(&log);
    Ok(ExitCode::SUCCESS)
}

/// Prints the whole timeline of `log`, a page at a time; returns how many events.
pub async fn print_timeline<S: OpStore>(
    log: &EventLog<S>,
    json: bool,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut after = Causal::START;
    let mut printed = 0;
    loop {
        let page = log.read_timeline(&after, PAGE).await?;
        print_events(&page.events, json)?;
        printed += page.events.len();
        after = page.next;
        if page.end {
            return Ok(printed);
        }
    }
}

/// The sleds with a visible transition of `story`.
async fn story_sleds<S: OpStore>(
    log: &EventLog<S>,
    story: &str,
) -> event_log::Result<HashSet<SledId>> {
    let mut owners = HashSet::new();
    let mut after = Causal::START;
    loop {
        let page = log.read_story(story, &after, PAGE).await?;
        owners.extend(page.events.iter().map(|e| e.sled_id));
        after = page.next;
        if page.end {
            return Ok(owners);
        }
    }
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
