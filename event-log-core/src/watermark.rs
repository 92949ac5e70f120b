//! A sled's signed high-water mark, kept outside its store: see [`Watermark`].

use std::sync::Arc;

use async_trait::async_trait;
use bft_json_crdt::{OpId, SigningKey};

use crate::event::SledId;
use crate::store::BoxError;

/// A sled's signed high-water mark, kept outside its store.
///
/// A store can lose its acknowledged tail without losing everything: restored from
/// a backup, a PostgreSQL failover to an asynchronous standby, SQLite with
/// `durability=normal` after a power loss. Its own checkpoint is lost with it. A sled
/// that then continued its sequence after what the store still holds would sign
/// those seqs again with new content: an equivocation that every replica punishes
/// by excluding the sled. So the log advances a mark kept elsewhere (beside the
/// sled's key, typically) after each durable append — "I signed up to seq N, whose
/// op is X", signed with the sled's key — and at open compares it with the store:
/// while the store holds less, appends are refused
/// ([`crate::Error::RolledBack`]) until the missing ops come back (from a peer, a
/// shared store, a sync).
///
/// The mark is written behind the appends (never on their path): after a crash it
/// may lag the store by the last groups written. Those ops left the sled only after
/// they were durable in its store, so a store that lost them and a mark that lags
/// them can only both happen when the machine itself lost its recent writes.
///
/// This trait is where a sled keeps its mark. Implementations: [`MemWatermark`]
/// here, a file beside the key in the `event-log` crate.
#[async_trait]
pub trait Watermark: Send + Sync + 'static {
    /// The last mark saved (opaque bytes), if any.
    async fn load(&self) -> Result<Option<Vec<u8>>, BoxError>;

    /// Replaces the mark. May return before it is durable (write behind, newest
    /// value wins), but must never block on I/O: it is called after every durable
    /// append.
    fn save(&self, mark: Vec<u8>);

    /// Waits until the last saved mark is durable. Called by
    /// [`crate::EventLog::close`].
    async fn flush(&self) -> Result<(), BoxError>;
}

/// A watermark held in memory (clones share it): for tests and embedding.
#[derive(Clone, Default, Debug)]
pub struct MemWatermark(Arc<parking_lot::Mutex<Option<Vec<u8>>>>);

impl MemWatermark {
    /// An empty watermark.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Watermark for MemWatermark {
    async fn load(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(self.0.lock().clone())
    }
    fn save(&self, mark: Vec<u8>) {
        *self.0.lock() = Some(mark);
    }
    async fn flush(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A shared [`Watermark`], for [`crate::EventLogConfig::watermark`].
#[derive(Clone)]
pub struct SharedWatermark(pub Arc<dyn Watermark>);

impl SharedWatermark {
    /// Shares `w`.
    pub fn new(w: impl Watermark) -> Self {
        SharedWatermark(Arc::new(w))
    }
}

impl std::fmt::Debug for SharedWatermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWatermark(..)")
    }
}

const VERSION: u8 = 1;
const TAG: &[u8] = b"event-log/watermark/v1\0";
const LEN: usize = 1 + 8 + 32 + 64;

/// "This sled signed up to `seq`, whose op is `id`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) seq: u64,
    pub(crate) id: OpId,
}

impl Mark {
    pub(crate) fn seal(&self, key: &SigningKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(self.id.as_bytes());
        crate::seal::seal(TAG, key, &mut out);
        out
    }

    /// `None` for anything not sealed by `sled`.
    pub(crate) fn open(bytes: &[u8], sled: &SledId) -> Option<Mark> {
        if bytes.len() != LEN || bytes[0] != VERSION {
            return None;
        }
        let body = crate::seal::open(TAG, sled, bytes)?;
        Some(Mark {
            seq: u64::from_be_bytes(body[1..9].try_into().ok()?),
            id: OpId(body[9..41].try_into().ok()?),
        })
    }
}
