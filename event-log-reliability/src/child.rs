//! The crash child: opens a store by URL, appends transitions from several concurrent
//! tasks and prints one [`Ack`] line per acknowledged append, flushed before the next
//! append of that task starts. `crash-child` is this module behind a command line;
//! [`run`] is usable in-process too (the unit tests run it on a temporary store).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_log::{Entry, EventLog, LoggedEvent, OpStore, Transition};

use crate::ack::Ack;

/// The command line of `crash-child`.
pub const USAGE: &str = "usage: crash-child --store URL --key PATH --run N \
[--tasks N] [--max-secs N] [--max-acks N]";

/// What one child run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildConfig {
    /// The store URL (`sqlite://…`, `redb://…`, `postgres://…`).
    pub store: String,
    /// The sled's key file, created if missing (`event_log::keys::load_or_create`).
    pub key: PathBuf,
    /// The run number, part of every tag, so tags are unique across a chain.
    pub run: u64,
    /// Concurrent appending tasks (default 4). Every fourth task appends batches of
    /// three with `append_all`; the others append one transition at a time.
    pub tasks: usize,
    /// Stop with [`ChildError::NotKilled`] after this long: a guard against a
    /// harness that forgot its child (default 120 s).
    pub max_secs: u64,
    /// Stop cleanly (closing the log) after at least this many acks; `None` (the
    /// default) appends until killed.
    pub max_acks: Option<u64>,
}

impl ChildConfig {
    /// A run with the defaults for everything but the store, key and run number.
    pub fn new(store: impl Into<String>, key: impl Into<PathBuf>, run: u64) -> Self {
        ChildConfig {
            store: store.into(),
            key: key.into(),
            run,
            tasks: 4,
            max_secs: 120,
            max_acks: None,
        }
    }

    /// Reads `--store URL --key PATH --run N [--tasks N] [--max-secs N] [--max-acks N]`
    /// (the arguments after the program name).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, ArgsError> {
        let mut args = args.into_iter();
        let (mut store, mut key, mut run) = (None, None, None);
        let mut config = ChildConfig::new(String::new(), PathBuf::new(), 0);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(ArgsError::MissingValue(flag.clone()));
            let number = |flag: &str, v: String| {
                v.parse::<u64>().map_err(|_| ArgsError::NotANumber {
                    flag: flag.to_owned(),
                    value: v,
                })
            };
            match flag.as_str() {
                "--store" => store = Some(value()?),
                "--key" => key = Some(PathBuf::from(value()?)),
                "--run" => run = Some(number(&flag, value()?)?),
                "--tasks" => {
                    let n = number(&flag, value()?)?;
                    config.tasks = usize::try_from(n)
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or(ArgsError::Zero("--tasks"))?;
                }
                "--max-secs" => config.max_secs = number(&flag, value()?)?,
                "--max-acks" => config.max_acks = Some(number(&flag, value()?)?),
                _ => return Err(ArgsError::Unknown(flag)),
            }
        }
        config.store = store.ok_or(ArgsError::Missing("--store"))?;
        config.key = key.ok_or(ArgsError::Missing("--key"))?;
        config.run = run.ok_or(ArgsError::Missing("--run"))?;
        Ok(config)
    }

    /// The arguments [`ChildConfig::from_args`] reads back into this configuration.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--store".to_owned(),
            self.store.clone(),
            "--key".to_owned(),
            self.key.display().to_string(),
            "--run".to_owned(),
            self.run.to_string(),
            "--tasks".to_owned(),
            self.tasks.to_string(),
            "--max-secs".to_owned(),
            self.max_secs.to_string(),
        ];
        if let Some(n) = self.max_acks {
            args.extend(["--max-acks".to_owned(), n.to_string()]);
        }
        args
    }
}

/// A command line `crash-child` cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A required flag is absent.
    #[error("{0} is required; {USAGE}")]
    Missing(&'static str),
    /// A flag is last, without its value.
    #[error("{0} needs a value; {USAGE}")]
    MissingValue(String),
    /// A numeric flag's value is not a number.
    #[error("{flag} expects a number, got {value:?}")]
    NotANumber {
        /// The flag.
        flag: String,
        /// What followed it.
        value: String,
    },
    /// A count that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Not a flag of `crash-child`.
    #[error("unknown argument {0:?}; {USAGE}")]
    Unknown(String),
}

