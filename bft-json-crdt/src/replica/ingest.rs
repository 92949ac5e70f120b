//! Validation and causal resolution of incoming ops: [`Replica::ingest`].

use std::collections::{HashMap, HashSet};

use super::buffer::Buffer;
use super::{Delivery, Ingest, Outcome, ReadyOp, Replica};
use crate::ids::{AuthorId, OpId};
use crate::op::SignedOp;
use crate::rejected::{DecodeError, Rejected};
use crate::verify::verify_batch;

/// What one [`Replica::ingest`] has decided so far.
#[derive(Default)]
struct Resolution {
    ready: Vec<ReadyOp>,
    ready_ids: HashMap<OpId, SignedOp>,
    /// `(author, seq)` taken by ready ops.
    seqs: HashSet<(AuthorId, u64)>,
    /// Evidence ops made ready, per author.
    evidence: HashMap<AuthorId, usize>,
    /// Lowest seq of evidence made ready, per author.
    lowest: HashMap<AuthorId, u64>,
    /// Buffered ops dropped because an op they wait for was refused.
    evicted: Vec<Delivery>,
}

impl Resolution {
    /// After a refusal: if it is permanent, buffered ops waiting for the op can
    /// never apply and are dropped.
    fn refuse(&mut self, buffer: &mut Buffer, why: &Rejected) {
        if why.is_permanent() {
            for (id, why) in buffer.refused(why.op_id()) {
                self.evicted.push(Delivery {
                    id,
                    result: Err(why),
                });
            }
        }
    }
}

impl Replica {
    /// Validates many ops at once (batch signature verification) without applying
    /// them: returns the ops that are ready, in causal order, for the caller to persist
    /// and then [`Replica::apply_ready`]. Ops whose deps are missing go to the buffer;
    /// buffered ops unblocked by this batch are released into `ready`.
    ///
    /// Deliveries come in input order; ops are resolved in `(lamport, id)` order, so
    /// an op whose deps are elsewhere in the batch never needs the buffer. A copy of
    /// an op is a `Duplicate` unless it is the first valid copy; an exact copy of a
    /// refused op gets the same rejection.
    ///
    /// Between `ingest` and `apply_ready` the caller must not ingest other ops. If the
    /// caller never applies them (say the store failed), the ready ops are simply lost from
    /// this replica, and a peer sends them again.
    pub fn ingest(&mut self, ops: Vec<SignedOp>) -> Ingest {
        let mut out = Ingest::default();
        // 0. ops that waited too long leave the buffer (reported last).
        let expired = self.buffer.expire(self.limits.max_buffer_age);
        let mut batch = Resolution::default();
        // 1. duplicates of held or buffered ops and exact copies earlier in this batch;
        //    then the structural checks a locally built `SignedOp` may fail.
        let mut fresh: Vec<(usize, SignedOp)> = Vec::with_capacity(ops.len());
        let mut copies: HashMap<(OpId, [u8; 64]), usize> = HashMap::new();
        // (delivery of an exact copy, delivery of the first copy): a copy of a
        // refused op is refused alike, a copy of an accepted one is a duplicate.
        let mut echoes: Vec<(usize, usize)> = Vec::new();
        for op in ops {
            let id = op.id();
            let di = out.deliveries.len();
            let result = if self.ops.contains_key(&id) || self.buffer.contains(&id) {
                Ok(Outcome::Duplicate)
            } else if let Some(&first) = copies.get(&(id, *op.signature())) {
                echoes.push((di, first));
                Ok(Outcome::Duplicate)
            } else {
                copies.insert((id, *op.signature()), di);
                match self.check_shape(&op) {
                    Err(e) => {
                        batch.refuse(&mut self.buffer, &e);
                        Err(e)
                    }
                    Ok(()) => {
                        fresh.push((di, op));
                        Ok(Outcome::Applied)
                    }
                }
            };
            out.deliveries.push(Delivery { id, result });
        }
        // 2. signatures, batched; only then duplicates by id, so that a copy with a bad
        //    signature earlier in the batch cannot hide a good copy of the same op.
        let refs: Vec<&SignedOp> = fresh.iter().map(|(_, op)| op).collect();
        let sig_results = verify_batch(&refs);
        let mut candidates: Vec<(usize, SignedOp)> = Vec::with_capacity(fresh.len());
        let mut valid: HashSet<OpId> = HashSet::new();
        for ((di, op), res) in fresh.into_iter().zip(sig_results) {
            match res {
                Err(e) => {
                    batch.refuse(&mut self.buffer, &e);
                    out.deliveries[di].result = Err(e);
                }
                Ok(()) if !valid.insert(op.id()) => {
                    out.deliveries[di].result = Ok(Outcome::Duplicate);
                }
                Ok(()) => candidates.push((di, op)),
            }
        }
        // A valid op's deps have lower lamports: resolving in `(lamport, id)` order
        // makes ops whose deps are in this batch ready without a trip through the
        // (bounded) buffer, whatever the order of the batch.
        candidates.sort_by_key(|(_, op)| (op.lamport(), op.id()));
        // Which authors' ops of this batch depend on each id (evidence another
        // author builds on is kept whatever the quota).
        let mut needed_by: HashMap<OpId, Vec<AuthorId>> = HashMap::new();
        for (_, op) in &candidates {
            for d in op.deps() {
                needed_by.entry(*d).or_default().push(op.author());
            }
        }
        // 3. causal resolution against held ops plus ops made ready in this call
        let mut queue: Vec<(Option<usize>, SignedOp)> = candidates
            .into_iter()
            .map(|(d, op)| (Some(d), op))
            .collect();
        let mut qi = 0;
        while qi < queue.len() {
            let (slot, op) = queue[qi].clone();
            qi += 1;
            let result = self.resolve(&op, &mut batch, &needed_by);
            match &result {
                Ok(Outcome::Applied) => {
                    // release buffered ops that waited for this one
                    for released in self.buffer.release(op.id()) {
                        queue.push((None, released));
                    }
                }
                Err(e) => batch.refuse(&mut self.buffer, e),
                _ => {}
            }
            match slot {
                Some(d) => out.deliveries[d].result = result,
                None => out.deliveries.push(Delivery {
                    id: op.id(),
                    result,
                }),
            }
        }
        for (di, first) in echoes {
            if let Err(e) = &out.deliveries[first].result {
                out.deliveries[di].result = Err(e.clone());
            }
        }
        out.ready = batch.ready;
        out.deliveries.extend(batch.evicted);
        out.deliveries
            .extend(expired.into_iter().map(|(id, why)| Delivery {
                id,
                result: Err(why),
            }));
        out
    }

