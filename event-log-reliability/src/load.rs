//! The fault tests' load: tasks appending to one open log while a fault is injected
//! and lifted, recording every acknowledged append (an [`Ack`], for
//! [`crate::check()`]) and every failed one (its error's type and kind, and how long
//! the call took).
//!
//! Each task appends one transition at a time, tagged `Ack::tag(run, task, n)` with
//! `n` counting every attempt, so each tag is appended once: an append in doubt is
//! completed by the log later, never appended again by the task. A call that takes
//! longer than [`LoadConfig::hang_after`] is abandoned and recorded as a
//! [`FailureKind::Hang`]; after a failure a task pauses
//! ([`LoadConfig::pause_after_failure`]) before its next append, and after an ack
//! by [`LoadConfig::pause_between`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_log::{Error, EventLog, OpStore, StoreErrorKind, Transition};

use crate::ack::Ack;

/// How the load appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadConfig {
    /// Concurrent appending tasks.
    pub tasks: usize,
    /// The run number in every tag.
    pub run: u64,
    /// A call taking longer is abandoned and recorded as a hang.
    pub hang_after: Duration,
    /// A task's pause after a failed append.
    pub pause_after_failure: Duration,
    /// A task's pause after an acknowledged append (zero: none).
    pub pause_between: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            tasks: 3,
            run: 0,
            hang_after: Duration::from_secs(20),
            pause_after_failure: Duration::from_millis(50),
            pause_between: Duration::ZERO,
        }
    }
}

/// What a failed append returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `Error::Store`: known not stored, with the store error's kind.
    Store(StoreErrorKind),
    /// `Error::InDoubt`: outcome unknown (the log completes it later), with the store
    /// error's kind.
    InDoubt(StoreErrorKind),
    /// The call did not return within [`LoadConfig::hang_after`].
    Hang,
    /// Any other error of the log.
    Other,
}

impl FailureKind {
    /// The store error's kind, for [`FailureKind::Store`] and [`FailureKind::InDoubt`].
    pub fn store_kind(self) -> Option<StoreErrorKind> {
        match self {
            FailureKind::Store(k) | FailureKind::InDoubt(k) => Some(k),
            FailureKind::Hang | FailureKind::Other => None,
        }
    }
}

/// One failed append.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The task.
    pub task: usize,
    /// The transition's tag.
    pub tag: String,
    /// What it returned.
    pub kind: FailureKind,
    /// The error's message (`Display`, sources included).
    pub message: String,
    /// How long the call took.
    pub took: Duration,
}

/// Everything recorded so far.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Acknowledged appends, in the order they returned.
    pub acks: Vec<Ack>,
    /// Failed appends, in the order they returned.
    pub failures: Vec<Failure>,
    /// Per task: acks and failures so far.
    pub per_task: Vec<TaskCounts>,
}

/// One task's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Acknowledged appends.
    pub acked: u64,
    /// Failed appends.
    pub failed: u64,
}

impl Record {
    /// The longest a failed call took (zero when none failed).
    pub fn slowest_failure(&self) -> Duration {
        self.failures
            .iter()
            .map(|f| f.took)
            .max()
            .unwrap_or_default()
    }

    /// Failures by kind, as `kind ×count` text, e.g. `InDoubt(Unavailable) ×12`.
    pub fn failure_kinds(&self) -> String {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for f in &self.failures {
            let name = format!("{:?}", f.kind);
            match kinds.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => *n += 1,
                None => kinds.push((name, 1)),
            }
        }
        if kinds.is_empty() {
            return "none".into();
        }
        kinds
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A condition [`Load::wait_for`] waited for in vain.
#[derive(Debug, thiserror::Error)]
#[error("waited {waited:?} in vain for {what}; recorded: {record}")]
pub struct WaitError {
    /// What was waited for.
    pub what: String,
    /// How long.
    pub waited: Duration,
    /// A summary of the record then (counts per task, failure kinds, last failure).
    pub record: String,
}

/// Tasks appending to one log; stop them with [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    /// Starts `config.tasks` tasks appending to `log`. Call within a tokio runtime.
    pub fn start<S: OpStore + 'static>(log: Arc<EventLog<S>>, config: &LoadConfig) -> Load {
        let record = Arc::new(Mutex::new(Record {
            per_task: vec![TaskCounts::default(); config.tasks],
            ..Record::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..config.tasks {
            tasks.spawn(append_task(
                log.clone(),
                record.clone(),
                stop.clone(),
                config.clone(),
                task,
            ));
        }
        Load {
            record,
            stop,
            tasks,
        }
    }

    /// A copy of the record so far.
    pub fn record(&self) -> Record {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits (polling every 20 ms) until `done` holds for the record, at most
    /// `limit`.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Record) -> bool,
    ) -> Result<(), WaitError> {
        let started = Instant::now();
        loop {
            let record = self.record();
            if done(&record) {
                return Ok(());
            }
            if started.elapsed() >= limit {
                let last = record
                    .failures
                    .last()
                    .map(|f| format!("; last failure: {:?} {}", f.kind, f.message))
                    .unwrap_or_default();
                return Err(WaitError {
                    what: what.to_owned(),
                    waited: started.elapsed(),
                    record: format!(
                        "per task {:?}, failures {}{last}",
                        record.per_task,
                        record.failure_kinds()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the tasks (each finishes its current append) and returns the record.
    ///
    /// # Panics
    /// If an appending task panicked (the panic is passed on).
    pub async fn stop(mut self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        self.record()
    }
}

/// One task: appends until stopped, recording each outcome.
///
/// Generic on purpose (as the crash child's tasks): with `Box<dyn OpStore>` written
/// out, the compiler cannot prove the append future `Send`.
async fn append_task<S: OpStore>(
    log: Arc<EventLog<S>>,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    config: LoadConfig,
    task: usize,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let tag = Ack::tag(config.run, task, n);
        n += 1;
        let transition = Transition::now(tag.clone(), "queued", "done", "fault");
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(config.hang_after, log.append_transition(transition)).await;
        let took = started.elapsed();
        let failure = |kind, message| Failure {
            task,
            tag: tag.clone(),
            kind,
            message,
            took,
        };
        let failed = match outcome {
            Ok(Ok(event)) => {
                {
                    let mut r = record
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    r.acks.push(Ack {
                        sled: event.sled_id,
                        event_id: event.event_id,
                        tag: event.story_id().unwrap_or_default().to_owned(),
                    });
                    r.per_task[task].acked += 1;
                }
                if !config.pause_between.is_zero() {
                    tokio::time::sleep(config.pause_between).await;
                }
                None
            }
            Ok(Err(e)) => {
                let kind = match &e {
                    Error::Store(s) => FailureKind::Store(s.kind()),
                    Error::InDoubt { source } => FailureKind::InDoubt(source.kind()),
                    _ => FailureKind::Other,
                };
                Some(failure(kind, error_chain(&e)))
            }
            Err(_) => Some(failure(
                FailureKind::Hang,
                format!("no answer within {:?}", config.hang_after),
            )),
        };
        if let Some(failure) = failed {
            tracing::debug!(task, kind = ?failure.kind, error = %failure.message, "append failed");
            {
                let mut r = record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                r.per_task[task].failed += 1;
                r.failures.push(failure);
            }
            tokio::time::sleep(config.pause_after_failure).await;
        }
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        next = s.source();
    }
    text
}
