//! The conflict rule every store applies to an append, written once for store authors.
//!
//! [`OpStore::append`](super::OpStore::append) promises idempotency by id and one
//! primary op per `(author, seq)`. A backend does not re-implement that rule: it asks
//! [`plan_append`] which ops of a call to write, supplying two lookups over what it
//! already holds, and then writes exactly those ops (in one transaction) or returns
//! the conflict. As `sqlx-core` gives its drivers shared helpers, this module gives
//! every store (`MemStore`, SQLite, redb, PostgreSQL, yours) the same answer.
//!
//! The rule, for the ops of one call in slice order:
//! - an op whose id the store already holds, or that appeared earlier in the call,
//!   is skipped (its stored row is not changed);
//! - an evidence op (`evidence == true`) is exempt from the `(author, seq)` rule;
//! - a primary op at an `(author, seq)` held by a different primary op, stored or
//!   earlier in the call, refuses the whole call with [`StoreError::Conflict`],
//!   naming the author, the seq, the op that holds it and the refused op;
//! - the whole call is checked before anything is written, so a conflict writes
//!   nothing.

use std::collections::{HashMap, HashSet};

use bft_json_crdt::{AuthorId, OpId};

use super::{OpRecord, StoreError};

/// What the rule reads of an op: its id, author, seq and whether it is evidence.
///
/// Implemented for [`OpRecord`]; a backend that encodes ops before its writer sees
/// them implements it for its own pending-op type.
pub trait RuleOp {
    /// The op id.
    fn id(&self) -> OpId;
    /// The author.
    fn author(&self) -> AuthorId;
    /// The author's seq.
    fn seq(&self) -> u64;
    /// True for equivocation evidence (exempt from the `(author, seq)` rule).
    fn evidence(&self) -> bool;
}

impl RuleOp for OpRecord {
    fn id(&self) -> OpId {
        self.id
    }
    fn author(&self) -> AuthorId {
        self.author
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn evidence(&self) -> bool {
        self.evidence
    }
}

/// Applies the conflict rule (see the [module docs](self)) to the ops of one append.
///
/// The backend supplies two lookups over what it holds *before* this call (plus, in
/// a group commit, what earlier requests of the same transaction wrote):
/// - `is_held(id)`: is an op with this id stored?
/// - `primary_at(author, seq)`: the id of the primary (non-evidence) op stored at
///   this `(author, seq)`, if any.
///
/// Returns, in the outer `Result`, a lookup's own error unchanged; in the inner one
/// either the ops to write (new ids only, each once, in slice order) or the
/// [`StoreError::Conflict`] that refuses the whole call. Lookups are made only for
/// ops the call has not already decided: a repeated id is skipped without
/// `is_held`, and evidence ops never call `primary_at`.
///
/// ```
/// use event_log_core::backend::rules::plan_append;
/// # use event_log_core::{OpRecord, StoreError};
/// # fn demo(ops: &[OpRecord]) -> Result<(), StoreError> {
/// // An empty store holds nothing: every op is new unless the call repeats itself.
/// let new_ops = plan_append(ops, |_| Ok::<_, StoreError>(false), |_, _| Ok(None))??;
/// assert!(new_ops.len() <= ops.len());
/// # Ok(()) }
/// ```
pub fn plan_append<T, E>(
    ops: &[T],
    mut is_held: impl FnMut(&OpId) -> Result<bool, E>,
    mut primary_at: impl FnMut(&AuthorId, u64) -> Result<Option<OpId>, E>,
) -> Result<Result<Vec<&T>, StoreError>, E>
where
    T: RuleOp,
{
    let mut seen: HashSet<OpId> = HashSet::new();
    let mut call_primary: HashMap<(AuthorId, u64), OpId> = HashMap::new();
    let mut new_ops = Vec::new();
    for op in ops {
        let id = op.id();
        if seen.contains(&id) || is_held(&id)? {
            continue;
        }
        seen.insert(id);
        if !op.evidence() {
            let (author, seq) = (op.author(), op.seq());
            let existing = match call_primary.get(&(author, seq)) {
                Some(&earlier) => Some(earlier),
                None => primary_at(&author, seq)?,
            };
            if let Some(existing) = existing {
                return Ok(Err(StoreError::Conflict {
                    author,
                    seq,
                    existing,
                    incoming: id,
                }));
            }
            call_primary.insert((author, seq), id);
        }
        new_ops.push(op);
    }
    Ok(Ok(new_ops))
}

#[cfg(test)]
mod tests;
