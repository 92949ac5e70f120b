//! Opening a log: replay the store, verify it, resume sequencing.

use std::collections::HashMap;

use bft_json_crdt::{Outcome, RawOp, SignedOp, SigningKey};
use parking_lot::{Mutex, RwLock};

use super::{Counters, EventLog, EventLogConfig, append};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::state::State;
use crate::store::{OpRecord, OpStore, Position, StoreError};

impl<S: OpStore> EventLog<S> {
    /// Opens a log over `store`, signing as `key`, with the default configuration.
    pub async fn open(store: S, key: SigningKey) -> Result<Self> {
        Self::open_with(store, key, EventLogConfig::default()).await
    }

    /// Opens a log: replays every op of the store (checking its id, signature, causal
    /// links and payload), then resumes this sled's sequence after the highest seq
    /// stored. A damaged or tampered op fails the open with an error naming it.
    pub async fn open_with(store: S, key: SigningKey, config: EventLogConfig) -> Result<Self> {
        let sled = bft_json_crdt::AuthorId::from(&key.verifying_key());
        let mut state = State::new(config.limits);
        let mut after = Position::START;
        let mut replayed = 0u64;
        loop {
            let page = store.load(after, config.replay_page.max(1)).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            replayed += page.len() as u64;
            replay_page(&mut state, page, &config)?;
        }
        if state.replica.buffered() > 0 {
            return Err(StoreError::corrupt(
                "store",
                format!(
                    "{} ops were stored before their dependencies (append order is not causal)",
                    state.replica.buffered()
                ),
            )
            .into());
        }
        tracing::info!(sled = %sled, ops = replayed, events = state.events.len(), "event log opened");
        Ok(EventLog {
            store,
            key,
            sled,
            config,
            state: RwLock::new(state),
            queue: Mutex::new(Vec::new()),
            writer: async_lock::Mutex::new(append::Writer::default()),
            listeners: RwLock::new(Vec::new()),
            counters: Counters::default(),
        })
    }
}

/// Decodes one stored op, checking it matches its row.
pub(crate) fn decode_record(
    position: Position,
    rec: &OpRecord,
    config: &EventLogConfig,
) -> Result<(SignedOp, Entry)> {
    let raw = RawOp {
        id: rec.id,
        bytes: rec.bytes.clone(),
    };
    let op = raw
        .decode(&config.limits)
        .map_err(|reason| Error::Tampered {
            position,
            id: rec.id,
            reason: Box::new(reason),
        })?;
    if op.author() != rec.author || op.seq() != rec.seq {
        return Err(StoreError::corrupt(
            format!("position {position} (op {})", rec.id),
            format!(
                "row says author {} seq {}, its bytes say author {} seq {}",
                rec.author,
                rec.seq,
                op.author(),
                op.seq()
            ),
        )
        .into());
    }
    let entry = parse_entry(&op)?;
    Ok((op, entry))
}

/// Parses and validates the entry an op carries.
pub(crate) fn parse_entry(op: &SignedOp) -> Result<Entry> {
    let entry = Entry::from_payload(op.payload()).map_err(|e| Error::BadPayload {
        id: op.id(),
        detail: e.to_string(),
    })?;
    entry.validate().map_err(|detail| Error::BadPayload {
        id: op.id(),
        detail,
    })?;
    Ok(entry)
}

fn replay_page(
    state: &mut State,
    page: Vec<(Position, OpRecord)>,
    config: &EventLogConfig,
) -> Result<()> {
    let mut positions = HashMap::with_capacity(page.len());
    let mut entries = HashMap::with_capacity(page.len());
    let mut ops = Vec::with_capacity(page.len());
    for (pos, rec) in &page {
        let (op, entry) = decode_record(*pos, rec, config)?;
        positions.insert(op.id(), *pos);
        entries.insert(op.id(), entry);
        ops.push(op);
    }
    let ingest = state.replica.ingest(ops);
    for d in &ingest.deliveries {
        match &d.result {
            Err(reason) => {
                return Err(Error::Tampered {
                    position: positions.get(&d.id).copied().unwrap_or_default(),
                    id: d.id,
                    reason: Box::new(reason.clone()),
                });
            }
            Ok(Outcome::Duplicate) => {
                return Err(StoreError::corrupt(
                    format!(
                        "position {}",
                        positions.get(&d.id).copied().unwrap_or_default()
                    ),
                    format!("op {} is stored twice", d.id),
                )
                .into());
            }
            Ok(_) => {}
        }
    }
    let mut ready = Vec::with_capacity(ingest.ready.len());
    for r in ingest.ready {
        // Ops released from the buffer came from an earlier page.
        let entry = match entries.remove(&r.op.id()) {
            Some(e) => e,
            None => parse_entry(&r.op)?,
        };
        ready.push((r.op, entry));
    }
    state.commit(ready);
    Ok(())
}
