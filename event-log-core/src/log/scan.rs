//! Reading stored rows into a replica: one place that decides whether a row is
//! intact (id re-hashed, columns matching the signed bytes, payload a valid entry),
//! and that turns a bad row into a [`DamagedRow`] instead of an error. Open's
//! replay, `verify` and followers all read through it.

use std::collections::HashMap;

use bft_json_crdt::{OpId, Outcome, Rejected, SignedOp};

use super::EventLogConfig;
use super::decode::{decode_page, parse_entry};
use super::follow::Fed;
use crate::checkpoint::Chain;
use crate::damage::{DamageKind, DamageLog, DamagedRow};
use crate::entry::Entry;
use crate::error::Result;
use crate::state::State;
use crate::store::{OpRecord, Position};

/// A pass over stored rows: the state they build, the digest of the intact rows in
/// load order (for the replay checkpoint), and the damage found.
pub(crate) struct Scan {
    pub(crate) state: State,
    pub(crate) chain: Chain,
    pub(crate) damage: DamageLog,
    /// Rows whose signature and links were verified (the others were covered by a
    /// checkpoint).
    pub(crate) verified: u64,
    /// Positions of ops waiting in the buffer, to name them if they never apply.
    waiting: HashMap<OpId, (Position, OpRecord)>,
}

impl Scan {
    pub(crate) fn new(config: &EventLogConfig) -> Self {
        Scan {
            state: State::new(config.limits, config.members.clone()),
            chain: Chain::default(),
            damage: DamageLog::default(),
            verified: 0,
            waiting: HashMap::new(),
        }
    }

    /// Rows a valid checkpoint covers: ids re-hashed and columns checked, then
    /// applied without verifying signatures again.
    pub(crate) fn trusted(&mut self, page: &[(Position, OpRecord)], config: &EventLogConfig) {
        let mut ops = Vec::with_capacity(page.len());
        for ((pos, rec), decoded) in page.iter().zip(decode_page(page, config)) {
            match decoded {
                Ok((op, entry)) => {
                    self.chain.add(&op);
                    ops.push((op, entry));
                }
                Err(kind) => self.damage.add(DamagedRow::of(*pos, rec, kind)),
            }
        }
        self.state.apply_quiet(ops);
    }

    /// Rows verified in full: decoded, then validated by the replica (signatures
    /// batched); what fails is damage, what waits for deps is buffered.
    pub(crate) fn verify(&mut self, page: &[(Position, OpRecord)], config: &EventLogConfig) {
        let mut ops = Vec::with_capacity(page.len());
        let mut rows: HashMap<OpId, (Position, &OpRecord)> = HashMap::with_capacity(page.len());
        let mut entries: HashMap<OpId, Entry> = HashMap::with_capacity(page.len());
        for ((pos, rec), decoded) in page.iter().zip(decode_page(page, config)) {
            match decoded {
                Ok((op, entry)) => {
                    self.chain.add(&op);
                    if rows.insert(op.id(), (*pos, rec)).is_some() {
                        self.damage
                            .add(DamagedRow::of(*pos, rec, DamageKind::Duplicate));
                        continue;
                    }
                    entries.insert(op.id(), entry);
                    ops.push(op);
                }
                Err(kind) => self.damage.add(DamagedRow::of(*pos, rec, kind)),
            }
        }
        self.verified += ops.len() as u64;
        self.apply(ops, &rows, entries);
    }

    /// Rows found by a read without positions (by `(author, seq)`), verified in full.
    pub(crate) fn verify_unpositioned(
        &mut self,
        recs: &[OpRecord],
        config: &EventLogConfig,
    ) -> Fed {
        let page: Vec<(Position, OpRecord)> =
            recs.iter().map(|r| (Position::START, r.clone())).collect();
        let mut ops = Vec::with_capacity(page.len());
        let mut rows: HashMap<OpId, (Position, &OpRecord)> = HashMap::new();
        let mut entries = HashMap::new();
        for ((pos, rec), decoded) in page.iter().zip(decode_page(&page, config)) {
            match decoded {
                Ok((op, entry)) => {
                    rows.insert(op.id(), (*pos, rec));
                    entries.insert(op.id(), entry);
                    ops.push(op);
                }
                Err(kind) => self.damage.add(DamagedRow::of(*pos, rec, kind)),
            }
        }
        self.verified += ops.len() as u64;
        self.apply(ops, &rows, entries)
    }

