//! `evlog sync`: copy the ops one store lacks from another.
//!
//! Ops travel in causal order in chunks; each chunk is verified and made durable in
//! the target before the next is sent, so an interrupted sync resumes where it
//! stopped (the target's version vector says what it has). Then heads are compared:
//! a branch hidden behind equal version vectors (an equivocating sled) is walked back
//! and sent too.

use std::process::ExitCode;

use crate::CmdResult;
use crate::progress::bar;

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
    let from = crate::open_reader(&a.from).await?;
    let to = crate::open_reader(&a.to).await?;
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
