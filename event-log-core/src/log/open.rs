//! Opening a log: replay the store, verify it, resume sequencing.

use bft_json_crdt::SigningKey;
use parking_lot::{Mutex, RwLock};

use super::decode::decode_record;
use super::follow::pull;
use super::scan::{Scan, ScanSink};
use super::{Counters, EventLog, EventLogConfig, OpenStats, append};
use crate::checkpoint::{self, Chain, Checkpoint};
use crate::damage::{DamagedRow, MissingOps};
use crate::error::{Error, Result};
use crate::event::SledId;
use crate::store::{OpStore, Position};
use crate::watermark::Mark;
use bft_json_crdt::VersionVector;

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
        let sealed = match store.get_meta(&ckpt_key).await {
            Ok(bytes) => bytes.and_then(|b| Checkpoint::open(&b, &sled)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replay checkpoint; verifying everything");
                None
            }
        };
        let mut trusted = sealed.clone();
        let (mut scan, last) = loop {
            match replay(&store, &config, trusted.as_ref()).await? {
                Replayed::Done { scan, last } => break (scan, last),
                Replayed::CheckpointMismatch => {
                    tracing::warn!(sled = %sled, "replay checkpoint does not match the store; verifying every op");
                    trusted = None;
                }
            }
        };
        // Rows that committed after the pages covering their positions were read
        // (a shared store's concurrent writers), and forks: read by `(author, seq)`
        // and by evidence, as a follower does.
        let late = pull(
            &store,
            &mut ScanSink(&mut scan, &config),
            config.replay_page,
        )
        .await?;
        scan.finish();
        if let Some(row) = own_chain_break(&scan, &sled) {
            return Err(Error::OwnChainDamaged { row: Box::new(row) });
        }
        // What signed frontiers say the store held: its checkpoint, and this
        // sled's watermark kept outside it.
        let mut claims = sealed.map(|c| c.frontier).unwrap_or_default();
        if let Some(mark) = load_mark(&config, &sled).await? {
            claims.raise(sled, mark.seq);
        }
        let missing: Vec<MissingOps> = claims
            .iter()
            .filter_map(|(a, s)| {
                let held = scan.state.replica.max_seq(a);
                (*s > held).then_some(MissingOps {
                    sled: *a,
                    held,
                    acknowledged: *s,
                })
            })
            .collect();
        for m in &missing {
            tracing::error!(sled = %m.sled, held = m.held, acknowledged = m.acknowledged,
                "the store lost acknowledged ops: {m}");
        }
        let signed_up_to = missing
            .iter()
            .find(|m| m.sled == sled)
            .map(|m| m.acknowledged);
        let mark_behind = claims.get(&sled) < scan.state.replica.max_seq(&sled);
        let clean = scan.damage.is_empty() && late.applied == 0 && missing.is_empty();
        if scan.verified > 0 && clean && config.save_checkpoints && !config.read_only {
            let frontier = scan.state.replica.version_vector();
            save_checkpoint(&store, key.signing_key(), &scan.chain, last, frontier).await;
        }
        let Scan {
            state,
            chain,
            damage,
            verified,
            ..
        } = *scan;
        tracing::info!(sled = %sled, ops = chain.ops, verified, damaged = damage.count(),
            events = state.replica.view_len(), "event log opened");
        crate::metrics::damaged(damage.count() as usize);
        let own_tip = state.replica.tip(&sled);
        let keys = super::KeyRegistry::new(sled);
        let mut state = state;
        state.keys = Some(keys.clone());
        let log = EventLog {
            store,
            key,
            config,
            state: RwLock::new(state),
            keys,
            queue: Mutex::new(Vec::new()),
            queued: event_listener::Event::new(),
            leader: async_lock::Mutex::new(append::LeaderState::default()),
            others_waiting: Default::default(),
            observers: RwLock::new(Vec::new()),
            counters: Counters::default(),
            opened: OpenStats {
                replayed: chain.ops,
                verified,
                damaged: damage.count(),
                missing: missing.len() as u64,
            },
            damage: Mutex::new(damage),
            missing: Mutex::new(missing),
            signed_up_to: Mutex::new(signed_up_to),
            verified: async_lock::Mutex::new((chain, last)),
        };
        if mark_behind {
            // The mark lags (written behind, or new): bring it up to the store.
            log.advance_mark(own_tip.map(|t| (t.seq(), t.id())));
        }
        Ok(log)
    }
}

