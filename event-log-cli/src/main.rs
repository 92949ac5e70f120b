//! `evlog`: run the event-log demo, and look inside, verify, sync and benchmark logs.
#![warn(missing_docs)]

mod bench;
mod cursor;
mod demo;
mod progress;
mod scrub;
mod show;
mod sync;
mod tail;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate event logs: durable, replicated, tamper-evident logs of state transitions.
#[derive(Parser, Debug)]
#[command(name = "evlog", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the main job: a sled publishes transitions through a small bus (so a lag
    /// happens and is recorded as a gap), restarts, and prints its timeline.
    Demo(demo::Args),
    /// Print the events of a store (opened read-only).
    Show(show::Args),
    /// Follow a store live, read-only (including other sleds writing to a shared
    /// PostgreSQL).
    Tail(tail::Args),
    /// Check every op's id, signature, links and payload; exit 1 on damage.
    Verify(verify::Args),
    /// Copy the ops one store lacks from another (resumable, idempotent).
    Sync(sync::Args),
    /// Create a sled key file (mode 0600) and print its sled id.
    Keygen {
        /// Where to write the key.
        #[arg(long, default_value = "sled.key")]
        out: PathBuf,
    },
    /// Measure the performance budgets against baselines measured in the same run.
    Bench(bench::Args),
}

impl Command {
    /// The store URLs given to the command (their secrets are scrubbed from stderr).
    fn store_urls(&self) -> Vec<&str> {
        match self {
            Command::Demo(a) => a.store_urls(),
            Command::Show(a) => a.store_urls(),
            Command::Tail(a) => a.store_urls(),
            Command::Verify(a) => a.store_urls(),
            Command::Sync(a) => a.store_urls(),
            Command::Bench(a) => a.store_urls(),
            Command::Keygen { .. } => Vec::new(),
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(scrub::Stderr::default)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// An error and its causes on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// What a command returns: an exit code, or an error printed on one line.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    scrub::remember(cli.command.store_urls());
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("evlog: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: CmdResult = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Show(a) => rt.block_on(show::run(a)),
        Command::Tail(a) => rt.block_on(tail::run(a)),
        Command::Verify(a) => rt.block_on(verify::run(a)),
        Command::Sync(a) => rt.block_on(sync::run(a)),
        Command::Keygen { out } => keygen(&out),
        Command::Bench(a) => rt.block_on(bench::run(a)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("evlog: error: {}", scrub::scrub(&one_line(e.as_ref())));
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &std::path::Path) -> CmdResult {
    let key = event_log::keys::create(out)?;
    println!("{}", event_log::keys::sled_id(&key));
    eprintln!("wrote sled key to {} (mode 0600)", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Opens a log for reading, as a tool that is not one of its sleds: the store
/// read-only (never created, migrated or written; a missing one is an error naming
/// it) and the log read-only with a throwaway key.
pub async fn open_reader(
    url: &str,
) -> Result<event_log::EventLog<event_log::AnyStore>, event_log::OpenError> {
    event_log::open_read_only(url).await
}

/// Opens a log that a tool writes ops of others into (the target of `sync`): a
/// throwaway key that never appends, and no replay checkpoint written.
pub async fn open_writer(
    url: &str,
) -> Result<event_log::EventLog<event_log::AnyStore>, event_log::OpenError> {
    let config = event_log::EventLogConfig {
        save_checkpoints: false,
        ..Default::default()
    };
    event_log::open_with(url, event_log::keys::generate(), config).await
}
