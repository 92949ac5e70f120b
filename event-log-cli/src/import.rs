//! `evlog import`: the JSON lines of `evlog export` into a store, verified.
//!
//! Every line's `bytes` is decoded and checked like an op from a peer (id
//! recomputed, signature, links, payload) and merged in chunks: each chunk is made
//! durable before the next is read. The readable fields (`id`, `author`, `seq`,
//! `payload`) must match the bytes, so an edited line is refused naming its line
//! number. Importing is idempotent: ops the store already holds are skipped, so an
//! interrupted import is resumed by running it again on the same input.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use event_log::bft::{Limits, RawOp};
use serde::Serialize;

use crate::exit::{self, CmdResult};
use crate::export::Line;
use crate::out;
use crate::out::outln;
use crate::progress::bar;

/// Arguments of `evlog import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Target store URL: sqlite://PATH, redb://PATH, postgres://… (created if missing)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Read from this file instead of stdin.
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Ops per chunk (each chunk is verified and made durable before the next).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    chunk: u64,
    /// One JSON object: {"store", "read", "applied", "duplicates", "waiting", "refused"}.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
struct Report {
    store: String,
    /// Lines read.
    read: usize,
    /// Ops stored and applied.
    applied: usize,
    /// Ops the store already held.
    duplicates: usize,
    /// Ops still waiting for ops the input did not hold (not stored).
    waiting: usize,
    /// Ops refused (bad signature, forged, over the limits…).
    refused: usize,
}

/// Why a line cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not an export line.
    #[error("line {line}: not an evlog export line: {reason}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A readable field does not match the op's bytes (an edited line).
    #[error("line {line}: its {field} does not match the op's signed bytes (was the line edited?)")]
    Mismatch {
        /// 1-based line number.
        line: u64,
        /// The field.
        field: &'static str,
    },
}

/// The op of a line, after checking its readable fields against its bytes. An op
/// whose bytes do not decode is passed on as it is: the merge refuses it with the
/// reason, like any forged op from a peer.
fn parse(number: u64, text: &str, limits: &Limits) -> Result<RawOp, LineError> {
    let malformed = |reason: String| LineError::Malformed {
        line: number,
        reason,
    };
    let line: Line = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let bytes = hex::decode(&line.bytes).map_err(|e| malformed(format!("bytes: {e}")))?;
    let raw = RawOp { id: line.id, bytes };
    if let Ok(op) = raw.decode(limits) {
        let mismatch = |field| LineError::Mismatch {
            line: number,
            field,
        };
        if op.author() != line.author {
            return Err(mismatch("author"));
        }
        if op.seq() != line.seq {
            return Err(mismatch("seq"));
        }
        if String::from_utf8_lossy(op.payload()) != line.payload {
            return Err(mismatch("payload"));
        }
    }
    Ok(raw)
}

/// Runs `evlog import`.
pub async fn run(a: Args) -> CmdResult {
    let input: Box<dyn BufRead> = match &a.input {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let log = crate::open::open_writer(&a.store).await?;
    let limits = log.config().limits;
    let chunk = usize::try_from(a.chunk).unwrap_or(usize::MAX);
    let mut report = Report {
        store: event_log::redact_url(&a.store),
        ..Report::default()
    };
    let pb = bar(None, "importing");
    let mut pending = Vec::with_capacity(chunk.min(100_000));
    let mut failure = None;
    for (i, text) in input.lines().enumerate() {
        let number = i as u64 + 1;
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                failure = Some(format!("reading line {number}: {e}").into());
                break;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match parse(number, &text, &limits) {
            Ok(raw) => pending.push(raw),
            Err(e) => {
                failure = Some(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
                break;
            }
        }
        report.read += 1;
        if pending.len() >= chunk {
            merge(&log, std::mem::take(&mut pending), &mut report).await?;
            pb.set_position(report.read as u64);
        }
    }
    // What was read before a bad line is imported: a rerun resumes past it.
    merge(&log, pending, &mut report).await?;
    pb.finish_and_clear();
    // Each op read ends applied (now, or when a later op released it), already held,
    // refused, or still waiting in the buffer, which is not stored.
    report.waiting = report
        .read
        .saturating_sub(report.applied + report.duplicates + report.refused);
    log.close().await?;
    if let Some(e) = failure {
        eprintln!(
            "evlog import: stopped early; {} op(s) applied before the error",
            report.applied
        );
        return Err(e);
    }
    if a.json {
        out::json(&report)?;
    } else {
        outln!(
            "{}: {} read, {} applied, {} already held, {} waiting for missing ops, {} refused",
            report.store,
            report.read,
            report.applied,
            report.duplicates,
            report.waiting,
            report.refused
        )?;
    }
    Ok(if report.refused > 0 || report.waiting > 0 {
        if report.waiting > 0 {
            eprintln!(
                "evlog import: {} op(s) depend on ops the input lacks and were not stored",
                report.waiting
            );
        }
        exit::code(exit::REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn merge(
    log: &event_log::EventLog<event_log::AnyStore>,
    ops: Vec<RawOp>,
    report: &mut Report,
) -> Result<(), event_log::Error> {
    if ops.is_empty() {
        return Ok(());
    }
    let r = log.merge(ops).await?;
    report.applied += r.applied();
    report.duplicates += r.duplicates();
    for d in r.rejected() {
        if let Err(e) = &d.result {
            eprintln!("refused op {}: {e}", d.id);
        }
        report.refused += 1;
    }
    Ok(())
}
