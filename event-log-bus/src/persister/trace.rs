//! What the log holds of one persister run: the one place the persister reads the
//! log back.
//!
//! A persister appends its run's entries in logical order and names the run in each
//! (a transition's [`Origin`], a gap's `run`), so the newest entry of the sled naming
//! a run says exactly how far that run got into the log. The persister asks when a
//! reply alone cannot tell it (a conflict while it holds appends in doubt, the last
//! flush), and at start, to find where a run that ended without a clean shutdown
//! stopped being persisted.
//!
//! The walk goes back from the sled's newest event and stops at the first entry
//! naming the run, or at `first_event` (the sled's next event id when the run
//! started: nothing of the run lies before it), so it costs the events appended
//! after the run's last one, usually none.
//!
//! [`Origin`]: event_log_core::Origin

use event_log_core::{Entry, Error, EventLog, OpStore, RunId};

/// What the log holds of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunTrace {
    /// An unclean-shutdown sentinel for the run is already in the log (a later run
    /// recorded it).
    Recorded,
    /// The highest logical id of the run the log holds (as a transition or inside a
    /// gap), `None` if it holds none.
    Last(Option<u64>),
}

/// Events read back per page of the walk.
const PAGE: u64 = 64;

/// Looks up what the log holds of `run`, walking this sled's events back from the
/// newest to `first_event`, a page at a time from the store.
pub(crate) async fn run_trace<S: OpStore>(
    log: &EventLog<S>,
    run: RunId,
    first_event: u64,
) -> Result<RunTrace, Error> {
    let sled = log.sled_id();
    let mut end = log.version_vector().get(&sled);
    while end > first_event {
        let from = end.saturating_sub(PAGE).max(first_event);
        let page = log
            .read_sled(
                &sled,
                from,
                usize::try_from(end - from).unwrap_or(usize::MAX),
            )
            .await?;
        for e in page.events.iter().rev().filter(|e| e.event_id < end) {
            match &e.entry {
                Entry::Unclean(u) if u.run == run => return Ok(RunTrace::Recorded),
                Entry::Transition(t) => {
                    if let Some(o) = t.origin.filter(|o| o.run == run) {
                        return Ok(RunTrace::Last(Some(o.id)));
                    }
                }
                Entry::Gap(g) if g.run == run => return Ok(RunTrace::Last(Some(g.to))),
                Entry::Gap(_) | Entry::Unclean(_) => {}
            }
        }
        end = from;
    }
    Ok(RunTrace::Last(None))
}
