//! Reads served by the store, a page at a time: by sled and event id, since a
//! cursor, the causal timeline, one story. Each page costs O(k + log n) in the
//! store for k rows (one index per access path, see [`OpStore`]); nothing reads the
//! whole log into memory.
//!
//! Every row is checked before it is returned: its id is re-hashed from its bytes,
//! its readable and index columns must say what the signed bytes say, and it must
//! be the exact op this log validated (same id and signature; an op whose content
//! differs has another id, so it is not one this log holds). A row that fails is
//! never returned: the read fails with [`Error::DamagedRead`] naming it, and the
//! row is listed in [`EventLog::damage`] (later reads skip it, as they skip the
//! rows quarantined at open). Rows out of the view (evidence, an equivocating
//! sled's ops from its fork on) are skipped. A page stops at the first row this log
//! does not hold yet (another writer's, not caught up): it ends there (`end`), and
//! the next read from its cursor finds the row once the log has caught up.

use bft_json_crdt::{SignedOp, VersionVector};

use super::EventLog;
use super::EventLogConfig;
use super::decode::decode_record;
use crate::damage::{DamageKind, DamagedRow};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::event::{EventId, LoggedEvent, SledId};
use crate::state::{State, event_of};
use crate::store::{Causal, OpRecord, OpStore, Position};

/// One page of events and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<C> {
    /// The events, in the read's order; at most the limit asked for.
    pub events: Vec<LoggedEvent>,
    /// The cursor after every row this page read (including rows it skipped):
    /// pass it to the same read for the next page.
    pub next: C,
    /// True if the store held nothing more when the page was read. A log still
    /// growing may hold more later: tailing readers call again with `next`.
    pub end: bool,
}

impl<S: OpStore> EventLog<S> {
    /// Events of one sled from `from` on (event ids ascending), at most `limit`
    /// (`limit >= 1`); resume with [`Page::next`], the next event id to read.
    pub async fn read_sled(
        &self,
        sled: &SledId,
        from: EventId,
        limit: usize,
    ) -> Result<Page<EventId>> {
        let limit = limit.max(1);
        // An equivocating sled's ops from its fork on are all out of the view.
        let stop = self.state.read().replica.excluded_from(sled);
        let mut out = Vec::new();
        let mut next = from;
        loop {
            if stop.is_some_and(|s| next.saturating_add(1) >= s) {
                return Ok(Page {
                    events: out,
                    next,
                    end: true,
                });
            }
            let want = limit - out.len();
            let rows = self.store.author_ops(sled, next, want).await?;
            let full = rows.len() >= want;
            let (events, used) = self.visible(&rows)?;
            out.extend(events);
            if let Some(blocked) = rows.get(used) {
                // Its seq again next time, whole (evidence at a seq may come first).
                next = blocked.seq - 1;
                return Ok(Page {
                    events: out,
                    next,
                    end: true,
                });
            }
            if let Some(last) = rows.last() {
                next = last.seq;
            }
            if !full || out.len() >= limit {
                return Ok(Page {
                    events: out,
                    next,
                    end: !full,
                });
            }
        }
    }

    /// One event by sled and event id, read from the store.
    pub async fn read_event(
        &self,
        sled: &SledId,
        event_id: EventId,
    ) -> Result<Option<LoggedEvent>> {
        let rows = self.store.author_ops(sled, event_id, 1).await?;
        let rows: Vec<OpRecord> = rows
            .into_iter()
            .filter(|r| event_id.checked_add(1) == Some(r.seq))
            .collect();
        Ok(self.visible(&rows)?.0.into_iter().next())
    }

    /// Events after a cursor (a sled maps to the next event id wanted; a sled not
    /// in it starts at 0), ordered by sled, then event id, at most `limit`
    /// (`limit >= 1`): the tailing read. Resume with [`Page::next`].
    pub async fn read_since(
        &self,
        cursor: &VersionVector,
        limit: usize,
    ) -> Result<Page<VersionVector>> {
        let limit = limit.max(1);
        let mut vv = cursor.clone();
        let excluded: Vec<(SledId, u64)> = {
            let st = self.state.read();
            st.replica
                .authors()
                .filter_map(|a| st.replica.excluded_from(a).map(|s| (*a, s)))
                .collect()
        };
        let mut out = Vec::new();
        loop {
            // Past an equivocating sled's fork nothing is visible: skip the rest.
            for (sled, from) in &excluded {
                if vv.get(sled).saturating_add(1) >= *from {
                    vv.set(*sled, u64::MAX);
                }
            }
            let want = limit - out.len();
            let rows = self.store.since(&vv, want).await?;
            let full = rows.len() >= want;
            let (events, used) = self.visible(&rows)?;
            out.extend(events);
            for r in &rows[..used] {
                vv.raise(r.author, r.seq);
            }
            if let Some(blocked) = rows.get(used) {
                // Its seq again next time, whole (evidence at a seq may come first).
                vv.set(blocked.author, blocked.seq - 1);
                return Ok(Page {
                    events: out,
                    next: vv,
                    end: true,
                });
            }
            if !full || out.len() >= limit {
                return Ok(Page {
                    events: out,
                    next: vv,
                    end: !full,
                });
            }
        }
    }

