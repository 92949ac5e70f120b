//! `evlog info`: what a store holds, at a glance: its sleds (highest seq, events in
//! the view, whether excluded), the heads, equivocations, damaged rows and ops a
//! signed frontier records but the store lost; and the store itself: backend,
//! schema version, durability mode. Read-only.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Serialize;

use crate::exit::CmdResult;
use crate::out::{self, outln};

/// Arguments of `evlog info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// One sled as the store shows it.
#[derive(Serialize)]
struct Sled {
    sled: String,
    /// Highest seq applied.
    seq: u64,
    /// Its events in the view (entries of seqs it equivocated on or after are not).
    events: u64,
    /// The first seq it equivocated on: its entries from there on are out of the view.
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded_from: Option<u64>,
}

/// The whole report.
#[derive(Serialize)]
struct Info {
    store: String,
    /// The backend, its schema version and durability mode, as the store says.
    #[serde(flatten)]
    described: event_log::StoreDescription,
    ops: u64,
    events: u64,
    sleds: Vec<Sled>,
    heads: Vec<String>,
    equivocations: Vec<Equivocation>,
    damaged_rows: usize,
    missing: Vec<Missing>,
}

#[derive(Serialize)]
struct Equivocation {
    sled: String,
    seq: u64,
    ops: Vec<String>,
}

#[derive(Serialize)]
struct Missing {
    sled: String,
    held: u64,
    acknowledged: u64,
}

/// Runs `evlog info`.
pub async fn run(a: Args) -> CmdResult {
    let log = crate::open::open_reader(&a.store).await?;
    let ops = event_log::OpStore::count(log.store()).await?;
    let per_sled: BTreeMap<String, u64> = log
        .visible_per_sled()
        .into_iter()
        .map(|(sled, n)| (sled.to_string(), n))
        .collect();
    let equivocations: Vec<Equivocation> = log
        .equivocations()
        .into_iter()
        .map(|q| Equivocation {
            sled: q.author.to_string(),
            seq: q.seq,
            ops: q.ops.iter().map(ToString::to_string).collect(),
        })
        .collect();
    let sleds = log
        .version_vector()
        .iter()
        .map(|(author, seq)| {
            let sled = author.to_string();
            Sled {
                events: per_sled.get(&sled).copied().unwrap_or(0),
                excluded_from: equivocations
                    .iter()
                    .filter(|q| q.sled == sled)
                    .map(|q| q.seq)
                    .min(),
                seq: *seq,
                sled,
            }
        })
        .collect();
    let info = Info {
        store: event_log::redact_url(&a.store),
        described: event_log::OpStore::describe(log.store()),
        ops,
        events: per_sled.values().sum(),
        sleds,
        heads: log.heads().iter().map(ToString::to_string).collect(),
        equivocations,
        damaged_rows: log.damage().len(),
        missing: log
            .missing()
            .into_iter()
            .map(|m| Missing {
                sled: m.sled.to_string(),
                held: m.held,
                acknowledged: m.acknowledged,
            })
            .collect(),
    };
    log.close().await?;
    if a.json {
        out::json(&info)?;
    } else {
        print_text(&info)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(i: &Info) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let d = &i.described;
    outln!("store:         {}", i.store)?;
    outln!("backend:       {}", d.backend)?;
    match d.schema_version {
        Some(v) => outln!("schema:        version {v}")?,
        None => outln!("schema:        (none)")?,
    }
    outln!("durability:    {}", d.durability)?;
    outln!("ops stored:    {}", i.ops)?;
    outln!("events:        {} in the view", i.events)?;
    outln!("sleds:         {}", i.sleds.len())?;
    for s in &i.sleds {
        let excluded = s
            .excluded_from
            .map(|q| format!(", EXCLUDED from seq {q} (equivocated)"))
            .unwrap_or_default();
        outln!(
            "  {}  seq {}, {} event(s){excluded}",
            s.sled,
            s.seq,
            s.events
        )?;
    }
    outln!("heads:         {}", i.heads.len())?;
    for h in &i.heads {
        outln!("  {h}")?;
    }
    outln!("equivocations: {}", i.equivocations.len())?;
    for q in &i.equivocations {
        outln!("  sled {} seq {}: {}", q.sled, q.seq, q.ops.join(", "))?;
    }
    outln!(
        "damaged rows:  {} (evlog verify names them)",
        i.damaged_rows
    )?;
    for m in &i.missing {
        outln!(
            "  MISSING: sled {} signed up to seq {}, the store holds up to {}",
            m.sled,
            m.acknowledged,
            m.held
        )?;
    }
    Ok(())
}
