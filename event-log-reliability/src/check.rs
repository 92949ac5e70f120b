//! The checker: after a chain of kills, what the store holds against what the
//! children acknowledged, Jepsen-style.
//!
//! [`check`] reads the store twice: its raw rows (every op, evidence included, by
//! [`OpStore::load`]) and the log a reopen replays (ids, signatures and chains
//! checked). It reports
//! - **lost**: an ack whose `(sled, event_id)` the log does not hold, or holds with
//!   another transition (a seq signed again after its op was lost);
//! - **duplicates**: two rows at one `(sled, seq)` (evidence rows included), and a
//!   tag stored at more than one event id (an append stored twice);
//! - **holes**: a sled whose rows or events are not exactly `0..n`;
//! - **problems**: anything else the reopen reports (damaged rows, missing ops,
//!   equivocations).
//!
//! [`next_append`] then checks that a sled's next append continues right after its
//! last stored event.

use event_log_conformance::read::ReadAll;
use std::collections::BTreeMap;

use event_log::{EventId, OpStore, Position, SigningKey, SledId, Transition};

use crate::ack::Ack;

/// Two or more stored copies where there must be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// Several rows of the store at one `(sled, event_id)` (event id = seq − 1).
    Row {
        /// The sled.
        sled: SledId,
        /// The event id.
        event_id: EventId,
        /// How many rows hold it.
        rows: usize,
    },
    /// One appended transition (by its unique tag) stored at several event ids.
    Tag {
        /// The tag.
        tag: String,
        /// Where it is stored.
        at: Vec<(SledId, EventId)>,
    },
}

/// A sled whose stored sequence is not contiguous from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The sled.
    pub sled: SledId,
    /// Where it was found: `"rows"` (the store) or `"events"` (the reopened log).
    pub layer: &'static str,
    /// The first event id missing.
    pub missing: EventId,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Acks checked.
    pub acknowledged: usize,
    /// Acks the store does not hold as acknowledged.
    pub lost: Vec<Ack>,
    /// Stored more than once.
    pub duplicates: Vec<Duplicate>,
    /// Sleds whose sequence has a hole.
    pub holes: Vec<Hole>,
    /// Anything else the reopened log reports (damaged rows, missing ops,
    /// equivocations), one line each.
    pub problems: Vec<String>,
    /// Events stored per sled (each sled's next event id).
    pub events: BTreeMap<SledId, u64>,
    /// Rows in the store.
    pub rows: u64,
}

impl Report {
    /// True when nothing acknowledged is lost or duplicated and every sequence is
    /// contiguous from 0.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates.is_empty()
            && self.holes.is_empty()
            && self.problems.is_empty()
    }
}

