//! `evlog tail`: follow a store live.
//!
//! The store is read into an in-memory view (opened read-only) and every op other
//! writers commit (other sleds on a shared PostgreSQL, another process on a SQLite
//! file) is validated and printed once, in arrival order, optionally filtered by
//! sled and story and resumed from a cursor.
//!
//! On PostgreSQL the view follows the store's LISTEN/NOTIFY wake-ups (the
//! `event-log-postgres` follower): a commit is printed about a millisecond later,
//! and a poll every `--interval` covers a lost notification. Other stores are polled
//! every `--interval`; a missed poll loses nothing, the next catches up by version
//! vector.
//!
//! A redb file is open in one process at a time (redb locks it), so `tail` cannot
//! follow a redb store while its sled runs: it says the file is locked by the
//! process that has it open. When no process has it open, `tail` prints what it holds
//! and stops instead of keeping the file, which would lock its sled out.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_log::{EventObserver, LoggedEvent, VersionVector};
use tokio::sync::Notify;

use crate::cursor;
use crate::exit::CmdResult;
use crate::show::print_events;

/// Arguments of `evlog tail`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Print the events already stored before following.
    #[arg(long, conflicts_with = "since")]
    from_start: bool,
    /// Start after this cursor: SLED=N[,SLED=N…] (N = next event id wanted), as
    /// `evlog show --json` and `tail --json` print it.
    #[arg(long)]
    since: Option<String>,
    /// Only this sled (64 hex chars or a unique prefix).
    #[arg(long)]
    sled: Option<String>,
    /// Only this story, and every gap sentinel (a gap may hide some of its
    /// transitions).
    #[arg(long)]
    story: Option<String>,
    /// Poll interval in milliseconds (on PostgreSQL: the longest a lost notification
    /// delays an event).
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

/// Wakes the printing loop when the view gains events.
struct Wake(Arc<Notify>);

impl EventObserver for Wake {
    fn on_events(&self, _: &[LoggedEvent]) {
        self.0.notify_one();
    }
}

/// `tail` on a redb file another process has open.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tail {url}: `evlog tail` cannot follow a redb store while its sled has it open \
     (redb lets one process open a file at a time); read it with `evlog show` once the sled \
     stops, or follow a SQLite or PostgreSQL store live"
)]
struct RedbLocked {
    url: String,
    #[source]
    source: event_log::OpenError,
}

/// True for redb URLs.
fn is_redb(url: &str) -> bool {
    url.starts_with("redb:")
}

/// True for the URLs the PostgreSQL follower serves.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Runs `evlog tail`.
pub async fn run(a: Args) -> CmdResult {
    let redb = is_redb(&a.store);
    let log = match crate::open::open_reader(&a.store).await {
        Ok(log) => Arc::new(log),
        Err(source @ event_log::OpenError::Store(event_log::StoreError::Unavailable { .. }))
            if redb =>
        {
            return Err(RedbLocked {
                url: event_log::redact_url(&a.store),
                source,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let woken = Arc::new(Notify::new());
    log.add_observer(Arc::new(Wake(woken.clone())));
    let interval = Duration::from_millis(a.interval.max(10));
    let follower = if is_postgres(&a.store) {
        use event_log::postgres::{
            FollowerConfig, PostgresConfig, PostgresStore, spawn_follower_on,
        };
        let config = PostgresConfig::default().with_read_only(true);
        let listen = PostgresStore::open(&a.store, config).await?;
        let config = FollowerConfig {
            poll_interval: interval,
            ..FollowerConfig::default()
        };
        Some(spawn_follower_on(log.clone(), listen, config))
    } else {
        None
    };
    let known: Vec<_> = log.version_vector().iter().map(|(s, _)| *s).collect();
    let sled = a
        .sled
        .as_deref()
        .map(|s| cursor::resolve(s, &known))
        .transpose()?;
    let mut cursor: VersionVector = match (&a.since, a.from_start) {
        (Some(c), _) => cursor::parse(c, &known)?,
        (None, true) => VersionVector::default(),
        (None, false) => log.version_vector(),
    };
    if !redb {
        eprintln!(
            "evlog tail: following {} ({}); Ctrl-C stops",
            event_log::redact_url(&a.store),
            if follower.is_some() {
                "woken by LISTEN/NOTIFY"
            } else {
                "polling"
            }
        );
    }
    let deadline = if redb {
        eprintln!(
            "evlog tail: no process has {} open; printing what it holds and stopping, \
             rather than keep the file locked against its sled",
            event_log::redact_url(&a.store)
        );
        Some(tokio::time::Instant::now())
    } else {
        a.for_secs
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s))
    };
    let result = follow(
        &log,
        &a,
        sled,
        &mut cursor,
        &woken,
        interval,
        deadline,
        follower.is_some(),
    )
    .await;
    if let Some(f) = follower {
        f.shutdown().await;
    }
    result
}

/// Prints what the view gains until the deadline or Ctrl-C.
#[allow(clippy::too_many_arguments)]
async fn follow(
    log: &event_log::EventLog<event_log::AnyStore>,
    a: &Args,
    sled: Option<event_log::SledId>,
    cursor: &mut VersionVector,
    woken: &Notify,
    interval: Duration,
    deadline: Option<tokio::time::Instant>,
    followed: bool,
) -> CmdResult {
    let mut tick = tokio::time::interval(interval);
    loop {
        // What the view gained, read from the store a page at a time.
        loop {
            let page = log.read_since(cursor, 512).await?;
            let fresh: Vec<LoggedEvent> = page
                .events
                .into_iter()
                .filter(|e| sled.is_none_or(|s| e.sled_id == s))
                .filter(|e| {
                    a.story
                        .as_deref()
                        .is_none_or(|story| e.entry.story_id().is_none_or(|id| id == story))
                })
                .collect();
            print_events(&fresh, a.json)?;
            *cursor = page.next;
            if page.end {
                break;
            }
        }
        crate::out::flush()?;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        let until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + interval * 1000);
        tokio::select! {
            _ = woken.notified() => {}
            _ = tick.tick(), if !followed => log.catch_up().await.map(|_| ())?,
            _ = tokio::time::sleep_until(until) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
