//! `evlog sync`: copy the ops one store lacks from another.
//!
//! Ops travel in causal order in chunks; each chunk is verified and made durable in
//! the target before the next is sent, so an interrupted sync resumes where it
//! stopped (the target's version vector says what it has). Then heads are compared:
//! a branch hidden behind equal version vectors (an equivocating sled) is walked back
//! and sent too.

use std::process::ExitCode;

use event_log::redact_url;

use crate::exit::{self, CmdResult};
use crate::out;
use crate::out::outln;
use crate::progress::bar;

/// Arguments of `evlog sync`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source store URL (opened read-only, unless --both).
    #[arg(long, env = "EVLOG_FROM", hide_env_values = true)]
    from: String,
    /// Target store URL.
    #[arg(long, env = "EVLOG_TO", hide_env_values = true)]
    to: String,
    /// Ops per chunk.
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
    /// Also copy the target's extra ops back into the source.
    #[arg(long)]
    both: bool,
    /// One JSON object per direction: {"from", "to", "sent", "applied", "refused"}.
    #[arg(long)]
    json: bool,
}

/// What one direction of a sync did, as printed with `--json`.
#[derive(serde::Serialize)]
struct Report<'a> {
    from: &'a str,
    to: &'a str,
    sent: usize,
    applied: usize,
    refused: usize,
}

impl Report<'_> {
    fn print(&self, json: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if json {
            out::json(self)
        } else {
            Ok(outln!(
                "{} -> {}: {} ops sent, {} applied, {} refused",
                self.from,
                self.to,
                self.sent,
                self.applied,
                self.refused
            )?)
        }
    }
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.from.as_str(), self.to.as_str()]
    }
}

/// Runs `evlog sync`.
pub async fn run(a: Args) -> CmdResult {
    // Read-only unless it is written to as well: a mistyped source is an error,
    // never a new empty store.
    let from = if a.both {
        crate::open::open_writer(&a.from).await?
    } else {
        crate::open::open_reader(&a.from).await?
    };
    let to = crate::open::open_writer(&a.to).await?;
    let (shown_from, shown_to) = (redact_url(&a.from), redact_url(&a.to));
    let (sent, applied, rejected) = copy(&from, &to, a.chunk).await?;
    Report {
        from: &shown_from,
        to: &shown_to,
        sent,
        applied,
        refused: rejected,
    }
    .print(a.json)?;
    let mut refused = rejected;
    if a.both {
        let (sent, applied, rejected) = copy(&to, &from, a.chunk).await?;
        Report {
            from: &shown_to,
            to: &shown_from,
            sent,
            applied,
            refused: rejected,
        }
        .print(a.json)?;
        refused += rejected;
    }
    from.close().await?;
    to.close().await?;
    Ok(if refused > 0 {
        exit::code(exit::REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn copy<A: event_log::OpStore, B: event_log::OpStore>(
    from: &event_log::EventLog<A>,
    to: &event_log::EventLog<B>,
    chunk: usize,
) -> Result<(usize, usize, usize), event_log::Error> {
    let pb = bar(None, "syncing");
    let report = event_log::push_chunked(from, to, chunk, |sent, total| {
        pb.set_length(total as u64);
        pb.set_position(sent as u64);
    })
    .await?;
    pb.finish_and_clear();
    for r in report.rejected() {
        if let Err(e) = &r.result {
            eprintln!("refused op {}: {e}", r.id);
        }
    }
    Ok((
        report.deliveries.len(),
        report.applied(),
        report.rejected().len(),
    ))
}
