//! Signed, hash-identified CRDT operations and a replica that applies them.
//! (How it fits the whole — formats, durability, sync — is in the repository's
//! `docs/design.md`.)
//!
//! This crate knows nothing about events: it moves opaque payloads around with the
//! guarantees a Byzantine-tolerant, eventually consistent system needs
//! (M. Kleppmann, "Making CRDTs Byzantine Fault Tolerant", PaPoC 2022):
//!
//! * every [`SignedOp`] is identified by the SHA-256 of its canonical encoding
//!   ([`encoding`]), and signed by its author over that id — the signer *is* the author;
//! * ops name their causal dependencies by id, so a replica that holds an op holds its
//!   whole causal past, and a forged or altered op cannot be spliced into that past;
//! * a [`Replica`] validates ops cheapest-check-first, buffers ops whose dependencies are
//!   missing (bounded), and exposes a deterministic view: the same op set gives the same
//!   view on every replica, whatever the delivery order, even when an author equivocates.
//!
//! Every rejection is a typed [`Rejected`] value; no input can make this crate panic.
#![warn(missing_docs)]

pub mod encoding;
#[doc(hidden)]
pub mod fuzz;
mod ids;
mod keypair;
mod layout;
mod limits;
mod membership;
mod op;
mod parallel;
mod rejected;
mod replica;
mod verify;

pub use ids::{AuthorId, OpId, ParseIdError};
pub use keypair::KeyPair;
pub use limits::Limits;
pub use membership::Membership;
pub use op::{Draft, Op, RawOp, SignedOp, WrongKey};
pub use parallel::cores;
pub use rejected::{DecodeError, Rejected};
pub use replica::{
    Delivery, Equivocation, HeldOp, Ingest, Outcome, ReadyOp, Replica, VersionVector,
};
pub use verify::verify_batch;

/// Re-exported so users need not depend on `ed25519-dalek` to hold keys.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
