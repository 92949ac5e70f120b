//! `evlog append`: append transitions read as JSON lines on stdin, as one sled (like
//! kcat's producer mode).
//!
//! Each line is one transition:
//!
//! ```json
//! {"story_id":"S-1","from_stage":"coding","to_stage":"review","pipeline_event":"PrOpened",
//!  "at":"2026-12-01T10:00:00Z","idempotency_key":"S-1/42","metadata":{"actor":"alice"}}
//! ```
//!
//! `at` defaults to now; `idempotency_key` and `metadata` are optional. Lines are
//! appended as they arrive, those that arrived together in one batch (one group
//! commit, at most `--batch`); an append that
//! returned is durable. A line that does not parse stops the command, naming the
//! line; every line before it is stored (stderr says how many), so a rerun of the
//! same input with idempotency keys stores nothing twice.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use event_log::{Entry, EventLogConfig, FileWatermark, SharedWatermark, Transition};
use serde::Deserialize;

use crate::exit::CmdResult;
use crate::out::{self, outln};

/// Arguments of `evlog append`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (created if missing).
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// The sled's key file (PKCS#8 PEM; `evlog keygen` makes one). Its watermark is
    /// kept beside it (`<key>.mark`).
    #[arg(long)]
    key: PathBuf,
    /// Most transitions per append (one group commit).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65536))]
    batch: u64,
    /// Print each stored event as one JSON object per line (default: a summary).
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    story_id: String,
    from_stage: String,
    to_stage: String,
    pipeline_event: String,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl Line {
    fn into_transition(self) -> Transition {
        let mut t = Transition::new(
            self.story_id,
            self.from_stage,
            self.to_stage,
            self.pipeline_event,
            self.at.unwrap_or_else(Utc::now),
        );
        t.idempotency_key = self.idempotency_key;
        t.metadata = self.metadata;
        t
    }
}

/// A line of the input that is not a transition.
#[derive(Debug, thiserror::Error)]
#[error(
    "stdin line {line}: not a transition ({source}); {stored} transition(s) before it were stored"
)]
struct BadLine {
    line: u64,
    stored: u64,
    #[source]
    source: serde_json::Error,
}

/// Runs `evlog append`.
pub async fn run(a: Args) -> CmdResult {
    let key = event_log::keys::load(&a.key)?;
    let config = EventLogConfig::default().with_watermark(Some(SharedWatermark::new(
        FileWatermark::beside_key(&a.key)?,
    )));
    let log = event_log::open_with(&a.store, key, config).await?;
    let result = append_lines(&log, &a).await;
    let closed = log.close().await;
    let (stored, first) = result?;
    closed?;
    if !a.json {
        match first {
            Some(first) => outln!(
                "appended {stored} transition(s) as sled {}: events {first}..={}",
                log.sled_id(),
                first + stored - 1
            )?,
            None => outln!("appended 0 transitions (no input)")?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends stdin's lines in batches; returns how many were stored and the first
/// event id.
///
/// A thread reads stdin; each append takes the lines that have arrived (at most
/// `--batch`) without waiting for more, so an interactive producer's line is
/// stored as soon as it is typed, and a fast one's lines share group commits.
async fn append_lines(
    log: &event_log::EventLog<event_log::AnyStore>,
    a: &Args,
) -> Result<(u64, Option<u64>), Box<dyn std::error::Error + Send + Sync>> {
    let batch_size = usize::try_from(a.batch).unwrap_or(usize::MAX);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(batch_size);
    std::thread::Builder::new()
        .name("evlog-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let failed = line.is_err();
                if tx.blocking_send(line).is_err() || failed {
                    break;
                }
            }
        })?;
    let (mut stored, mut first, mut number) = (0u64, None, 0u64);
    loop {
        let Some(next) = rx.recv().await else {
            return Ok((stored, first));
        };
        let mut batch: Vec<Entry> = Vec::new();
        let mut text = Some(next);
        while let Some(line) = text.take() {
            let line = line?;
            number += 1;
            if !line.trim().is_empty() {
                match serde_json::from_str::<Line>(&line) {
                    Ok(l) => batch.push(Entry::Transition(l.into_transition())),
                    Err(source) => {
                        // Every line before the bad one is stored, then it is named.
                        stored +=
                            append_batch(log, a, std::mem::take(&mut batch), &mut first).await?;
                        return Err(BadLine {
                            line: number,
                            stored,
                            source,
                        }
                        .into());
                    }
                }
            }
            if batch.len() < batch_size {
                text = rx.try_recv().ok();
            }
        }
        stored += append_batch(log, a, batch, &mut first).await?;
    }
}

/// Appends one batch (one group commit) and prints its events with `--json`;
/// returns how many were stored.
async fn append_batch(
    log: &event_log::EventLog<event_log::AnyStore>,
    a: &Args,
    batch: Vec<Entry>,
    first: &mut Option<u64>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    if batch.is_empty() {
        return Ok(0);
    }
    let events = log.append_all(batch).await?;
    for e in &events {
        first.get_or_insert(e.event_id);
        if a.json {
            out::json(e)?;
        }
    }
    out::flush()?;
    Ok(events.len() as u64)
}
