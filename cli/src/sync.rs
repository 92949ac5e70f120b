//! `evlog sync`: copy the ops one store lacks from another.
//!
//! Ops travel in causal order in chunks; each chunk is verified and made durable in
//! the target before the next is sent, so an interrupted sync resumes where it
//! stopped (the target's version vector says what it has). Then heads are compared:
//! a branch hidden behind equal version vectors (an equivocating sled) is walked back
//! and sent too.

use std::process::ExitCode;

use crate::progress::bar;
use crate::{CmdResult, reader_key};

/// Arguments of `evlog sync`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source store URL.
    #[arg(long)]
    from: String,
    /// Target store URL.
    #[arg(long)]
    to: String,
    /// Ops per chunk.
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
    /// Also copy the target's extra ops back into the source.
    #[arg(long)]
    both: bool,
}

/// Runs `evlog sync`.
pub async fn run(a: Args) -> CmdResult {
    let from = event_log::open(&a.from, reader_key()).await?;
    let to = event_log::open(&a.to, reader_key()).await?;
    let (sent, applied, rejected) = copy(&from, &to, a.chunk).await?;
    println!(
        "{} -> {}: {sent} ops sent, {applied} applied, {rejected} refused",
        a.from, a.to
    );
    let mut refused = rejected;
    if a.both {
        let (sent, applied, rejected) = copy(&to, &from, a.chunk).await?;
        println!(
            "{} -> {}: {sent} ops sent, {applied} applied, {rejected} refused",
            a.to, a.from
        );
        refused += rejected;
    }
    from.close().await?;
    to.close().await?;
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn copy<A: event_log::OpStore, B: event_log::OpStore>(
    from: &event_log::EventLog<A>,
    to: &event_log::EventLog<B>,
    chunk: usize,
) -> Result<(usize, usize, usize), event_log::Error> {
    let missing = from.export_since(&to.version_vector());
    let pb = bar(Some(missing.len() as u64), "syncing");
    let (mut sent, mut applied, mut rejected) = (0, 0, 0);
    for part in missing.chunks(chunk.max(1)) {
        let report = to.merge(part.to_vec()).await?;
        sent += part.len();
        applied += report.applied();
        rejected += report.rejected().len();
        for r in report.rejected() {
            if let Err(e) = &r.result {
                eprintln!("refused op {}: {e}", r.id);
            }
        }
        pb.inc(part.len() as u64);
    }
    pb.finish_and_clear();
    // Heads the target does not know: walk back (equivocating branches).
    let unknown: Vec<_> = from
        .heads()
        .into_iter()
        .filter(|h| !to.contains(h))
        .collect();
    if !unknown.is_empty() {
        let ops = from.ancestry_unknown(&unknown, |id| to.contains(id));
        sent += ops.len();
        let report = to.merge(ops).await?;
        applied += report.applied();
        rejected += report.rejected().len();
    }
    Ok((sent, applied, rejected))
}
