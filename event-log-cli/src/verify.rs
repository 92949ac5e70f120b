//! `evlog verify`: check every op of a store and the store against the signed
//! frontiers it holds; report counts and the problems; exit 4 on any.
//!
//! The checks are core's [`event_log::verify`]: ids, readable columns against the
//! signed bytes, signatures, causal links, payloads, and acknowledged ops that the
//! store no longer holds (a truncated tail). The store is opened read-only.

use std::process::ExitCode;

use event_log::{EventLogConfig, VerifyReport};
use serde::Serialize;

use crate::exit::{self, CmdResult};
use crate::out::outln;
use crate::progress::bar;

/// Arguments of `evlog verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// How many damaged rows to list.
    #[arg(long, default_value_t = 10)]
    show: usize,
    /// JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// The report as printed with `--json`.
#[derive(Serialize)]
struct Json {
    ops: u64,
    valid: u64,
    damaged: u64,
    equivocations: usize,
    problems: Vec<Problem>,
    missing: Vec<Missing>,
    forks: Vec<Fork>,
}

#[derive(Serialize)]
struct Problem {
    position: u64,
    op: String,
    sled: String,
    seq: u64,
    reason: String,
    detail: String,
}

#[derive(Serialize)]
struct Missing {
    sled: String,
    held: u64,
    acknowledged: u64,
}

#[derive(Serialize)]
struct Fork {
    sled: String,
    seq: u64,
    ops: Vec<String>,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// Runs `evlog verify`.
pub async fn run(a: Args) -> CmdResult {
    let store = event_log::open_store_read_only(&a.store).await?;
    let total = store.count().await?;
    let pb = bar(Some(total), "verifying");
    let config = EventLogConfig::default()
        .with_read_only(true)
        .with_save_checkpoints(false);
    let report = event_log::verify(&store, &config, &[], |rows| pb.set_position(rows)).await;
    pb.finish_and_clear();
    let mut report = report?;
    store.close().await?;
    // In store order (core lists a row that waited for another when it gave up).
    report.damage.sort_by_key(|d| (d.position, d.id));
    if a.json {
        outln!("{}", serde_json::to_string(&json(&report, a.show))?)?;
    } else {
        print_text(&report, a.show)?;
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        exit::code(exit::DAMAGE)
    })
}

fn json(r: &VerifyReport, show: usize) -> Json {
    Json {
        ops: r.rows,
        valid: r.valid,
        damaged: r.damaged,
        equivocations: r.equivocations.len(),
        problems: r
            .damage
            .iter()
            .take(show)
            .map(|d| Problem {
                position: d.position.0,
                op: d.id.to_hex(),
                sled: d.author.to_string(),
                seq: d.seq,
                reason: d.kind.reason().to_owned(),
                detail: d.kind.to_string(),
            })
            .collect(),
        missing: r
            .missing
            .iter()
            .map(|m| Missing {
                sled: m.sled.to_string(),
                held: m.held,
                acknowledged: m.acknowledged,
            })
            .collect(),
        forks: r
            .equivocations
            .iter()
            .map(|e| Fork {
                sled: e.author.to_string(),
                seq: e.seq,
                ops: e.ops.iter().map(|o| o.to_hex()).collect(),
            })
            .collect(),
    }
}

fn print_text(r: &VerifyReport, show: usize) -> Result<(), crate::out::OutputError> {
    outln!(
        "{} ops: {} valid, {} damaged, {} equivocations",
        r.rows,
        r.valid,
        r.damaged,
        r.equivocations.len()
    )?;
    for d in r.damage.iter().take(show) {
        outln!(
            "  position {} op {} (sled {} seq {}): {} ({})",
            d.position.0,
            d.id.to_hex(),
            d.author,
            d.seq,
            d.kind.reason(),
            d.kind
        )?;
    }
    let listed = r.damage.len().min(show) as u64;
    if r.damaged > listed {
        outln!(
            "  … and {} more damaged rows (--show N lists more)",
            r.damaged - listed
        )?;
    }
    for m in &r.missing {
        outln!(
            "  missing ops of sled {}: the store holds its ops up to seq {}, but a signed checkpoint acknowledges ops up to seq {}",
            m.sled,
            m.held,
            m.acknowledged
        )?;
    }
    for e in &r.equivocations {
        let ops: Vec<String> = e.ops.iter().map(|o| o.to_hex()).collect();
        outln!(
            "  equivocation: sled {} signed {} ops at seq {}: {}",
            e.author,
            e.ops.len(),
            e.seq,
            ops.join(", ")
        )?;
    }
    Ok(())
}
