#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod ack;
pub mod chain;
pub mod check;
pub mod child;
pub mod lazyfs;
pub mod load;
pub mod pg_server;
pub mod proxy;
pub mod tmpfs;

pub use ack::Ack;
pub use chain::{ChainConfig, ChainError, ChainOutcome, run_chain};
pub use check::{CheckError, Duplicate, Hole, NextAppend, Report, check, next_append};
pub use child::{ArgsError, ChildConfig, ChildError};
pub use lazyfs::{LazyFs, LazyFsError, PowerCut};
