//! The session options a [`crate::PostgresConfig`] names: `synchronous_commit`, how
//! pooled connections are checked before reuse, and TCP keepalives.

use std::time::Duration;

/// How long a commit waits for the WAL, per session (PostgreSQL's `synchronous_commit`).
///
/// Applied to every pooled connection at connect time. The server default is `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynchronousCommit {
    /// `on`: a commit returns once its WAL is flushed locally (and on synchronous
    /// standbys, if configured). An acknowledged append survives a crash or power loss.
    On,
    /// `remote_apply`: like `on`, and synchronous standbys have also applied it.
    RemoteApply,
    /// `remote_write`: standbys have received it (not yet flushed it).
    RemoteWrite,
    /// `local`: flushed locally; standbys are not waited for.
    Local,
    /// `off`: a commit returns before its WAL is flushed. A server crash can lose the
    /// last few hundred milliseconds of *acknowledged* appends (never tearing or
    /// reordering them). That breaks the [`event_log_core::OpStore::append`] durability
    /// promise: use it only where losing the tail is acceptable (benchmarks, caches).
    Off,
}

impl SynchronousCommit {
    /// The value PostgreSQL spells.
    pub fn as_sql(self) -> &'static str {
        match self {
            SynchronousCommit::On => "on",
            SynchronousCommit::RemoteApply => "remote_apply",
            SynchronousCommit::RemoteWrite => "remote_write",
            SynchronousCommit::Local => "local",
            SynchronousCommit::Off => "off",
        }
    }
}

/// How a pooled connection is checked before it is handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recycling {
    /// Only checks that the driver has not seen the connection close. Free, but a
    /// silently dead (half-open) connection is only found by the operation using it,
    /// which then fails after [`crate::PostgresConfig::operation_timeout`].
    Fast,
    /// Also sends an empty query and waits for the answer (at most
    /// [`crate::PostgresConfig::connect_timeout`]): one round trip per checkout, and a dead
    /// connection is replaced before an operation uses it.
    Verified,
}

/// TCP keepalive probing, applied on both ends of every connection: the client socket
/// and, through the session's `tcp_keepalives_*` settings, the server's (so a server
/// notices a vanished client, ends its session and frees its locks). A dead peer is
/// noticed after about `idle + interval × retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe, at least 1 s (whole seconds count). Default
    /// 15 s.
    pub idle: Duration,
    /// Time between probes, at least 1 s (whole seconds count). Default 5 s.
    pub interval: Duration,
    /// Probes without an answer before the connection is dropped. Default 3.
    pub retries: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(15),
            interval: Duration::from_secs(5),
            retries: 3,
        }
    }
}
