//! [`Chunk`]: one group commit of the persister — a run of consecutive logical ids,
//! as the entries that record them (transitions, and gaps for the ids dropped).
//!
//! A chunk always covers a contiguous logical range `start..end`, so whatever its
//! fate (stored, in doubt, given up) the persister can account for every id in it,
//! and a given-up chunk turns into exactly one gap range. It may begin with the
//! unclean-shutdown sentinel of the previous run, which covers no id of this one
//! and shares the chunk's fate (a given-up chunk hands it back to be sent again). Each transition is appended
//! with its [`Origin`] (run and logical id), so the log itself says which ids of a
//! run it holds.

use std::sync::Arc;

use event_log_core::{Entry, Gap, Origin, RunId, Transition, Unclean};

/// One entry of a chunk, before it becomes an [`Entry`] (transitions stay shared with
/// the channel until an append attempt needs them owned).
#[derive(Debug, Clone)]
enum Item {
    /// The transition with this logical id.
    Transition(u64, Arc<Transition>),
    Gap(Gap),
    /// The previous run's unclean-shutdown sentinel (first, if present).
    Unclean(Unclean),
}

/// Consecutive logical ids of one run, ready to append with one `append_all`.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    run: RunId,
    items: Vec<Item>,
    /// First logical id covered.
    start: u64,
    /// One past the last logical id covered.
    end: u64,
    transitions: u64,
}

impl Chunk {
    /// An empty chunk whose first id will be `start`.
    pub(crate) fn new(run: RunId, start: u64) -> Self {
        Chunk {
            run,
            items: Vec::new(),
            start,
            end: start,
            transitions: 0,
        }
    }

    /// The next logical id this chunk would cover.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// First logical id covered.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Logical ids covered.
    pub(crate) fn ids(&self) -> u64 {
        self.end - self.start
    }

    /// Entries (not ids) held.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Transitions held.
    pub(crate) fn transitions(&self) -> u64 {
        self.transitions
    }

    /// Gap entries held and the ids they cover.
    pub(crate) fn gaps(&self) -> (u64, u64) {
        self.items.iter().fold((0, 0), |(n, ids), i| match i {
            Item::Gap(g) => (n + 1, ids + g.len()),
            Item::Transition(..) | Item::Unclean(_) => (n, ids),
        })
    }

    /// Puts the previous run's unclean-shutdown sentinel first.
    pub(crate) fn push_unclean(&mut self, u: Unclean) {
        self.items.insert(0, Item::Unclean(u));
    }

    /// The unclean-shutdown sentinel this chunk carries, if any.
    pub(crate) fn unclean(&self) -> Option<&Unclean> {
        self.items.iter().find_map(|i| match i {
            Item::Unclean(u) => Some(u),
            _ => None,
        })
    }

    /// Adds the transition with logical id `self.end()`.
    pub(crate) fn push_transition(&mut self, t: Arc<Transition>) {
        self.items.push(Item::Transition(self.end, t));
        self.end += 1;
        self.transitions += 1;
    }

    /// Records that the `n` ids from `self.end()` on were dropped. Merges with a gap
    /// ending right before, so adjacent dropped ids make one sentinel.
    pub(crate) fn push_gap(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let from = self.end;
        let to = from + n - 1;
        match self.items.last_mut() {
            Some(Item::Gap(g)) if g.to.checked_add(1) == Some(from) => g.to = to,
            _ => self.items.push(Item::Gap(Gap::new(self.run, from, to))),
        }
        self.end = to + 1;
    }

    /// Appends `next`, which must start where this chunk ends (adjacent gaps merge).
    pub(crate) fn join(&mut self, next: Chunk) {
        debug_assert_eq!(self.end, next.start);
        for item in next.items {
            match item {
                Item::Gap(g) => self.push_gap(g.len()),
                Item::Transition(_, t) => self.push_transition(t),
                Item::Unclean(u) => self.push_unclean(u),
            }
        }
    }

    /// The entries to append, in logical order; each transition carries its origin.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.items
            .iter()
            .map(|i| match i {
                Item::Transition(id, t) => {
                    let mut t = Transition::clone(t);
                    t.origin = Some(Origin {
                        run: self.run,
                        id: *id,
                    });
                    Entry::Transition(t)
                }
                Item::Gap(g) => Entry::Gap(g.clone()),
                Item::Unclean(u) => Entry::Unclean(u.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_gaps_merge_and_ranges_stay_contiguous() {
        let run = RunId(1);
        let mut c = Chunk::new(run, 5);
        c.push_gap(2);
        c.push_gap(3);
        c.push_transition(Arc::new(Transition::now("s", "a", "b", "e")));
        c.push_gap(1);
        assert_eq!((c.start(), c.end(), c.ids()), (5, 12, 7));
        assert_eq!(c.gaps(), (2, 6));
        let e = c.entries();
        assert!(matches!(&e[0], Entry::Gap(g) if g.from == 5 && g.to == 9 && g.run == run));
        assert!(matches!(&e[1], Entry::Transition(t)
            if t.origin == Some(Origin { run, id: 10 })));
        assert!(matches!(&e[2], Entry::Gap(g) if g.from == 11 && g.to == 11));
        let mut next = Chunk::new(run, 12);
        next.push_gap(2);
        next.push_transition(Arc::new(Transition::now("t", "a", "b", "e")));
        c.join(next);
        assert_eq!((c.start(), c.end(), c.transitions()), (5, 15, 2));
        assert_eq!(c.gaps(), (2, 8), "the gap at the seam merged");
        assert!(matches!(&c.entries()[3], Entry::Transition(t)
            if t.origin == Some(Origin { run, id: 14 })));
    }
}