/// Why the store could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store or the log could not be opened.
    #[error("opening the store to check it: {0}")]
    Open(#[from] event_log::OpenError),
    /// Reading the store's rows failed.
    #[error("reading the store's rows: {0}")]
    Store(#[from] event_log::StoreError),
    /// The check's own append failed.
    #[error("the next append failed: {0}")]
    Append(#[from] event_log::Error),
}

/// Rows read per [`OpStore::load`] call.
const PAGE: usize = 1000;

/// Checks the store at `url` against `acks` (see the module docs); run it when no
/// child is appending.
///
/// The raw rows are read through a writable store handle, as a restarted sled opens
/// it (redb repairs a file a kill left unclosed then, which a read-only open refuses
/// to do); nothing is written to the ops. The log is then replayed read-only.
pub async fn check(url: &str, acks: &[Ack]) -> Result<Report, CheckError> {
    let mut report = Report {
        acknowledged: acks.len(),
        ..Report::default()
    };
    check_rows(url, &mut report).await?;
    let log = event_log::open_read_only(url).await?;
    for damaged in log.damage() {
        report.problems.push(format!("damaged row: {damaged:?}"));
    }
    for missing in log.missing() {
        report.problems.push(format!("missing ops: {missing:?}"));
    }
    for equivocation in log.equivocations() {
        report
            .problems
            .push(format!("equivocation: {equivocation:?}"));
    }
    let mut tags: BTreeMap<String, Vec<(SledId, EventId)>> = BTreeMap::new();
    let events = log.all_events().await?;
    for event in &events {
        *report.events.entry(event.sled_id).or_default() += 1;
        let tag = event.story_id().unwrap_or_default().to_owned();
        tags.entry(tag)
            .or_default()
            .push((event.sled_id, event.event_id));
    }
    let mut next: BTreeMap<SledId, EventId> = BTreeMap::new();
    for event in &events {
        // `all_events()` is sorted by (sled, event id): each must be the next one.
        let expected = next.entry(event.sled_id).or_default();
        if event.event_id != *expected {
            report.holes.push(Hole {
                sled: event.sled_id,
                layer: "events",
                missing: *expected,
            });
        }
        *expected = event.event_id + 1;
    }
    for (tag, at) in tags {
        if at.len() > 1 {
            report.duplicates.push(Duplicate::Tag { tag, at });
        }
    }
    for ack in acks {
        let held = log.one_event(&ack.sled, ack.event_id).await?;
        if held.as_ref().and_then(|e| e.story_id()) != Some(ack.tag.as_str()) {
            report.lost.push(ack.clone());
        }
    }
    log.close().await?;
    Ok(report)
}

/// The raw rows: one per `(sled, seq)`, seqs `1..=n` per sled.
async fn check_rows(url: &str, report: &mut Report) -> Result<(), CheckError> {
    let store = event_log::open_store(url).await?;
    let mut rows: BTreeMap<(SledId, u64), usize> = BTreeMap::new();
    let mut after = Position::START;
    loop {
        let page = store.load(after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, record) in &page {
            report.rows += 1;
            *rows.entry((record.author, record.seq)).or_default() += 1;
        }
    }
    store.close().await?;
    let mut next: BTreeMap<SledId, u64> = BTreeMap::new();
    for (&(sled, seq), &count) in &rows {
        let event_id = seq.saturating_sub(1);
        if count > 1 {
            report.duplicates.push(Duplicate::Row {
                sled,
                event_id,
                rows: count,
            });
        }
        let expected = next.entry(sled).or_insert(1);
        if seq != *expected {
            report.holes.push(Hole {
                sled,
                layer: "rows",
                missing: *expected - 1,
            });
        }
        *expected = seq + 1;
    }
    Ok(())
}

/// A sled's first append after the chain: where it went and where it should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextAppend {
    /// The event id the sled's next append must get: its stored events' count.
    pub expected: EventId,
    /// The event id it got.
    pub got: EventId,
}

/// Reopens the store at `url` as the sled of `key`, appends one transition tagged
/// `tag` and closes the log: its event id must be the sled's stored count (the
/// sequence continues right after the last stored event, with no gap and no reuse).
pub async fn next_append(url: &str, key: SigningKey, tag: &str) -> Result<NextAppend, CheckError> {
    let log = event_log::open(url, key).await?;
    let expected = log.all_sled_events(&log.sled_id()).await?.len() as EventId;
    let event = log
        .append_transition(Transition::now(tag, "queued", "done", "crash-check"))
        .await?;
    log.close().await?;
    Ok(NextAppend {
        expected,
        got: event.event_id,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::child::{self, ChildConfig};

    /// A writer the test can read back after the child took it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A store with `acks` acknowledged appends by an in-process child run.
    async fn store_with_acks(dir: &std::path::Path, run: u64) -> (String, Vec<Ack>) {
        let url = format!("sqlite://{}", dir.join("log.db").display());
        let mut config = ChildConfig::new(url.clone(), dir.join("sled.key"), run);
        config.max_acks = Some(24);
        let out = Shared::default();
        child::run(&config, out.clone()).await.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let acks = text.lines().map(|l| l.parse().unwrap()).collect();
        (url, acks)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_run_checks_clean_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (url, acks) = store_with_acks(dir.path(), 0).await;
        assert!(acks.len() >= 24, "{}", acks.len());
        let report = check(&url, &acks).await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.acknowledged, acks.len());
        let stored = report.events.values().sum::<u64>();
        assert_eq!(
            stored,
            acks.len() as u64,
            "a closed run stored exactly its acks"
        );
        assert_eq!(report.rows, stored);
        let key = event_log::keys::load(dir.path().join("sled.key")).unwrap();
        let next = next_append(&url, key, "after").await.unwrap();
        assert_eq!(
            next,
            NextAppend {
                expected: stored,
                got: stored
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_or_overwritten_ack_is_reported_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (url, mut acks) = store_with_acks(dir.path(), 0).await;
        let sled = acks[0].sled;
        let end = acks.iter().map(|a| a.event_id).max().unwrap() + 1;
        // Acknowledged but not stored: beyond the sled's last event.
        let beyond = Ack {
            sled,
            event_id: end,
            tag: "never-stored".into(),
        };
        // Acknowledged, but its event id holds another transition (a seq signed again).
        let mut replaced = acks[3].clone();
        replaced.tag = "signed-again".into();
        acks.extend([beyond.clone(), replaced.clone()]);
        let report = check(&url, &acks).await.unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.lost, vec![beyond, replaced]);
        assert!(
            report.duplicates.is_empty() && report.holes.is_empty(),
            "{report:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_stored_twice_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let (url, acks) = store_with_acks(dir.path(), 0).await;
        let key = event_log::keys::load(dir.path().join("sled.key")).unwrap();
        let log = event_log::open(&url, key).await.unwrap();
        let again = log
            .append_transition(Transition::now(
                acks[0].tag.clone(),
                "queued",
                "done",
                "crash",
            ))
            .await
            .unwrap();
        log.close().await.unwrap();
        let report = check(&url, &acks).await.unwrap();
        assert!(report.lost.is_empty(), "{report:?}");
        assert_eq!(
            report.duplicates,
            vec![Duplicate::Tag {
                tag: acks[0].tag.clone(),
                at: vec![
                    (acks[0].sled, acks[0].event_id),
                    (again.sled_id, again.event_id)
                ],
            }]
        );
    }
}
