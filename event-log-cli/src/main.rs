//! `evlog`: run the event-log demo, and look inside, verify, sync and benchmark logs.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok; also when the reader of stdout goes away (`evlog show … \| head -1`) |
//! | 1 | any other failure |
//! | 2 | usage error: bad or missing arguments (clap's own code) |
//! | 3 | store unreachable or missing: not found, unavailable, bad or unknown URL |
//! | 4 | damage found: `verify` found damaged rows or missing acknowledged ops |
//! | 5 | refused ops: `sync` sent ops the target refused; `import` read ops it refused or could not place |
//! | 6 | budget missed: `bench` measured a figure outside its budget |
//!
//! Errors are classified by their types (see [`exit`]), never by their messages.
#![warn(missing_docs)]

mod append;
mod bench;
mod cursor;
mod demo;
mod exit;
mod export;
mod import;
mod info;
mod migrate;
mod open;
mod out;
mod progress;
mod scrub;
mod show;
mod sync;
mod tail;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use exit::CmdResult;

/// Operate event logs: durable, replicated, tamper-evident logs of state transitions.
#[derive(Parser, Debug)]
#[command(
    name = "evlog",
    version,
    about,
    propagate_version = true,
    after_help = exit::HELP
)]
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
    /// Append transitions read as JSON lines on stdin, as the sled whose key is given.
    Append(append::Args),
    /// Summarise a store (opened read-only): backend, schema version, durability mode,
    /// sleds, counts, heads, equivocations, damage.
    Info(info::Args),
    /// Write every op of a store as JSON lines, in causal order (resumable; the store
    /// is opened read-only).
    Export(export::Args),
    /// Verify and store the JSON lines of `evlog export` (idempotent: rerun to resume).
    Import(import::Args),
    /// Bring a store's schema to this build's version (creating it if missing);
    /// `--dry-run` prints the steps and changes nothing.
    Migrate(migrate::Args),
    /// Follow a store live, read-only (including other sleds writing to a shared
    /// PostgreSQL).
    Tail(tail::Args),
    /// Check every op's id, signature, links and payload; exit 4 on damage.
    Verify(verify::Args),
    /// Copy the ops one store lacks from another (resumable, idempotent).
    Sync(sync::Args),
    /// Create a sled key file (mode 0600) and print its sled id.
    Keygen {
        /// Where to write the key.
        #[arg(long, default_value = "sled.key")]
        out: PathBuf,
        /// One JSON object: {"sled": ID, "key": PATH}.
        #[arg(long)]
        json: bool,
    },
    /// Measure the performance budgets against baselines measured in the same run;
    /// exit 6 if one is missed.
    Bench(bench::Args),
    /// Print a shell completion script, e.g. `evlog completions bash >
    /// ~/.local/share/bash-completion/completions/evlog`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The store URLs given to the command (their secrets are scrubbed from stderr).
    fn store_urls(&self) -> Vec<&str> {
        match self {
            Command::Demo(a) => a.store_urls(),
            Command::Show(a) => a.store_urls(),
            Command::Append(a) => a.store_urls(),
            Command::Info(a) => a.store_urls(),
            Command::Migrate(a) => a.store_urls(),
            Command::Export(a) => a.store_urls(),
            Command::Import(a) => a.store_urls(),
            Command::Tail(a) => a.store_urls(),
            Command::Verify(a) => a.store_urls(),
            Command::Sync(a) => a.store_urls(),
            Command::Bench(a) => a.store_urls(),
            Command::Keygen { .. } | Command::Completions { .. } => Vec::new(),
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
            return exit::code(exit::FAILURE);
        }
    };
    let result: CmdResult = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Show(a) => rt.block_on(show::run(a)),
        Command::Append(a) => rt.block_on(append::run(a)),
        Command::Info(a) => rt.block_on(info::run(a)),
        Command::Migrate(a) => rt.block_on(migrate::run(a)),
        Command::Export(a) => rt.block_on(export::run(a)),
        Command::Import(a) => rt.block_on(import::run(a)),
        Command::Tail(a) => rt.block_on(tail::run(a)),
        Command::Verify(a) => rt.block_on(verify::run(a)),
        Command::Sync(a) => rt.block_on(sync::run(a)),
        Command::Keygen { out, json } => keygen(&out, json),
        Command::Bench(a) => rt.block_on(bench::run(a)),
        Command::Completions { shell } => completions(shell),
    };
    // Output still buffered: a closed pipe at the very end is a quiet exit too.
    let result = result.and_then(|code| {
        out::flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if out::is_closed(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evlog: error: {}", scrub::scrub(&one_line(e.as_ref())));
            exit::code(exit::classify(e.as_ref()))
        }
    }
}

fn keygen(path: &std::path::Path, json: bool) -> CmdResult {
    let key = event_log::keys::create(path)?;
    let sled = event_log::keys::sled_id(&key).to_string();
    if json {
        out::json(&serde_json::json!({ "sled": sled, "key": path.display().to_string() }))?;
    } else {
        out::outln!("{sled}")?;
    }
    eprintln!("wrote sled key to {} (mode 0600)", path.display());
    Ok(ExitCode::SUCCESS)
}

fn completions(shell: clap_complete::Shell) -> CmdResult {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "evlog", &mut buf);
    out::text(&String::from_utf8_lossy(&buf))?;
    Ok(ExitCode::SUCCESS)
}