/// This sled's mark from its watermark, if one is configured and holds one sealed
/// by this sled.
async fn load_mark(config: &EventLogConfig, sled: &SledId) -> Result<Option<Mark>> {
    let Some(w) = &config.watermark else {
        return Ok(None);
    };
    let bytes =
        w.0.load()
            .await
            .map_err(|source| Error::Watermark { source })?;
    let mark = bytes.as_deref().and_then(|b| Mark::open(b, sled));
    if bytes.is_some() && mark.is_none() {
        tracing::warn!(sled = %sled, "the watermark holds no mark sealed by this sled; ignoring it");
    }
    Ok(mark)
}

/// A damaged row that breaks this sled's own chain: one claiming a seq of ours
/// beyond the ops of ours that are intact (a forged row at a seq we hold intact is
/// only a forgery).
fn own_chain_break(scan: &Scan, sled: &SledId) -> Option<DamagedRow> {
    let intact = scan.state.replica.max_seq(sled);
    scan.damage
        .rows()
        .iter()
        .filter(|r| r.author == *sled && r.seq > intact)
        .min_by_key(|r| r.seq)
        .cloned()
}

/// Seals and stores a checkpoint; a failure only costs verification time later.
pub(crate) async fn save_checkpoint<S: OpStore>(
    store: &S,
    key: &SigningKey,
    chain: &Chain,
    last: Position,
    frontier: VersionVector,
) {
    let c = Checkpoint {
        position: last,
        ops: chain.ops,
        digest: chain.digest(),
        frontier,
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
        if !self.damage.lock().is_empty() {
            // The chain of a store with damaged rows may hash rows that failed
            // validation: it must never be sealed as verified.
            return Ok(0);
        }
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
                // Vouch only for the exact op this log verified: same id, same
                // signature (the id does not cover it), columns matching the bytes.
                let Ok((op, _)) = decode_record(rec, &self.config) else {
                    break 'pages;
                };
                let held = self.state.read().replica.get(&op.id());
                if !held.is_some_and(|h| h.matches(&op)) {
                    break 'pages;
                }
                chain.add(&op);
                *position = *pos;
                added += 1;
            }
        }
        if added > 0 && self.config.save_checkpoints && !self.config.read_only {
            let frontier = self.version_vector();
            save_checkpoint(
                &self.store,
                self.key.signing_key(),
                chain,
                *position,
                frontier,
            )
            .await;
        }
        Ok(added)
    }
}

enum Replayed {
    Done { scan: Box<Scan>, last: Position },
    CheckpointMismatch,
}

/// Replays the whole store in load order. Rows up to a valid checkpoint only have
/// their ids re-hashed and columns checked (and are hashed into the chain compared
/// with it); the rest are fully verified. Damaged rows are recorded, not fatal.
async fn replay<S: OpStore>(
    store: &S,
    config: &EventLogConfig,
    trusted: Option<&Checkpoint>,
) -> Result<Replayed> {
    let mut scan = Box::new(Scan::new(config));
    let mut after = Position::START;
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
            scan.trusted(prefix, config);
            if let Some(c) = trusted.filter(|_| !checked && (!rest.is_empty() || after == limit)) {
                if scan.chain.ops != c.ops || scan.chain.digest() != c.digest {
                    return false;
                }
                checked = true;
            }
            scan.verify(rest, config);
            true
        };
        let (next, matched) = futures::join!(store.load(after, page_size), work);
        if !matched {
            return Ok(Replayed::CheckpointMismatch);
        }
        page = next?;
    }
    if !checked {
        // The store ends before the checkpoint's position.
        return Ok(Replayed::CheckpointMismatch);
    }
    Ok(Replayed::Done { scan, last: after })
}