/// Why a child run stopped other than by being killed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The key file could not be loaded or created.
    #[error("sled key: {0}")]
    Key(#[from] event_log::keys::KeyError),
    /// The store or the log could not be opened.
    #[error("open: {0}")]
    Open(#[from] event_log::OpenError),
    /// An append failed: in a crash chain nothing should make one fail, so the run
    /// stops and the harness reports it.
    #[error("append of {tag} failed: {source}")]
    Append {
        /// The tag of the (first) transition appended.
        tag: String,
        /// The log's error (boxed: it is large).
        source: Box<event_log::Error>,
    },
    /// An ack line could not be written (the harness went away).
    #[error("writing an ack: {0}")]
    Output(#[source] std::io::Error),
    /// An appending task panicked.
    #[error("an appending task panicked: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Closing the log after `--max-acks` failed.
    #[error("close: {0}")]
    Close(#[source] event_log::Error),
    /// Nobody killed the child within `--max-secs`.
    #[error("not killed within {0} s (a harness that lost its child?)")]
    NotKilled(u64),
}

/// Runs the child: opens the log and appends from [`ChildConfig::tasks`] tasks,
/// writing each acknowledged event to `out` as an [`Ack`] line and flushing it, until
/// killed, until [`ChildConfig::max_acks`] (then the log is closed and `Ok` returned),
/// or until an error.
///
/// An ack is written only after the append returned `Ok`: what the store promises
/// then (its durable mode) is what the checker holds it to.
pub async fn run<W: Write + Send + 'static>(
    config: &ChildConfig,
    out: W,
) -> Result<(), ChildError> {
    let key = event_log::keys::load_or_create(&config.key)?;
    let log = Arc::new(event_log::open(&config.store, key).await?);
    tracing::info!(
        store = %event_log::redact_url(&config.store),
        sled = %log.sled_id(),
        next_event_id = log.version_vector().get(&log.sled_id()),
        "crash child appending"
    );
    let out = Arc::new(Mutex::new(out));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..config.tasks {
        tasks.spawn(append_task(
            log.clone(),
            out.clone(),
            acked.clone(),
            config.run,
            task,
            config.max_acks,
        ));
    }
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok::<(), ChildError>(())
    };
    match tokio::time::timeout(Duration::from_secs(config.max_secs), all).await {
        Ok(done) => done?,
        Err(_) => return Err(ChildError::NotKilled(config.max_secs)),
    }
    log.close().await.map_err(ChildError::Close)
}

/// One appending task: appends until killed, until `max_acks` acks in all, or until
/// an error, acknowledging each append on `out`.
///
/// Generic on purpose (as `evlog bench`'s producers): spawned with the store type
/// `Box<dyn OpStore>` written out, the compiler cannot prove the append future `Send`
/// for every lifetime of the `dyn`; here it follows from `S: OpStore`.
async fn append_task<S: OpStore, W: Write + Send + 'static>(
    log: Arc<EventLog<S>>,
    out: Arc<Mutex<W>>,
    acked: Arc<AtomicU64>,
    run: u64,
    task: usize,
    max_acks: Option<u64>,
) -> Result<(), ChildError> {
    let batch = if task % 4 == 3 { 3 } else { 1 };
    let mut n = 0u64;
    while max_acks.is_none_or(|max| acked.load(Ordering::SeqCst) < max) {
        let events = append(&log, run, task, n, batch).await?;
        n += batch;
        for event in events {
            write_ack(&out, &event)?;
            acked.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Appends `batch` transitions tagged from `n` on: one `append_transition`, or an
/// `append_all` of several.
async fn append<S: OpStore>(
    log: &EventLog<S>,
    run: u64,
    task: usize,
    n: u64,
    batch: u64,
) -> Result<Vec<LoggedEvent>, ChildError> {
    let transition =
        |k: u64| Transition::now(Ack::tag(run, task, n + k), "queued", "done", "crash");
    let failed = |source| ChildError::Append {
        tag: Ack::tag(run, task, n),
        source: Box::new(source),
    };
    if batch == 1 {
        Ok(vec![
            log.append_transition(transition(0)).await.map_err(failed)?,
        ])
    } else {
        let entries = (0..batch).map(|k| Entry::from(transition(k))).collect();
        log.append_all(entries).await.map_err(failed)
    }
}

/// Writes and flushes one ack line, whole, under the output's lock.
fn write_ack<W: Write>(out: &Mutex<W>, event: &LoggedEvent) -> Result<(), ChildError> {
    let ack = Ack {
        sled: event.sled_id,
        event_id: event.event_id,
        tag: event.story_id().unwrap_or_default().to_owned(),
    };
    let mut out = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    writeln!(out, "{ack}")
        .and_then(|()| out.flush())
        .map_err(ChildError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let mut config = ChildConfig::new("sqlite:///tmp/x.db", "/tmp/a.key", 7);
        config.tasks = 3;
        config.max_acks = Some(10);
        assert_eq!(ChildConfig::from_args(config.to_args()).unwrap(), config);
    }

    #[test]
    fn bad_command_lines_name_the_problem() {
        let args = |a: &[&str]| ChildConfig::from_args(a.iter().map(|s| s.to_string()));
        assert_eq!(
            args(&["--key", "k", "--run", "1"]),
            Err(ArgsError::Missing("--store"))
        );
        assert_eq!(
            args(&["--store", "memory:", "--key"]),
            Err(ArgsError::MissingValue("--key".into()))
        );
        assert!(matches!(
            args(&["--store", "memory:", "--key", "k", "--run", "x"]),
            Err(ArgsError::NotANumber { .. })
        ));
        assert_eq!(
            args(&[
                "--store", "memory:", "--key", "k", "--run", "1", "--tasks", "0"
            ]),
            Err(ArgsError::Zero("--tasks"))
        );
        assert!(matches!(args(&["--verbose"]), Err(ArgsError::Unknown(_))));
    }
}
