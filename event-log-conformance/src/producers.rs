//! Many producers appending to one log while the store fails under them, and the
//! check of what the store then holds: shared by the core's and the backends'
//! pipeline tests.

use crate::read::ReadAll;
use std::collections::HashSet;
use std::sync::Arc;

use event_log_core::{Error, EventLog, OpStore, Position, Transition};

/// What the appends of [`produce`] came to.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// The stories whose append was acknowledged.
    pub acked: HashSet<String>,
    /// The stories whose append failed, with the error.
    pub failed: Vec<(String, Error)>,
}

/// `producers` tasks at once, each appending `each` transitions (stories
/// `p{producer}-{i}`) one call at a time to `log`.
pub async fn produce<S: OpStore>(
    log: &Arc<EventLog<S>>,
    producers: usize,
    each: usize,
) -> Result<Outcomes, String> {
    let mut tasks = Vec::new();
    for p in 0..producers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..each {
                let story = format!("p{p}-{i}");
                let r = log
                    .append_transition(Transition::now(story.clone(), "a", "b", "E"))
                    .await;
                outcomes.push((story, r));
            }
            outcomes
        }));
    }
    let mut out = Outcomes::default();
    for t in tasks {
        for (story, r) in t.await.map_err(|e| format!("producer panicked: {e}"))? {
            match r {
                Ok(_) => {
                    out.acked.insert(story);
                }
                Err(e) => out.failed.push((story, e)),
            }
        }
    }
    Ok(out)
}

/// Checks `store` (the store under `log`) after appends that met failures: the
/// stored seqs are contiguous from 1 in load order (no group was stored after a
/// hole), every stored op is visible with contiguous event ids, no story is stored
/// twice, and every acknowledged story is stored. Returns the stored stories.
pub async fn check_stored<S: OpStore, T: OpStore>(
    log: &EventLog<S>,
    store: &T,
    acked: &HashSet<String>,
) -> Result<HashSet<String>, String> {
    let stored = store
        .load(Position::START, usize::MAX)
        .await
        .map_err(|e| format!("load: {e}"))?;
    let seqs: Vec<u64> = stored.iter().map(|(_, r)| r.seq).collect();
    if seqs != (1..=stored.len() as u64).collect::<Vec<_>>() {
        return Err(format!(
            "stored seqs are not contiguous, in order: {seqs:?}"
        ));
    }
    let events = log.all_events().await.map_err(|e| format!("read: {e}"))?;
    if events.len() != stored.len() {
        return Err(format!(
            "{} events for {} stored ops",
            events.len(),
            stored.len()
        ));
    }
    if !events
        .iter()
        .enumerate()
        .all(|(i, e)| e.event_id == i as u64)
    {
        return Err("event ids are not contiguous".into());
    }
    let stories: HashSet<String> = events
        .iter()
        .filter_map(|e| e.story_id().map(str::to_owned))
        .collect();
    if stories.len() != events.len() {
        return Err("an entry is stored twice".into());
    }
    if !acked.is_subset(&stories) {
        return Err("an acknowledged entry is not stored".into());
    }
    Ok(stories)
}
