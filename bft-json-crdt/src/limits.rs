//! Size limits that bound what a replica accepts and buffers.

/// Bounds on ops and on the replica's buffer of ops that wait for dependencies.
///
/// Every replica of a deployment should use the same limits: an op accepted by one
/// replica and refused by another is a divergence the caller must avoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload, in bytes.
    pub max_payload: usize,
    /// Most dependencies one op may name.
    pub max_deps: usize,
    /// Most ops held while their dependencies are missing.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 64 * 1024,
            max_deps: 64,
            max_buffered: 100_000,
        }
    }
}

impl Limits {
    /// Largest encoded op these limits allow, in bytes.
    ///
    /// Saturates instead of overflowing, so "unlimited" limits (`usize::MAX`) are fine.
    pub fn max_encoded_len(&self) -> usize {
        crate::encoding::FIXED_LEN
            .saturating_add(self.max_deps.saturating_mul(32))
            .saturating_add(self.max_payload)
    }
}
