//! `crash-child`: the process the crash tests kill. Opens a store by URL, appends
//! from several tasks and prints `ack <sled> <event_id> <tag>` per acknowledged
//! append; see the `event-log-reliability` crate docs.
//!
//! Exit codes: 0 after `--max-acks` (log closed), 1 an append or open failed, 2 a bad
//! command line, 3 not killed within `--max-secs`. Logs go to stderr (`EVLOG_LOG`,
//! a tracing filter, default `warn`).

use std::process::ExitCode;

use event_log_reliability::child::{self, ChildConfig, ChildError};

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let config = match ChildConfig::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("crash-child: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crash-child: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(child::run(&config, std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ChildError::NotKilled(_)) => {
            eprintln!("crash-child: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("crash-child: {e}");
            ExitCode::FAILURE
        }
    }
}
