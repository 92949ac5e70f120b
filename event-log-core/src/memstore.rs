//! [`MemStore`]: an in-memory [`OpStore`], for tests and for applications that embed
//! only the core.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use parking_lot::Mutex;

use crate::store::{
    Causal, OpKey, OpRecord, OpStore, Position, StoreDescription, StoreError, rules,
};

#[derive(Default)]
struct Inner {
    /// Index i holds position i + 1.
    rows: Vec<OpRecord>,
    by_id: HashMap<OpId, usize>,
    /// (author, seq) → primary row.
    primary: HashMap<(AuthorId, u64), usize>,
    /// (author, seq, id) → row, for `since`.
    by_author: BTreeMap<(AuthorId, u64, OpId), usize>,
    /// Evidence ops, for `evidence`.
    evidence: BTreeSet<OpKey>,
    /// The causal order, for `timeline`.
    by_causal: BTreeMap<Causal, usize>,
    /// (story, causal point), for `story_ops`.
    by_story: BTreeMap<(String, Causal), usize>,
    /// (author, idempotency key, seq, id), for `keyed`.
    by_key: BTreeMap<(AuthorId, String, u64, OpId), usize>,
    meta: HashMap<String, Vec<u8>>,
}

impl Inner {
    fn append(&mut self, ops: &[OpRecord]) -> Result<(), StoreError> {
        let new_ops = rules::plan_append(
            ops,
            |id| Ok::<_, StoreError>(self.by_id.contains_key(id)),
            |author, seq| Ok(self.primary.get(&(*author, seq)).map(|&i| self.rows[i].id)),
        )??;
        for r in new_ops {
            let i = self.rows.len();
            self.by_id.insert(r.id, i);
            if r.evidence {
                self.evidence.insert(OpKey {
                    author: r.author,
                    seq: r.seq,
                    id: r.id,
                });
            } else {
                self.primary.insert((r.author, r.seq), i);
            }
            self.by_author.insert((r.author, r.seq, r.id), i);
            self.by_causal.insert(r.causal(), i);
            if let Some(story) = &r.story {
                self.by_story.insert((story.clone(), r.causal()), i);
            }
            if let Some(key) = &r.key {
                self.by_key.insert((r.author, key.clone(), r.seq, r.id), i);
            }
            self.rows.push(r.clone());
        }
        Ok(())
    }
}

/// An in-memory store. Nothing survives the process, so "durable" means "held by
/// this value": clones share the same ops, and reopening an [`crate::EventLog`] on
/// a clone is how tests simulate a restart.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: std::sync::Arc<Mutex<Inner>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the bytes of the op at `position` (1-based) — for tests that simulate
    /// damage on disk. Returns false if there is no such position.
    pub fn tamper(&self, position: Position, f: impl FnOnce(&mut OpRecord)) -> bool {
        let mut g = self.inner.lock();
        let Some(i) = (position.0 as usize).checked_sub(1) else {
            return false;
        };
        match g.rows.get_mut(i) {
            Some(r) => {
                f(r);
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl OpStore for MemStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.inner.lock().append(ops)
    }

    /// Atomic: the check and the append happen under one lock, and an append runs
    /// to completion in its first poll, so calls take effect in call order.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        let mut g = self.inner.lock();
        if let Some(after) = after
            && !g.by_id.contains_key(after)
        {
            return Err(StoreError::MissingPredecessor { after: *after });
        }
        g.append(ops)
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        let g = self.inner.lock();
        let start = (after.0 as usize).min(g.rows.len());
        Ok(g.rows[start..]
            .iter()
            .take(limit.max(1))
            .enumerate()
            .map(|(k, r)| (Position((start + k + 1) as u64), r.clone()))
            .collect())
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let g = self.inner.lock();
        let limit = limit.max(1);
        let mut out: Vec<OpRecord> = Vec::new();
        let mut authors: Vec<AuthorId> = Vec::new();
        for (a, _, _) in g.by_author.keys() {
            if authors.last() != Some(a) {
                authors.push(*a);
            }
        }
        for a in authors {
            let Some(first) = vv.get(&a).checked_add(1) else {
                continue;
            };
            let from = (a, first, OpId([0; 32]));
            let to = (a, u64::MAX, OpId([0xff; 32]));
            for (&(_, seq, _), &i) in g.by_author.range(from..=to) {
                if out.len() >= limit && out.last().is_none_or(|l| l.author != a || l.seq != seq) {
                    return Ok(out);
                }
                out.push(g.rows[i].clone());
            }
        }
        Ok(out)
    }

    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let g = self.inner.lock();
        let limit = limit.max(1);
        let mut out: Vec<OpRecord> = Vec::new();
        let Some(first) = after.checked_add(1) else {
            return Ok(out);
        };
        let from = (*author, first, OpId([0; 32]));
        let to = (*author, u64::MAX, OpId([0xff; 32]));
        for (&(_, seq, _), &i) in g.by_author.range(from..=to) {
            if out.len() >= limit && out.last().is_none_or(|l| l.seq != seq) {
                break;
            }
            out.push(g.rows[i].clone());
        }
        Ok(out)
    }

    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let g = self.inner.lock();
        Ok(g.by_causal
            .range((
                std::ops::Bound::Excluded(*after),
                std::ops::Bound::Unbounded,
            ))
            .take(limit.max(1))
            .map(|(_, &i)| g.rows[i].clone())
            .collect())
    }

    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let g = self.inner.lock();
        let from = (story.to_owned(), *after);
        Ok(g.by_story
            .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
            .take_while(|((s, _), _)| s == story)
            .take(limit.max(1))
            .map(|(_, &i)| g.rows[i].clone())
            .collect())
    }

    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let g = self.inner.lock();
        let from = (*author, key.to_owned(), 0, OpId([0; 32]));
        Ok(g.by_key
            .range(from..)
            .take_while(|((a, k, _, _), _)| a == author && k == key)
            .take(limit.max(1))
            .map(|(_, &i)| g.rows[i].clone())
            .collect())
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        let g = self.inner.lock();
        let mut vv = VersionVector::new();
        for (a, s, _) in g.by_author.keys() {
            vv.raise(*a, *s);
        }
        Ok(vv)
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        let g = self.inner.lock();
        Ok(g.by_id.get(id).map(|&i| g.rows[i].clone()))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().rows.len() as u64)
    }

    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        Ok(self.inner.lock().evidence.iter().copied().collect())
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.lock().meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner
            .lock()
            .meta
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn describe(&self) -> StoreDescription {
        StoreDescription::new("memory", "none: nothing survives the process")
    }
}
