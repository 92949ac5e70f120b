//! Deployment membership: the sleds allowed to author ops.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::ids::AuthorId;

/// The set of author keys a deployment accepts ops from. Every replica of a
/// deployment should use the same set (like [`crate::Limits`]): an op accepted by
/// one replica and refused by another is a divergence.
///
/// Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq)]
pub struct Membership(Arc<BTreeSet<AuthorId>>);

impl Membership {
    /// A membership of these authors.
    pub fn new(authors: impl IntoIterator<Item = AuthorId>) -> Self {
        Membership(Arc::new(authors.into_iter().collect()))
    }

    /// True if `author` may author ops.
    pub fn allows(&self, author: &AuthorId) -> bool {
        self.0.contains(author)
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = &AuthorId> + '_ {
        self.0.iter()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if nobody may author.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl FromIterator<AuthorId> for Membership {
    fn from_iter<I: IntoIterator<Item = AuthorId>>(iter: I) -> Self {
        Membership::new(iter)
    }
}
