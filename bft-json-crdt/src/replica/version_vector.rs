//! [`VersionVector`]: the highest seq held per author.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::AuthorId;

/// Highest seq held per author. A missing author means 0 (nothing held).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(pub BTreeMap<AuthorId, u64>);

impl VersionVector {
    /// An empty vector (holds nothing).
    pub fn new() -> Self {
        Self::default()
    }
    /// The highest seq held for `author` (0 if none).
    pub fn get(&self, author: &AuthorId) -> u64 {
        self.0.get(author).copied().unwrap_or(0)
    }
    /// Raises the entry for `author` to at least `seq`.
    pub fn raise(&mut self, author: AuthorId, seq: u64) {
        let e = self.0.entry(author).or_insert(0);
        if *e < seq {
            *e = seq;
        }
    }
    /// Sets the entry for `author`.
    pub fn set(&mut self, author: AuthorId, seq: u64) {
        if seq == 0 {
            self.0.remove(&author);
        } else {
            self.0.insert(author, seq);
        }
    }
    /// True if every entry of `other` is at most ours.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(a, s)| self.get(a) >= *s)
    }
    /// Entries, in author order.
    pub fn iter(&self) -> impl Iterator<Item = (&AuthorId, &u64)> {
        self.0.iter()
    }
    /// Number of authors with at least one op.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True if no author has an op.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
