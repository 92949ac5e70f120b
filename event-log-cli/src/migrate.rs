//! `evlog migrate`: bring a store's schema to the version this build writes,
//! explicitly, with `--dry-run` to see the steps first (as `sqlx migrate` does).
//!
//! A store that does not exist yet is created. A sled opening its store writable
//! migrates it too; this command is for operators who upgrade a shared store before
//! its sleds, or who want to see what an upgrade changes.

use std::process::ExitCode;

use event_log::SchemaStatus;
use serde::Serialize;

use crate::exit::CmdResult;
use crate::out::{self, outln};

/// Arguments of `evlog migrate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (created if missing)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Print what would be done, change nothing (the store is read, never created).
    #[arg(long)]
    dry_run: bool,
    /// One JSON object: {"store", "backend", "from", "to", "applied" | "pending", "dry_run"}.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// What `--json` prints.
#[derive(Serialize)]
struct Report<'a> {
    store: &'a str,
    backend: &'a str,
    /// The version before (`null`: there was no store).
    from: Option<u32>,
    /// The version after (a dry run: the version it would reach).
    to: u32,
    /// The steps applied (a dry run: the steps it would apply).
    steps: &'a [event_log::Migration],
    dry_run: bool,
}

/// Runs `evlog migrate`.
pub async fn run(a: Args) -> CmdResult {
    let shown = event_log::redact_url(&a.store);
    let before = event_log::schema_status(&a.store).await?;
    if a.dry_run {
        if before.is_newer() {
            // A dry run reports it; `migrate` itself refuses it.
            outln!(
                "{shown}: {} schema version {}, newer than this evlog writes ({}): \
                 upgrade evlog; nothing to migrate",
                before.backend,
                before.current.unwrap_or_default(),
                before.target
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        print(
            &shown,
            &before,
            before.target,
            &before.pending,
            true,
            a.json,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let after = event_log::migrate(&a.store).await?;
    print(
        &shown,
        &before,
        after.current.unwrap_or(after.target),
        &before.pending,
        false,
        a.json,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn print(
    shown: &str,
    before: &SchemaStatus,
    to: u32,
    steps: &[event_log::Migration],
    dry_run: bool,
    json: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if json {
        return out::json(&Report {
            store: shown,
            backend: &before.backend,
            from: before.current,
            to,
            steps,
            dry_run,
        });
    }
    let from = match before.current {
        Some(v) => format!("version {v}"),
        None => "no store yet".to_owned(),
    };
    if steps.is_empty() {
        outln!(
            "{shown}: {} schema at version {to}, up to date; nothing to do",
            before.backend
        )?;
        return Ok(());
    }
    let verb = if dry_run { "would apply" } else { "applied" };
    outln!(
        "{shown}: {} schema {from} -> version {to}; {verb} {} step(s):",
        before.backend,
        steps.len()
    )?;
    for m in steps {
        outln!("  {:>3}  {}", m.version, m.description)?;
    }
    if dry_run {
        outln!("(dry run: nothing changed; run without --dry-run to apply)")?;
    }
    Ok(())
}
