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
        config.validate()?;
        let key = std::sync::Arc::new(bft_json_crdt::KeyPair::new(key));
        let sled = key.author();
        if !config.read_only {
            // Before anything is read: a previous process of this sled may still
            // have a write in flight.
            store.acquire_sled(&sled).await?;
        }
        let ckpt_key = checkpoint::key(&sled);
        // (A checkpoint is sealed by this sled's key; another key ignores it.)
        let mut trusted = match store.get_meta(&ckpt_key).await {
            Ok(bytes) => bytes.and_then(|b| Checkpoint::open(&b, key.signing_key())),
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
        if verified > 0 && config.save_checkpoints && !config.read_only {
            save_checkpoint(&store, key.signing_key(), &chain, last).await;
        }
        tracing::info!(sled = %sled, ops = chain.ops, verified, events = state.events.len(), "event log opened");
        Ok(EventLog {
            store,
            key,
            config,
            state: RwLock::new(*state),
            queue: Mutex::new(Vec::new()),
            queued: event_listener::Event::new(),
            writer: async_lock::Mutex::new(append::Writer::default()),
            others_waiting: Default::default(),
            listeners: RwLock::new(Vec::new()),
            counters: Counters::default(),
            opened: OpenStats {
                replayed: chain.ops,
                verified,
            },
            verified: async_lock::Mutex::new((chain, last)),
        })
    }
}

/// Seals and stores a checkpoint; a failure only costs verification time later.
pub(crate) async fn save_checkpoint<S: OpStore>(
    store: &S,
    key: &SigningKey,
    chain: &Chain,
    last: Position,
) {
    let c = Checkpoint {
        position: last,
        ops: chain.ops,
        digest: chain.digest(),
    };
    let sled = bft_json_crdt::AuthorId::from(&key.verifying_key());
    if let Err(e) = store.put_meta(&checkpoint::key(&sled), &c.seal(key)).await {
        tracing::warn!(error = %e, "cannot save the replay checkpoint");
    }
}

impl<S: OpStore> EventLog<S> {
    /// Extends this sled's signed replay checkpoint over the ops stored since the last
    /// one that this log already holds (it verified them when they were appended or
    /// merged), and saves it, so the next open re-verifies nothing before it. Stops at
    /// the first stored op this log does not hold (another writer's, not yet caught
    /// up). Called by [`EventLog::close`]; call it periodically in long-running
    /// services. Returns how many ops it added.
    pub async fn checkpoint(&self) -> Result<u64> {
        let mut guard = self.verified.lock().await;
        let (chain, position) = &mut *guard;
        let mut added = 0u64;
        'pages: loop {
            let page = self
                .store
                .load(*position, self.config.replay_page.max(1))
                .await?;
            if page.is_empty() {
                break;
            }
            for (pos, rec) in &page {
                let raw = RawOp {
                    id: rec.id,
                    bytes: rec.bytes.clone(),
                };
                let Ok(op) = raw.decode(&self.config.limits) else {
                    break 'pages;
                };
                // Vouch only for the exact op this log verified: same id, same
                // signature (the id does not cover it), row fields matching the bytes.
                let held = self
                    .state
                    .read()
                    .replica
                    .get(&op.id())
                    .map(|h| *h.signature());
                if held != Some(*op.signature()) || op.author() != rec.author || op.seq() != rec.seq
                {
                    break 'pages;
                }
                chain.add(&op);
                *position = *pos;
                added += 1;
            }
        }
        if added > 0 && self.config.save_checkpoints && !self.config.read_only {
            save_checkpoint(&self.store, self.key.signing_key(), chain, *position).await;
        }
        Ok(added)
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
    let page_size = config.replay_page.max(1);
    let mut page = store.load(after, page_size).await?;
    // Each page is decoded and applied while the store reads the next one.
    while let Some((last, _)) = page.last() {
        after = *last;
        let work = async {
            let split = page.partition_point(|(pos, _)| *pos <= limit);
            let (prefix, rest) = page.split_at(split);
            let ops = decode_all(prefix, config)?;
            for (op, _) in &ops {
                chain.add(op);
            }
            state.commit_quiet(ops);
            if let Some(c) = trusted.filter(|_| !checked && (!rest.is_empty() || after == limit)) {
                if chain.ops != c.ops || chain.digest() != c.digest {
                    return Ok(false);
                }
                checked = true;
            }
            if !rest.is_empty() {
                verified += rest.len() as u64;
                replay_page(&mut state, &mut chain, rest, config)?;
            }
            Ok::<bool, Error>(true)
        };
        let (next, matched) = futures::join!(store.load(after, page_size), work);
        if !matched? {
            return Ok(Replayed::CheckpointMismatch);
        }
        page = next?;
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
    let op = RawOp::decode_claimed(rec.id, &rec.bytes, &config.limits).map_err(|reason| {
        Error::Tampered {
            position,
            id: rec.id,
            reason: Box::new(reason),
        }
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

/// Decodes many stored ops (ids re-hashed, payloads parsed), spread over the cores.
fn decode_all(
    page: &[(Position, OpRecord)],
    config: &EventLogConfig,
) -> Result<Vec<(SignedOp, Entry)>> {
    const MIN_PARALLEL: usize = 512;
    let decode = |(pos, rec): &(Position, OpRecord)| decode_record(*pos, rec, config);
    if bft_json_crdt::cores() < 2 || page.len() < MIN_PARALLEL {
        return page.iter().map(decode).collect();
    }
    // Spread over the cores (rayon's pool, as signing and verification), keeping
    // the page's order so that the first bad record is the one reported.
    use rayon::prelude::*;
    let decoded: Vec<Result<(SignedOp, Entry)>> = page
        .par_iter()
        .with_min_len(MIN_PARALLEL / 4)
        .map(decode)
        .collect();
    decoded.into_iter().collect()
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
    state.commit_quiet(ready);
    Ok(())
}
