//! core
#![warn(missing_docs)]
pub mod memstore;
pub mod store;
pub use bft_json_crdt::{AuthorId, OpId, RawOp, SignedOp, VersionVector};
pub use memstore::MemStore;
pub use store::{BoxError, OpRecord, OpStore, Position, StoreError, StoreErrorKind};