    /// Decides one valid-signed op: buffered (missing deps), ready (pushed to
    /// `batch.ready`), or refused.
    fn resolve(
        &mut self,
        op: &SignedOp,
        batch: &mut Resolution,
        needed_by: &HashMap<OpId, Vec<AuthorId>>,
    ) -> Result<Outcome, Rejected> {
        let missing: Vec<OpId> = op
            .deps()
            .iter()
            .filter(|d| !self.ops.contains_key(d) && !batch.ready_ids.contains_key(d))
            .copied()
            .collect();
        if !missing.is_empty() {
            if let Some(dep) = self.buffer.refused_dep(&missing) {
                return Err(Rejected::DependsOnRejected { id: op.id(), dep });
            }
            self.buffer.add(op.clone(), &missing, &self.limits)?;
            return Ok(Outcome::Buffered { missing });
        }
        self.check_links(op, &batch.ready_ids)?;
        let (author, seq) = (op.author(), op.seq());
        let evidence = self.held_at(&author, seq) || batch.seqs.contains(&(author, seq));
        if evidence {
            self.check_evidence(op, batch, needed_by)?;
            *batch.evidence.entry(author).or_default() += 1;
            let low = batch.lowest.entry(author).or_insert(seq);
            *low = (*low).min(seq);
        }
        batch.seqs.insert((author, seq));
        batch.ready_ids.insert(op.id(), op.clone());
        batch.ready.push(ReadyOp {
            op: op.clone(),
            evidence,
        });
        Ok(Outcome::Applied)
    }