    fn apply(
        &mut self,
        ops: Vec<SignedOp>,
        rows: &HashMap<OpId, (Position, &OpRecord)>,
        mut entries: HashMap<OpId, Entry>,
    ) -> Fed {
        let mut fed = Fed::default();
        let ingest = self.state.replica.ingest(ops);
        for d in ingest.deliveries {
            let row = rows
                .get(&d.id)
                .map(|(p, r)| (*p, (*r).clone()))
                .or_else(|| self.waiting.get(&d.id).cloned());
            fed.count(row.as_ref().map(|(_, r)| r.author), &d.result);
            match d.result {
                Ok(Outcome::Applied) => {
                    self.waiting.remove(&d.id);
                }
                Ok(Outcome::Duplicate) => {
                    // A second row of one op; an op read again by `(author, seq)`
                    // (no position) is expected.
                    if let Some((pos, rec)) = row
                        && pos != Position::START
                    {
                        self.damage
                            .add(DamagedRow::of(pos, &rec, DamageKind::Duplicate));
                    }
                }
                Ok(Outcome::Buffered { .. }) => {
                    if let Some(row) = row {
                        self.waiting.insert(d.id, row);
                    }
                }
                Err(reason) => {
                    if let Some((pos, rec)) = row {
                        self.waiting.remove(&d.id);
                        let kind = match reason {
                            // Waiting longer or in larger numbers than the buffer
                            // holds: its deps are not in the store (intact) so far.
                            Rejected::BufferFull { .. }
                            | Rejected::AuthorBufferFull { .. }
                            | Rejected::Expired { .. } => DamageKind::Unreachable {
                                missing: Vec::new(),
                            },
                            other => DamageKind::Rejected(other),
                        };
                        self.damage.add(DamagedRow::of(pos, &rec, kind));
                    }
                }
            }
        }
        let mut ready = Vec::with_capacity(ingest.ready.len());
        for r in ingest.ready {
            // Ops released from the buffer came from an earlier page.
            let entry = match entries.remove(&r.op.id()) {
                Some(e) => e,
                None => match parse_entry(&r.op) {
                    Ok(e) => e,
                    Err(_) => continue, // checked when it was read
                },
            };
            self.damage.clear(&r.op.id());
            ready.push((r.op, entry));
        }
        self.state.apply_quiet(ready);
        fed
    }

    /// Ops still waiting for deps the store does not hold (intact): damage.
    pub(crate) fn finish(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (id, (pos, rec)) in waiting {
            if self.state.replica.contains(&id) {
                continue;
            }
            let missing = self.state.replica.missing_deps(&id);
            self.damage.add(DamagedRow::of(
                pos,
                &rec,
                DamageKind::Unreachable { missing },
            ));
        }
    }
}

/// A [`Scan`] as the sink of [`super::follow::pull`].
pub(crate) struct ScanSink<'a>(pub(crate) &'a mut Scan, pub(crate) &'a EventLogConfig);

impl super::follow::Sink for ScanSink<'_> {
    fn applied(&self) -> bft_json_crdt::VersionVector {
        self.0.state.replica.version_vector()
    }

    fn settled(&self, id: &OpId) -> bool {
        self.0.state.replica.contains(id) || self.0.damage.contains(id)
    }

    async fn feed(&mut self, rows: Vec<OpRecord>) -> Result<Fed> {
        Ok(self.0.verify_unpositioned(&rows, self.1))
    }
}
