//! Deliberately broken stores prove that the suite can fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use event_log_conformance::{FnHarness, scenarios};
use event_log_core::{
    AuthorId, Causal, MemStore, OpId, OpRecord, OpStore, Position, StoreError, VersionVector,
};

#[derive(Clone, Copy, Debug)]
enum Flaw {
    /// Silently drops every 7th op appended.
    DropsEvery7th,
    /// Returns each `load` page in reverse order.
    ReordersLoad,
    /// Writes a conflicting op instead of refusing the batch (as evidence).
    IgnoresConflicts,
    /// `since` ignores the limit-grouping rule and skips the last op of a page.
    SinceSkips,
    /// Claims to pipeline ordered appends but writes them without checking the
    /// predecessor.
    IgnoresGuard,
    /// `timeline` resumes at its cursor instead of after it (repeats an op).
    TimelineRepeats,
    /// `story_ops` also returns the ops of stories that start with the one asked.
    StoryPrefix,
    /// `keyed` ignores the author.
    KeyedAnyAuthor,
    /// `author_ops` cuts a page at the limit even inside one seq.
    AuthorOpsSplitsSeq,
}

#[derive(Clone)]
struct Broken {
    inner: MemStore,
    flaw: Flaw,
    appended: Arc<AtomicU64>,
}

#[async_trait]
impl OpStore for Broken {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        match self.flaw {
            Flaw::DropsEvery7th => {
                let kept: Vec<OpRecord> = ops
                    .iter()
                    .filter(|_| self.appended.fetch_add(1, Ordering::Relaxed) % 7 != 6)
                    .cloned()
                    .collect();
                self.inner.append(&kept).await
            }
            Flaw::IgnoresConflicts => {
                let relaxed: Vec<OpRecord> = ops
                    .iter()
                    .map(|r| OpRecord {
                        evidence: true,
                        ..r.clone()
                    })
                    .collect();
                self.inner.append(&relaxed).await
            }
            _ => self.inner.append(ops).await,
        }
    }
    fn append_pipeline(&self) -> usize {
        match self.flaw {
            Flaw::IgnoresGuard => 2,
            _ => 1,
        }
    }
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        match self.flaw {
            Flaw::IgnoresGuard => self.inner.append(ops).await,
            _ => self.inner.append_after(after, ops).await,
        }
    }
    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        let mut page = self.inner.load(after, limit).await?;
        if let Flaw::ReordersLoad = self.flaw
            && page.len() > 1
        {
            let last = page.last().map(|(p, _)| *p);
            page.reverse();
            // keep the cursor moving forward so replay terminates
            if let (Some(last), Some(first)) = (last, page.first_mut()) {
                first.0 = last;
            }
        }
        Ok(page)
    }
    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let mut page = self.inner.since(vv, limit).await?;
        if let Flaw::SinceSkips = self.flaw
            && page.len() > 1
        {
            page.remove(page.len() - 2);
        }
        Ok(page)
    }
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let mut page = self.inner.author_ops(author, after, limit).await?;
        if let Flaw::AuthorOpsSplitsSeq = self.flaw {
            page.truncate(limit.max(1));
        }
        Ok(page)
    }
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        if let Flaw::TimelineRepeats = self.flaw
            && *after != Causal::START
        {
            let held = self.inner.get(&after.id).await?;
            let mut page = self.inner.timeline(after, limit).await?;
            if let Some(r) = held {
                page.insert(0, r);
                page.truncate(limit.max(1));
            }
            return Ok(page);
        }
        self.inner.timeline(after, limit).await
    }
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        if let Flaw::StoryPrefix = self.flaw {
            let all = self.inner.timeline(after, usize::MAX).await?;
            return Ok(all
                .into_iter()
                .filter(|r| r.story.as_deref().is_some_and(|s| s.starts_with(story)))
                .take(limit.max(1))
                .collect());
        }
        self.inner.story_ops(story, after, limit).await
    }
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        if let Flaw::KeyedAnyAuthor = self.flaw {
            let all = self.inner.timeline(&Causal::START, usize::MAX).await?;
            let mut hits: Vec<OpRecord> = all
                .into_iter()
                .filter(|r| r.key.as_deref() == Some(key))
                .collect();
            hits.sort_by_key(|r| (r.seq, r.id));
            hits.truncate(limit.max(1));
            return Ok(hits);
        }
        self.inner.keyed(author, key, limit).await
    }
    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.inner.heads().await
    }
    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
}

#[derive(Clone)]
struct Loc(Broken);

impl std::fmt::Debug for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Loc({:?})", self.0.flaw)
    }
}

/// Each location is one shared broken MemStore with `flaw`; reopening hands out a
/// clone (same data).
type BrokenHarness = FnHarness<(), Loc, Broken>;

fn harness(flaw: Flaw) -> BrokenHarness {
    let create = move || {
        let store = Broken {
            inner: MemStore::new(),
            flaw,
            appended: Arc::new(AtomicU64::new(0)),
        };
        Ok(((), Loc(store)))
    };
    FnHarness::new(create, |l: Loc| async move { Ok::<_, StoreError>(l.0) })
}

type Scenario =
    fn(&BrokenHarness, &tokio::runtime::Runtime) -> Result<(), event_log_conformance::Failure>;

fn must_fail(flaw: Flaw, name: &str, scenario: Scenario) {
    let failure = event_log_conformance::run(&harness(flaw), scenario).expect_err(&format!(
        "the suite must catch a store that {flaw:?} in {name}"
    ));
    let text = failure.to_string();
    assert!(
        text.starts_with(&format!("[{name}]")),
        "failure names its scenario: {text}"
    );
}

#[test]
fn catches_a_store_that_drops_ops() {
    must_fail(Flaw::DropsEvery7th, "round_trip", scenarios::round_trip);
    must_fail(
        Flaw::DropsEvery7th,
        "restart_programs",
        scenarios::restart_programs,
    );
}

#[test]
fn catches_a_store_that_reorders_replay() {
    must_fail(Flaw::ReordersLoad, "round_trip", scenarios::round_trip);
    must_fail(Flaw::ReordersLoad, "pagination", scenarios::pagination);
}

#[test]
fn catches_a_store_that_ignores_conflicts() {
    must_fail(
        Flaw::IgnoresConflicts,
        "conflict_rejected_atomically",
        scenarios::conflict_rejected_atomically,
    );
}

#[test]
fn catches_a_store_whose_since_skips_ops() {
    must_fail(Flaw::SinceSkips, "pagination", scenarios::pagination);
}

#[test]
fn catches_a_store_that_ignores_the_ordered_append_guard() {
    must_fail(
        Flaw::IgnoresGuard,
        "ordered_append",
        scenarios::ordered_append,
    );
}

#[test]
fn catches_a_store_whose_indexed_reads_are_wrong() {
    must_fail(
        Flaw::TimelineRepeats,
        "timeline_matches_the_reference",
        scenarios::timeline_matches_the_reference,
    );
    must_fail(
        Flaw::StoryPrefix,
        "story_ops_match_the_reference",
        scenarios::story_ops_match_the_reference,
    );
    must_fail(
        Flaw::KeyedAnyAuthor,
        "keyed_matches_the_reference",
        scenarios::keyed_matches_the_reference,
    );
    must_fail(
        Flaw::AuthorOpsSplitsSeq,
        "author_ops_match_the_reference",
        scenarios::author_ops_match_the_reference,
    );
}
