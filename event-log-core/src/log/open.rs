//! Opening a log: replay the store, verify it, resume sequencing.

use std::collections::HashMap;

use bft_json_crdt::{Outcome, RawOp, SignedOp, SigningKey};
use parking_lot::{Mutex, RwLock};

use super::{Counters, EventLog, EventLogConfig, OpenStats, append};
use crate::checkpoint::{self, Chain, Checkpoint};
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
        let ckpt_key = checkpoint::key(&sled);
        let mut trusted = match store.get_meta(&ckpt_key).await {
            Ok(bytes) => bytes.and_then(|b| Checkpoint::open(&b, &key)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replay checkpoint; verifying everything");
                None
            }
        };
        let (state, chain, last, verified) = loop {
            match replay(&store, &config, trusted.as_ref()).await? {
                Replayed::Done {
                    state,
                    chain,
                    last,
                    verified,
                } => break (state, chain, last, verified),
                Replayed::CheckpointMismatch => {
                    tracing::warn!(sled = %sled, "replay checkpoint does not match the store; verifying every op");
                    trusted = None;
                }
            }
        };
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
        if verified > 0 {
            let c = Checkpoint {
                position: last,
                ops: chain.ops,
                digest: chain.digest(),
            };
            if let Err(e) = store.put_meta(&ckpt_key, &c.seal(&key)).await {
                tracing::warn!(error = %e, "cannot save the replay checkpoint");
            }
        }
        tracing::info!(sled = %sled, ops = chain.ops, verified, events = state.events.len(), "event log opened");
        Ok(EventLog {
            store,
            key,
            sled,
            config,
            state: RwLock::new(*state),
            queue: Mutex::new(Vec::new()),
            writer: async_lock::Mutex::new(append::Writer::default()),
            listeners: RwLock::new(Vec::new()),
            counters: Counters::default(),
            opened: OpenStats {
                replayed: chain.ops,
                verified,
            },
        })
    }
}

enum Replayed {
    Done {
        state: Box<State>,
        chain: Chain,
        last: Position,
        verified: u64,
    },
    CheckpointMismatch,
}

/// Replays the whole store. Ops up to a valid checkpoint only have their ids checked
/// (and are hashed into the chain compared with it); the rest are fully verified.
async fn replay<S: OpStore>(
    store: &S,
    config: &EventLogConfig,
    trusted: Option<&Checkpoint>,
) -> Result<Replayed> {
    let mut state = State::new(config.limits);
    let mut chain = Chain::default();
    let mut after = Position::START;
    let mut verified = 0u64;
    let limit = trusted.map_or(Position::START, |c| c.position);
    let mut checked = trusted.is_none();
    loop {
        let page = store.load(after, config.replay_page.max(1)).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let split = page.partition_point(|(pos, _)| *pos <= limit);
        let (prefix, rest) = page.split_at(split);
        let mut ops = Vec::with_capacity(prefix.len());
        for (pos, rec) in prefix {
            let (op, entry) = decode_record(*pos, rec, config)?;
            chain.add(&op);
            ops.push((op, entry));
        }
        state.commit(ops);
        if let Some(c) = trusted.filter(|_| !checked && (!rest.is_empty() || after == limit)) {
            if chain.ops != c.ops || chain.digest() != c.digest {
                return Ok(Replayed::CheckpointMismatch);
            }
            checked = true;
        }
        if !rest.is_empty() {
            verified += rest.len() as u64;
            replay_page(&mut state, &mut chain, rest, config)?;
        }
    }
    if !checked {
        // The store ends before the checkpoint's position.
        return Ok(Replayed::CheckpointMismatch);
    }
    Ok(Replayed::Done {
        state: Box::new(state),
        chain,
        last: after,
        verified,
    })
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
    chain: &mut Chain,
    page: &[(Position, OpRecord)],
    config: &EventLogConfig,
) -> Result<()> {
    let mut positions = HashMap::with_capacity(page.len());
    let mut entries = HashMap::with_capacity(page.len());
    let mut ops = Vec::with_capacity(page.len());
    for (pos, rec) in page {
        let (op, entry) = decode_record(*pos, rec, config)?;
        chain.add(&op);
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
