//! The kill chain: runs `crash-child` on one store again and again, killing each
//! run with SIGKILL at a random moment, and collects every ack the runs printed.
//!
//! Each run uses the next key of [`ChainConfig::keys`] in turn (two keys: two sleds
//! interleaved on one store, each crashed and restarted). Most runs are killed at a
//! uniformly random delay in `0..=max_delay` after their first ack; one run in
//! [`ChainConfig::early_one_in`] is killed at a random delay of at most
//! `max_delay / 4` after it was spawned, whether or not it acknowledged anything yet
//! (so kills also land while it opens: key creation, replay, checkpoint writes).
//! Only whole lines (ending in a newline) count; a torn last line is dropped, which
//! can only make the check weaker, never fail it wrongly.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ack::{Ack, ParseAckError};
use crate::child::ChildConfig;

/// A kill chain on one store.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// The `crash-child` binary (in tests, `env!("CARGO_BIN_EXE_crash-child")`).
    pub child: PathBuf,
    /// The store URL every run opens.
    pub store: String,
    /// Key files; run `i` uses `keys[i % keys.len()]` (created by the first run
    /// that uses each).
    pub keys: Vec<PathBuf>,
    /// How many runs, each ended by a SIGKILL.
    pub kills: usize,
    /// The seed of the kill moments: a failing chain is replayed by its seed (the
    /// moments, not the scheduling, so a replay is likely but not certain to fail
    /// the same way).
    pub seed: u64,
    /// The longest delay before a kill.
    pub max_delay: Duration,
    /// One run in this many is killed early (see the module docs); 0 never.
    pub early_one_in: u64,
    /// Appending tasks per child.
    pub tasks: usize,
    /// The run number of the first run (run numbers are in the acks' tags, so chains
    /// that share stores, as in the history check, give each other disjoint ranges).
    pub first_run: u64,
    /// How long a run may take to print its first ack before the chain fails (a
    /// hang guard: PostgreSQL waits for a killed session's sled lock, for instance).
    pub first_ack_timeout: Duration,
}

impl ChainConfig {
    /// A chain with the defaults: 20 kills, kills up to 250 ms after the first ack,
    /// one in 5 early, 4 tasks, 60 s for a first ack.
    pub fn new(child: impl Into<PathBuf>, store: impl Into<String>, keys: Vec<PathBuf>) -> Self {
        ChainConfig {
            child: child.into(),
            store: store.into(),
            keys,
            kills: 20,
            seed: 0,
            max_delay: Duration::from_millis(250),
            early_one_in: 5,
            tasks: 4,
            first_run: 0,
            first_ack_timeout: Duration::from_secs(60),
        }
    }
}

/// What a chain collected.
#[derive(Debug, Clone, Default)]
pub struct ChainOutcome {
    /// Runs spawned and killed.
    pub runs: usize,
    /// Runs killed early (see [`ChainConfig::early_one_in`]).
    pub early: usize,
    /// Every ack printed, in the order read.
    pub acks: Vec<Ack>,
    /// Torn last lines dropped (a kill during a write).
    pub torn: usize,
}

/// Why a chain stopped before its last kill.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The configuration cannot run.
    #[error("bad chain configuration: {0}")]
    Config(&'static str),
    /// The child could not be started or killed.
    #[error("run {run}: {what}: {source}")]
    Io {
        /// The run.
        run: usize,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The child ended on its own before it was killed (an error it printed).
    #[error("run {run}: the child exited before it was killed ({status}); its stderr:\n{stderr}")]
    Exited {
        /// The run.
        run: usize,
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The child printed no ack within [`ChainConfig::first_ack_timeout`].
    #[error("run {run}: no ack within {timeout:?}; its stderr:\n{stderr}")]
    NoAck {
        /// The run.
        run: usize,
        /// The timeout.
        timeout: Duration,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The child printed a whole line that is not an ack.
    #[error("run {run}: {source}")]
    BadLine {
        /// The run.
        run: usize,
        /// The line.
        source: ParseAckError,
    },
}

/// A small deterministic generator (SplitMix64) for the kill moments.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration in `0..=max`, to the microsecond.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.next_u64() % micros.saturating_add(1))
    }
}

/// Kills the child on drop, so a failing harness leaves no process behind.
struct Running {
    child: Child,
    run: usize,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Already dead (killed, or exited) is fine: kill only reports it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line read from the child's stdout, or the end of it.
enum Line {
    Whole(String),
    Torn,
}

/// Reads whole lines from the child's stdout until it closes.
fn read_lines(out: impl Read + Send + 'static, tx: mpsc::Sender<Line>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match out.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.ends_with(b"\n") => {
                    buf.pop();
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(Line::Whole(line)).is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    let _ = tx.send(Line::Torn);
                    break;
                }
            }
        }
    })
}