    /// Visible events after `after` in the causal order `(lamport, op id)` — the
    /// same on every replica holding the same ops, each event after everything it
    /// depends on — at most `limit` (`limit >= 1`). Start at [`Causal::START`];
    /// resume with [`Page::next`].
    pub async fn read_timeline(&self, after: &Causal, limit: usize) -> Result<Page<Causal>> {
        self.causal_pages(None, after, limit).await
    }

    /// Visible events of one story after `after`, in causal order, at most `limit`
    /// (`limit >= 1`). Start at [`Causal::START`]; resume with [`Page::next`].
    pub async fn read_story(
        &self,
        story_id: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Page<Causal>> {
        self.causal_pages(Some(story_id), after, limit).await
    }

    /// Pages of the timeline, or of one story's timeline.
    async fn causal_pages(
        &self,
        story: Option<&str>,
        after: &Causal,
        limit: usize,
    ) -> Result<Page<Causal>> {
        let limit = limit.max(1);
        let mut next = *after;
        let mut out = Vec::new();
        loop {
            let want = limit - out.len();
            let rows = match story {
                None => self.store.timeline(&next, want).await?,
                Some(story) => self.store.story_ops(story, &next, want).await?,
            };
            let full = rows.len() >= want;
            let (events, used) = self.visible(&rows)?;
            out.extend(events);
            if let Some(last) = rows[..used].last() {
                next = last.causal();
            }
            if used < rows.len() || !full || out.len() >= limit {
                return Ok(Page {
                    events: out,
                    next,
                    end: used < rows.len() || !full,
                });
            }
        }
    }

    /// The visible events among rows read from the store, in their order, after
    /// checking each row (see the module docs), and how many rows were used: the
    /// rows before the first one this log does not hold yet (another writer's,
    /// not caught up; a page stops there, so the next read finds it once caught
    /// up, rather than passing it for ever).
    fn visible(&self, rows: &[OpRecord]) -> Result<(Vec<LoggedEvent>, usize)> {
        let (held, used) = self.authenticate(rows, Unheld::Stop)?;
        let events = held
            .into_iter()
            .filter(|h| h.in_view)
            .map(|h| event_of(&h.op, h.entry))
            .collect();
        Ok((events, used))
    }

    /// Checks rows read from the store against what this log verified (see the
    /// module docs) and returns the ops it holds among them, in their order, and
    /// how many rows were looked at: all of them, or with [`Unheld::Stop`] those
    /// before the first row this log does not hold. Rows listed in the damage log
    /// are skipped. A row that fails its checks fails the call with
    /// [`Error::DamagedRead`] and is added to the damage log.
    pub(super) fn authenticate(
        &self,
        rows: &[OpRecord],
        unheld: Unheld,
    ) -> Result<(Vec<Authentic>, usize)> {
        let mut out = Vec::with_capacity(rows.len());
        let mut damaged: Option<Box<DamagedRow>> = None;
        let known: Vec<bool> = {
            let log = self.damage.lock();
            rows.iter().map(|r| log.contains(&r.id)).collect()
        };
        let mut used = 0;
        {
            let st = self.state.read();
            for (rec, known_damaged) in rows.iter().zip(known) {
                if known_damaged {
                    used += 1;
                    continue;
                }
                match check_row(&st, rec, &self.config) {
                    Err(row) => {
                        damaged = Some(row);
                        break;
                    }
                    Ok(Some(authentic)) => out.push(authentic),
                    // Not validated by this log yet.
                    Ok(None) if matches!(unheld, Unheld::Stop) => break,
                    Ok(None) => {}
                }
                used += 1;
            }
        }
        if let Some(row) = damaged {
            self.damage.lock().add((*row).clone());
            return Err(Error::DamagedRead { row });
        }
        Ok((out, used))
    }
}

/// Checks one row read from the store (see the module docs): the op this log
/// verified, `None` if this log does not hold it, or the damage found.
pub(super) fn check_row(
    st: &State,
    rec: &OpRecord,
    config: &EventLogConfig,
) -> std::result::Result<Option<Authentic>, Box<DamagedRow>> {
    let (op, entry) = decode_record(rec, config)
        .map_err(|kind| Box::new(DamagedRow::of(Position::START, rec, kind)))?;
    let Some(held) = st.replica.get(&op.id()) else {
        return Ok(None);
    };
    if !held.matches(&op) {
        // The id is re-hashed from the bytes and was found: what differs is the
        // signature.
        return Err(Box::new(DamagedRow::of(
            Position::START,
            rec,
            DamageKind::RowMismatch {
                column: "bytes",
                detail: "the signature differs from the one this log verified".into(),
            },
        )));
    }
    Ok(Some(Authentic {
        in_view: st.replica.in_view(&held.id()),
        op,
        entry,
    }))
}

/// What [`EventLog::authenticate`] does at a row this log does not hold.
#[derive(Clone, Copy)]
pub(super) enum Unheld {
    /// Stop there (a reader's page ends; the row is read again once caught up).
    Stop,
    /// Skip it (an export of what this log holds).
    Skip,
}

/// A row read from the store that is an op this log verified.
pub(super) struct Authentic {
    pub(super) op: SignedOp,
    pub(super) entry: Entry,
    /// In the view (not an equivocating sled's op from its fork on).
    pub(super) in_view: bool,
}
