//! `evlog verify`: check every op of a store, report counts and the first problems.

use std::collections::HashMap;
use std::process::ExitCode;

use event_log::bft::{Replica, SignedOp};
use event_log::{Entry, Limits, OpStore, Outcome, Position, RawOp};
use serde::Serialize;

use crate::CmdResult;
use crate::progress::bar;

/// Arguments of `evlog verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://…
    #[arg(long, env = "EVLOG_STORE")]
    store: String,
    /// How many problems to list.
    #[arg(long, default_value_t = 10)]
    show: usize,
    /// JSON report on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Default)]
struct Report {
    ops: u64,
    valid: u64,
    damaged: u64,
    equivocations: usize,
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct Problem {
    position: u64,
    op: String,
    reason: String,
    detail: String,
}

/// Runs `evlog verify`.
pub async fn run(a: Args) -> CmdResult {
    let store = event_log::open_store(&a.store).await?;
    let total = store.count().await?;
    let pb = bar(Some(total), "verifying");
    let limits = Limits::default();
    let mut replica = Replica::new(limits);
    let mut report = Report::default();
    let mut after = Position::START;
    let note =
        |report: &mut Report, position: Position, op: String, reason: &str, detail: String| {
            report.damaged += 1;
            if report.problems.len() < a.show {
                report.problems.push(Problem {
                    position: position.0,
                    op,
                    reason: reason.to_owned(),
                    detail,
                });
            }
        };
    loop {
        let page = store.load(after, 4096).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        report.ops += page.len() as u64;
        let mut ops: Vec<SignedOp> = Vec::with_capacity(page.len());
        let mut pos_of: HashMap<event_log::OpId, Position> = HashMap::new();
        for (pos, rec) in &page {
            let raw = RawOp {
                id: rec.id,
                bytes: rec.bytes.clone(),
            };
            match raw.decode(&limits) {
                Err(r) => note(
                    &mut report,
                    *pos,
                    rec.id.to_hex(),
                    r.reason(),
                    r.to_string(),
                ),
                Ok(op) if op.author() != rec.author || op.seq() != rec.seq => note(
                    &mut report,
                    *pos,
                    rec.id.to_hex(),
                    "row_mismatch",
                    format!(
                        "row says seq {} of {}, bytes say seq {} of {}",
                        rec.seq,
                        rec.author,
                        op.seq(),
                        op.author()
                    ),
                ),
                Ok(op) => match Entry::from_payload(op.payload()) {
                    Err(e) => note(
                        &mut report,
                        *pos,
                        rec.id.to_hex(),
                        "bad_payload",
                        e.to_string(),
                    ),
                    Ok(_) => {
                        pos_of.insert(op.id(), *pos);
                        ops.push(op);
                    }
                },
            }
        }
        let ingest = replica.ingest(ops);
        for d in &ingest.deliveries {
            let pos = pos_of.get(&d.id).copied().unwrap_or_default();
            match &d.result {
                Ok(Outcome::Applied) => report.valid += 1,
                Ok(Outcome::Duplicate) => note(
                    &mut report,
                    pos,
                    d.id.to_hex(),
                    "duplicate",
                    "op stored twice".into(),
                ),
                Ok(Outcome::Buffered { .. }) => {}
                Err(r) => note(&mut report, pos, d.id.to_hex(), r.reason(), r.to_string()),
            }
        }
        replica.commit(ingest.ready);
        pb.set_position(report.ops);
    }
    pb.finish_and_clear();
    let waiting = replica.buffered() as u64;
    if waiting > 0 {
        report.damaged += waiting;
        report.problems.push(Problem {
            position: 0,
            op: String::new(),
            reason: "missing_deps".into(),
            detail: format!(
                "{waiting} ops depend on ops the store does not hold (or holds damaged)"
            ),
        });
    }
    report.equivocations = replica.equivocations().len();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ops: {} valid, {} damaged, {} equivocations",
            report.ops, report.valid, report.damaged, report.equivocations
        );
        for p in &report.problems {
            println!(
                "  position {} op {}: {} ({})",
                p.position, p.op, p.reason, p.detail
            );
        }
    }
    Ok(if report.damaged > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
