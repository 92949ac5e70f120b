//! Size limits that bound what a replica accepts and buffers.

use std::time::Duration;

use crate::layout::{DEP_LEN, FIXED_LEN};

/// Bounds on ops, on the replica's buffer of ops that wait for dependencies, and on
/// the equivocation evidence it keeps.
///
/// Every replica of a deployment should use the same limits: an op accepted by one
/// replica and refused by another is a divergence the caller must avoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload, in bytes.
    pub max_payload: usize,
    /// Most dependencies one op may name.
    pub max_deps: usize,
    /// Most ops held while their dependencies are missing, all authors together.
    pub max_buffered: usize,
    /// Most ops of one author held while their dependencies are missing, so one
    /// author cannot take the whole buffer.
    pub max_buffered_per_author: usize,
    /// How long an op may wait in the buffer; older ones are dropped at the next
    /// ingest (the peer that sent them sends them again when it syncs).
    pub max_buffer_age: Duration,
    /// Most equivocation evidence ops kept per author. Beyond it, evidence is still
    /// kept when it moves the author's exclusion to a lower seq (so every replica
    /// excludes from the same seq) or when another author's op depends on it.
    pub max_evidence_per_author: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 64 * 1024,
            max_deps: 64,
            max_buffered: 100_000,
            max_buffered_per_author: 10_000,
            max_buffer_age: Duration::from_secs(600),
            max_evidence_per_author: 256,
        }
    }
}

impl Limits {
    /// Largest encoded op these limits allow, in bytes.
    ///
    /// Saturates instead of overflowing, so "unlimited" limits (`usize::MAX`) are fine.
    pub fn max_encoded_len(&self) -> usize {
        FIXED_LEN
            .saturating_add(self.max_deps.saturating_mul(DEP_LEN))
            .saturating_add(self.max_payload)
    }
}
