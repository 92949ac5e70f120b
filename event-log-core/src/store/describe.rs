//! What a store says about itself to operators: [`StoreDescription`] (backend,
//! schema version, durability mode; `evlog info`) and [`SchemaStatus`] (where its
//! schema stands against this build; `evlog migrate`).

use serde::Serialize;

/// What a store says about itself: [`OpStore::describe`](super::OpStore::describe).
///
/// Informational: the log never decides anything on it. Build one with
/// [`StoreDescription::new`] and the `with_*` setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreDescription {
    /// The backend, in the words of the URL scheme: `memory`, `sqlite`, `redb`,
    /// `postgres`, or a third-party store's own name.
    pub backend: String,
    /// The version of the on-disk schema (or file format) the store is at, if it
    /// has one.
    pub schema_version: Option<u32>,
    /// The durability mode in force, in the backend's words (e.g. SQLite's
    /// `synchronous=FULL`), so an operator can check it against the README's table.
    pub durability: String,
    /// Opened for reading only.
    pub read_only: bool,
}

impl StoreDescription {
    /// A description of a store of `backend` with this `durability`, no schema
    /// version, writable.
    pub fn new(backend: impl Into<String>, durability: impl Into<String>) -> Self {
        StoreDescription {
            backend: backend.into(),
            schema_version: None,
            durability: durability.into(),
            read_only: false,
        }
    }

    /// Sets [`StoreDescription::schema_version`].
    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = Some(version);
        self
    }

    /// Sets [`StoreDescription::read_only`].
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
}

/// One schema migration: the version it brings the store to, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// The version after this step.
    pub version: u32,
    /// What the step changes, in a few words.
    pub description: String,
}

impl Migration {
    /// A step to `version` that does `description`.
    pub fn new(version: u32, description: impl Into<String>) -> Self {
        Migration {
            version,
            description: description.into(),
        }
    }
}

/// Where a store's schema stands against the version this build writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SchemaStatus {
    /// The backend (as in [`StoreDescription::backend`]).
    pub backend: String,
    /// The version the store is at; `None` if there is no store there yet (a
    /// migration would create it).
    pub current: Option<u32>,
    /// The version this build writes and reads.
    pub target: u32,
    /// The steps a migration applies, in order (empty when up to date or newer).
    pub pending: Vec<Migration>,
}

impl SchemaStatus {
    /// The status of a store of `backend` at `current` (`None`: no store yet),
    /// given every step of this build in order (`steps[i]` brings version `i` to
    /// `i + 1`): the target is the last step's version and the pending steps are
    /// those above `current`.
    pub fn from_steps(
        backend: impl Into<String>,
        current: Option<u32>,
        steps: &[Migration],
    ) -> Self {
        let target = steps.last().map_or(0, |m| m.version);
        let from = current.unwrap_or(0);
        SchemaStatus {
            backend: backend.into(),
            current,
            target,
            pending: steps.iter().filter(|m| m.version > from).cloned().collect(),
        }
    }

    /// The store is at the version this build writes: nothing to do.
    pub fn is_current(&self) -> bool {
        self.current == Some(self.target)
    }

    /// The store was written by a newer build: this one neither reads nor migrates it.
    pub fn is_newer(&self) -> bool {
        self.current.is_some_and(|v| v > self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<Migration> {
        (1..=3)
            .map(|v| Migration::new(v, format!("step {v}")))
            .collect()
    }

    #[test]
    fn pending_steps_are_those_above_the_current_version() {
        let missing = SchemaStatus::from_steps("x", None, &steps());
        assert_eq!(missing.target, 3);
        assert_eq!(missing.pending.len(), 3);
        assert!(!missing.is_current() && !missing.is_newer());

        let old = SchemaStatus::from_steps("x", Some(1), &steps());
        let versions: Vec<u32> = old.pending.iter().map(|m| m.version).collect();
        assert_eq!(versions, [2, 3]);

        let current = SchemaStatus::from_steps("x", Some(3), &steps());
        assert!(current.is_current() && current.pending.is_empty());

        let newer = SchemaStatus::from_steps("x", Some(4), &steps());
        assert!(newer.is_newer() && newer.pending.is_empty() && !newer.is_current());
    }
}
