//! Sizes of the fields of an encoded op (the table is in [`crate::encoding`]).
//!
//! A leaf module: both the encoding and the [`crate::Limits`] that bound it need
//! these sizes, and neither needs the other for them.

/// Bytes of one op id (a dependency) in the encoding.
pub(crate) const DEP_LEN: usize = 32;

/// Length of the trailing signature.
pub const SIG_LEN: usize = 64;

/// Bytes of an encoding with no deps and an empty payload, signature included.
pub const FIXED_LEN: usize = 1 + 32 + 8 + 8 + 4 + 4 + SIG_LEN;
