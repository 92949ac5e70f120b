//! Signing linked drafts, inline or on rayon's pool.

use std::sync::Arc;
use std::task::{Context, Poll};

use bft_json_crdt::{Draft, KeyPair, SignedOp};
use futures::channel::oneshot;

use super::waiters::Waiters;
use crate::entry::Entry;

/// A group of requests, signed, not yet written: its callers and their ops.
pub(super) type Group<'a> = (Waiters<'a>, Vec<(SignedOp, Entry)>);

/// Requests linked into the chain, their ops being signed on rayon's pool.
pub(super) struct Signing<'a> {
    callers: Waiters<'a>,
    pub(super) entries: Vec<Entry>,
    rx: Option<oneshot::Receiver<Vec<SignedOp>>>,
    /// Set once the job is over.
    pub(super) ready: bool,
    /// The signed ops, if the job delivered them.
    done: Option<Vec<SignedOp>>,
}

impl<'a> Signing<'a> {
    /// Signs `drafts` here (`inline`) or on rayon's pool.
    pub(super) fn start(
        callers: Waiters<'a>,
        drafts: Vec<Draft>,
        entries: Vec<Entry>,
        key: &Arc<KeyPair>,
        inline: bool,
    ) -> Self {
        if inline {
            return Signing {
                callers,
                entries,
                rx: None,
                ready: true,
                done: signed(Draft::sign_all(drafts, key)),
            };
        }
        let (tx, rx) = oneshot::channel();
        let key = key.clone();
        // One job per chunk, signed on one thread, first in first out: chunks finish
        // in chain order, the oldest first, while the pool's threads share them.
        rayon::spawn_fifo(move || {
            let ops = drafts.into_iter().map(|d| d.sign(&key)).collect();
            if let Some(ops) = signed(ops) {
                let _ = tx.send(ops);
            }
        });
        Signing {
            callers,
            entries,
            rx: Some(rx),
            ready: false,
            done: None,
        }
    }

    /// Ready once the pool's job is over.
    pub(super) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        use std::future::Future;
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(());
        };
        match std::pin::Pin::new(rx).poll(cx) {
            Poll::Ready(r) => {
                self.rx = None;
                self.ready = true;
                self.done = r.ok();
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The signed group, or `Err(self)` if the job was lost without an answer (its
    /// requests, never sent, go back to the queue when it is dropped).
    pub(super) fn finish(self) -> Result<Group<'a>, Self> {
        match self.done {
            Some(ops) => Ok((self.callers, ops.into_iter().zip(self.entries).collect())),
            None => Err(self),
        }
    }
}

/// The signed ops, or `None` (logged) if a draft was not this log's: cannot happen,
/// the log drafts with its own key; the job then counts as lost and its requests go
/// back to the queue.
fn signed(ops: Result<Vec<SignedOp>, bft_json_crdt::WrongKey>) -> Option<Vec<SignedOp>> {
    ops.map_err(|e| tracing::error!(error = %e, "a signing job failed"))
        .ok()
}