    /// Evidence is kept within its author's quota, or beyond it when it moves the
    /// author's exclusion lower, or when another author's op depends on it.
    fn check_evidence(
        &self,
        op: &SignedOp,
        batch: &Resolution,
        needed_by: &HashMap<OpId, Vec<AuthorId>>,
    ) -> Result<(), Rejected> {
        let author = op.author();
        let state = self.authors.get(&author);
        let held =
            state.map_or(0, |s| s.evidence) + batch.evidence.get(&author).copied().unwrap_or(0);
        if held < self.limits.max_evidence_per_author {
            return Ok(());
        }
        let excluded_from = [
            state.and_then(|s| s.excluded_from),
            batch.lowest.get(&author).copied(),
        ]
        .into_iter()
        .flatten()
        .min();
        if excluded_from.is_none_or(|from| op.seq() < from) {
            return Ok(());
        }
        let in_batch = needed_by
            .get(&op.id())
            .is_some_and(|authors| authors.iter().any(|a| *a != author));
        let in_buffer = self.buffer.needed_by_other(&op.id(), &author, |w| {
            self.excluded_from(&w.author())
                .is_some_and(|from| w.seq() >= from)
        });
        if in_batch || in_buffer {
            return Ok(());
        }
        Err(Rejected::EvidenceQuota {
            id: op.id(),
            author,
            limit: self.limits.max_evidence_per_author,
        })
    }

    /// Checks what decoding guarantees but a `SignedOp` built with [`crate::Op::sign`]
    /// may lack: limits, and seq and lamport at least 1.
    fn check_shape(&self, op: &SignedOp) -> Result<(), Rejected> {
        let id = op.id();
        let over = |what: &'static str, limit: usize, actual: usize| Rejected::OverLimits {
            claimed: id,
            error: DecodeError::TooLarge {
                what,
                limit,
                actual,
            },
        };
        if let Some(members) = &self.members
            && !members.allows(&op.author())
        {
            return Err(Rejected::NotMember {
                id,
                author: op.author(),
            });
        }
        if op.deps().len() > self.limits.max_deps {
            return Err(over("deps", self.limits.max_deps, op.deps().len()));
        }
        if op.payload().len() > self.limits.max_payload {
            return Err(over("payload", self.limits.max_payload, op.payload().len()));
        }
        for (field, value) in [("seq", op.seq()), ("lamport", op.lamport())] {
            if value == 0 {
                return Err(Rejected::Malformed {
                    claimed: id,
                    error: DecodeError::ZeroField(field),
                });
            }
        }
        Ok(())
    }

    fn held_at(&self, author: &AuthorId, seq: u64) -> bool {
        self.authors
            .get(author)
            .is_some_and(|a| a.by_seq.contains_key(&seq))
    }

    /// `(author, seq, lamport)` of a held op or one made ready in this call.
    fn lookup(&self, id: &OpId, extra: &HashMap<OpId, SignedOp>) -> Option<(AuthorId, u64, u64)> {
        match self.ops.get(id) {
            Some(m) => Some((m.author, m.seq, m.lamport)),
            None => extra.get(id).map(|o| (o.author(), o.seq(), o.lamport())),
        }
    }

    fn check_links(&self, op: &SignedOp, extra: &HashMap<OpId, SignedOp>) -> Result<(), Rejected> {
        let mut max_lamport = 0u64;
        let mut same_author: Vec<u64> = Vec::new();
        for d in op.deps() {
            // callers only check ops whose deps are all present
            let Some((author, seq, lamport)) = self.lookup(d, extra) else {
                continue;
            };
            max_lamport = max_lamport.max(lamport);
            if author == op.author() {
                same_author.push(seq);
            }
        }
        let bad = |detail: String| Rejected::BadPrevLink {
            id: op.id(),
            author: op.author(),
            seq: op.seq(),
            detail,
        };
        match (op.seq(), same_author.as_slice()) {
            (1, []) => {}
            (1, _) => {
                return Err(bad(
                    "seq 1 must not depend on an op of its own author".into()
                ));
            }
            (s, [prev]) if prev.checked_add(1) == Some(s) => {}
            (s, []) => {
                return Err(bad(format!(
                    "seq {s} must depend on its author's op at seq {}",
                    s.saturating_sub(1)
                )));
            }
            (s, found) => {
                return Err(bad(format!(
                    "seq {s} must depend on exactly one op of its author, at seq {}; found seqs {found:?}",
                    s.saturating_sub(1)
                )));
            }
        }
        let expected = max_lamport.saturating_add(1);
        if op.lamport() != expected {
            return Err(Rejected::WrongLamport {
                id: op.id(),
                expected,
                actual: op.lamport(),
            });
        }
        Ok(())
    }
}