/// Reads the child's stderr, keeping its last 64 KiB.
fn read_stderr(err: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = BufReader::new(err).read_to_end(&mut all);
        let keep = all.len().saturating_sub(64 * 1024);
        String::from_utf8_lossy(&all[keep..]).into_owned()
    })
}

/// Runs the chain (see the module docs). Returns at the first run that fails; a
/// chain that returns `Ok` killed every run with SIGKILL.
pub fn run_chain(config: &ChainConfig) -> Result<ChainOutcome, ChainError> {
    if config.keys.is_empty() {
        return Err(ChainError::Config("no key files"));
    }
    if config.kills == 0 {
        return Err(ChainError::Config("kills must be at least 1"));
    }
    let mut rng = Rng::new(config.seed);
    let mut outcome = ChainOutcome::default();
    for run in 0..config.kills {
        let early = config.early_one_in > 0 && rng.next_u64().is_multiple_of(config.early_one_in);
        let delay = if early {
            rng.up_to(config.max_delay / 4)
        } else {
            rng.up_to(config.max_delay)
        };
        one_run(config, run, early, delay, &mut outcome)?;
        outcome.runs += 1;
        outcome.early += usize::from(early);
    }
    Ok(outcome)
}

/// Spawns run `run`, kills it after `delay` (from its spawn if `early`, else from its
/// first ack) and adds its acks to `outcome`.
fn one_run(
    config: &ChainConfig,
    run: usize,
    early: bool,
    delay: Duration,
    outcome: &mut ChainOutcome,
) -> Result<(), ChainError> {
    let io = |what| move |source| ChainError::Io { run, what, source };
    let mut child_config = ChildConfig::new(
        config.store.clone(),
        config.keys[run % config.keys.len()].clone(),
        config.first_run + run as u64,
    );
    child_config.tasks = config.tasks;
    let mut child = Command::new(&config.child)
        .args(child_config.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("spawning the child"))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut running = Running { child, run };
    let (tx, rx) = mpsc::channel();
    let reader = stdout.map(|out| read_lines(out, tx));
    let errors = stderr.map(read_stderr);
    let stderr_text =
        |errors: Option<JoinHandle<String>>| errors.and_then(|h| h.join().ok()).unwrap_or_default();
    let mut lines = Vec::new();
    if early {
        std::thread::sleep(delay);
    } else {
        match rx.recv_timeout(config.first_ack_timeout) {
            Ok(line) => lines.push(line),
            Err(_) => {
                // Ended on its own (its stdout closed) or hung: either way, say why.
                let _ = running.child.kill();
                let status = running.child.wait().map_err(io("waiting for the child"))?;
                let stderr = stderr_text(errors);
                return Err(if status.code().is_some() {
                    ChainError::Exited {
                        run,
                        status,
                        stderr,
                    }
                } else {
                    ChainError::NoAck {
                        run,
                        timeout: config.first_ack_timeout,
                        stderr,
                    }
                });
            }
        }
        std::thread::sleep(delay);
    }
    if let Some(status) = running.child.try_wait().map_err(io("polling the child"))? {
        return Err(ChainError::Exited {
            run,
            status,
            stderr: stderr_text(errors),
        });
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no close runs.
    running.child.kill().map_err(io("killing the child"))?;
    running.child.wait().map_err(io("waiting for the child"))?;
    tracing::debug!(run = running.run, early, ?delay, "killed");
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    let _ = stderr_text(errors);
    lines.extend(rx.try_iter());
    for line in lines {
        match line {
            Line::Whole(text) => outcome.acks.push(
                text.parse()
                    .map_err(|source| ChainError::BadLine { run, source })?,
            ),
            Line::Torn => outcome.torn += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_in_range_and_follow_the_seed() {
        let max = Duration::from_millis(250);
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..10_000 {
            let d = a.up_to(max);
            assert_eq!(d, b.up_to(max));
            assert!(d <= max);
            seen_low |= d < max / 10;
            seen_high |= d > max * 9 / 10;
        }
        assert!(seen_low && seen_high, "delays cover the range");
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
