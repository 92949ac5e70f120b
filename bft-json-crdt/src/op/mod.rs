//! Ops: the unsigned draft ([`Op`]), the validated-encoding form ([`SignedOp`]) and
//! the wire form a peer sends ([`RawOp`]).
//!
//! One file per form, each importing only the forms before it: `unsigned` (the
//! fields and the id they give), `signed`, `draft` (signing, which turns the first
//! into the second) and `raw`.

mod draft;
mod raw;
mod signed;
mod unsigned;

pub use draft::{Draft, WrongKey};
pub use raw::RawOp;
pub use signed::SignedOp;
pub use unsigned::Op;
