//! Settling written and in-doubt ops: applying what the store made durable,
//! completing appends whose outcome was unknown, re-sequencing those whose seqs
//! another writer of this sled took (the protocol is in the [module docs](super)).

use std::sync::atomic::Ordering;

use bft_json_crdt::SignedOp;

use super::{EventLog, LeaderState, Pending};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::event::LoggedEvent;
use crate::store::{OpRecord, OpStore, StoreError};

impl<S: OpStore> EventLog<S> {
    /// Completes appends whose outcome was unknown ([`Error::InDoubt`]), without
    /// new entries. Returns how many in-doubt entries it
    /// completed; an `Err` means the store still fails (nothing is lost: they stay in
    /// doubt for the next try).
    pub async fn flush(&self) -> Result<usize> {
        let mut w = self.lock_leader().await;
        if w.in_doubt.is_empty() {
            return Ok(0);
        }
        let n = self.retry_in_doubt(&mut w).await?;
        if std::mem::take(&mut w.behind) {
            // Their seqs were taken: signed again after catching up (see
            // `resequence_in_doubt`), and written now.
            drop(w);
            self.catch_up().await?;
            let mut w = self.lock_leader().await;
            self.lead(&mut w).await;
        }
        Ok(n)
    }

    /// Appends the in-doubt ops again (idempotent) and applies them; returns how many.
    async fn retry_in_doubt(&self, w: &mut LeaderState) -> std::result::Result<usize, StoreError> {
        let records: Vec<OpRecord> = w
            .in_doubt
            .iter()
            .map(|(op, entry)| OpRecord::with_entry(op, false, entry))
            .collect();
        match self.store.append(&records).await {
            Ok(()) => {
                let ops = std::mem::take(&mut w.in_doubt);
                let n = ops.len();
                tracing::info!(ops = n, "completed appends whose outcome was unknown");
                self.advance_mark(ops.last().map(|(op, _)| (op.seq(), op.id())));
                let events = self.state.write().apply(ops);
                self.notify(&events);
                self.settle_unblocked().await;
                Ok(n)
            }
            Err(e @ StoreError::Conflict { .. }) => {
                tracing::warn!(error = %e, "seqs of appends in doubt are taken; signing them again");
                self.resequence_in_doubt(w).await
            }
            Err(e) => Err(e),
        }
    }

    /// After the store refused the in-doubt ops with a conflict (nothing written; a
    /// previous process of this sled stored its own ops at those seqs, late): the
    /// in-doubt ops that are not stored were never written anywhere, so their
    /// entries are queued again, first, as requests nobody waits for (their callers
    /// already learnt "in doubt"), to be signed at new seqs once the log caught up
    /// (`behind`). Those that are stored (from an earlier try) come in by that
    /// catch-up. Entries with idempotency keys already committed are not written
    /// again. Returns how many entries were settled this way.
    async fn resequence_in_doubt(
        &self,
        w: &mut LeaderState,
    ) -> std::result::Result<usize, StoreError> {
        let mut unstored = Vec::new();
        for (op, entry) in &w.in_doubt {
            if self.store.get(&op.id()).await?.is_none() {
                unstored.push(entry.clone());
            }
        }
        let n = w.in_doubt.len();
        w.in_doubt.clear();
        w.behind = true;
        if !unstored.is_empty() {
            let payloads = unstored.iter().map(Entry::to_payload).collect();
            // Keys the store holds already are not written again.
            let keys = self.look_up_keys(&unstored).await.map_err(|e| match e {
                Error::Store(e) => e,
                other => StoreError::corrupt("an idempotency key's row", other.to_string()),
            })?;
            let (request, _) = Pending::new(unstored, payloads, true, keys);
            self.queue.lock().insert(0, request);
        }
        Ok(n)
    }

    /// Completes the in-doubt ops. On failure, fails every queued request (their
    /// seqs would follow the ops in doubt) and returns false.
    pub(super) async fn complete_in_doubt(&self, w: &mut LeaderState) -> bool {
        match self.retry_in_doubt(w).await {
            Ok(_) => true,
            Err(e) => {
                let waiting = std::mem::take(&mut *self.queue.lock());
                for p in waiting {
                    let _ = p.reply.send(Err(Error::Store(e.clone())));
                }
                false
            }
        }
    }

    /// Applies ops the store made durable, and answers the callers of the last `n`.
    pub(super) async fn settle_stored(
        &self,
        ops: Vec<(SignedOp, Entry)>,
        n: usize,
        callers: Vec<Pending>,
    ) {
        self.counters
            .appended
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        crate::metrics::group_written(ops.len());
        let replies: Vec<LoggedEvent> = ops[ops.len() - n..]
            .iter()
            .map(|(op, entry)| crate::state::event_of(op, entry.clone()))
            .collect();
        self.advance_mark(ops.last().map(|(op, _)| (op.seq(), op.id())));
        let events = self.state.write().apply(ops);
        self.notify(&events);
        // Answer before anything else is awaited: if this leader's future is dropped
        // later, these callers still learn that their entries are stored.
        let mut it = replies.into_iter();
        for p in callers {
            let mine: Vec<LoggedEvent> = it.by_ref().take(p.entries.len()).collect();
            let _ = p.reply.send(Ok(mine));
        }
        self.settle_unblocked().await;
    }

    /// Peer ops that waited in the buffer for one of our own ops (possible when a peer
    /// saw our op in a shared store before we committed it): validate, persist and
    /// apply them now. On a store error they are dropped from the buffer and logged;
    /// the peer sends them again.
    async fn settle_unblocked(&self) {
        let ready = {
            let mut st = self.state.write();
            let ops = st.replica.take_unblocked();
            if ops.is_empty() {
                return;
            }
            st.replica.ingest(ops).ready
        };
        if let Err(e) = self.persist_and_apply(ready, |_| false).await {
            tracing::warn!(error = %e, "could not persist buffered ops released by a local append");
        }
    }
}
