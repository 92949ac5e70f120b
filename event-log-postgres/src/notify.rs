//! Wake-ups: `LISTEN/NOTIFY` on a channel named after the schema.
//!
//! Every append that stores new ops sends, in its own transaction, one notification per
//! author with new ops: `{"author":"<64 hex>","seq":<highest new seq>}` (about 100
//! bytes; never the op). PostgreSQL delivers it only after the commit, so a woken
//! reader finds the ops with [`event_log_core::OpStore::since`].
//!
//! A [`Notifications`] owns one dedicated connection that `LISTEN`s. Notifications are
//! a hint, never the data: they are lost while the connection is down, and a slow
//! subscriber may miss some. Both cases are reported ([`Notice::Reconnected`],
//! [`Notice::Lagged`]) and both mean the same thing: *catch up by `since`*. A correct
//! tailer therefore loops "`since` until empty; wait for any notice; repeat", and
//! never relies on notifications alone.
//!
//! The listening connection is checked with a trivial query every
//! `listen_ping_interval`; when it drops, it is re-established with exponential backoff
//! (100 ms doubling to `listen_max_backoff`, each sleep jittered so that listeners that
//! lost a restarting server do not all reconnect at once), for as long as the
//! subscription lives, and `Reconnected` is sent once it listens again. The background task ends when the `Notifications` is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bft_json_crdt::AuthorId;
use event_log_core::StoreError;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::{PostgresConfig, quote_ident};
use crate::connect::Connector;
use crate::error::from_pg;

/// What a [`Notifications`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// New ops of `author` were committed, the highest of them at `seq`.
    Appended {
        /// The author whose ops were appended.
        author: AuthorId,
        /// The highest seq among them.
        seq: u64,
    },
    /// The listening connection was lost and is back: notifications sent meanwhile are
    /// lost. Catch up with `since`.
    Reconnected,
    /// This subscriber fell behind and `missed` notices were dropped. Catch up with
    /// `since`.
    Lagged {
        /// How many notices were dropped.
        missed: u64,
    },
}

/// A stream of [`Notice`]s for one store schema; see the module docs.
///
/// Implements [`futures::Stream`]; [`Notifications::recv`] is the same without the
/// trait. It ends (`None`) only if the background task stops, which it does not do
/// while the subscription lives. Dropping it closes the listening connection.
#[derive(Debug)]
pub struct Notifications {
    rx: mpsc::Receiver<Notice>,
}

impl Notifications {
    /// The next notice.
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Stream for Notifications {
    type Item = Notice;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notice>> {
        self.rx.poll_recv(cx)
    }
}

/// The first delay before reconnecting a lost listener; it doubles (with jitter) up to
/// [`PostgresConfig::listen_max_backoff`].
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// What the listener needs to (re)connect.
pub(crate) struct ListenTarget {
    pub connector: Connector,
    pub pg_config: tokio_postgres::Config,
    pub channel: String,
    pub redacted_url: String,
    pub config: PostgresConfig,
}

/// Connects, starts listening, and returns once `LISTEN` has been acknowledged: every
/// append committed after this returns is notified (or reported as lost).
pub(crate) async fn start(target: Arc<ListenTarget>) -> Result<Notifications, StoreError> {
    let listening = listen(&target).await?;
    let (tx, rx) = mpsc::channel(target.config.listen_queue);
    tokio::spawn(run(target, listening, tx));
    Ok(Notifications { rx })
}

/// A listening connection: its client and the notifications its driver task forwards.
/// `notes` ends when the connection does.
struct Listening {
    client: tokio_postgres::Client,
    notes: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
}

async fn listen(target: &ListenTarget) -> Result<Listening, StoreError> {
    let url = &target.redacted_url;
    let (client, mut messages) = (target.connector)(target.pg_config.clone())
        .await
        .map_err(|e| from_pg("connecting the listener", url, e))?;
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let (ended_tx, ended) = oneshot::channel::<()>();
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if notes_tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(error = %e, "listening connection failed");
                    break;
                }
            }
        }
        let _ = ended_tx.send(());
    });
    let listen_sql = format!("LISTEN {}", quote_ident(&target.channel));
    tokio::select! {
        r = client.batch_execute(&listen_sql) => {
            r.map_err(|e| from_pg("starting to listen", url, e))?;
        }
        _ = ended => {
            return Err(StoreError::Unavailable {
                message: format!("starting to listen on {url}: connection closed"),
                source: None,
            });
        }
    }
    debug!(channel = %target.channel, "listening");
    Ok(Listening { client, notes })
}

/// The wire form of a notification payload.
#[derive(Deserialize)]
struct Payload {
    author: String,
    seq: u64,
}

fn parse(payload: &str) -> Option<Notice> {
    let p: Payload = serde_json::from_str(payload).ok()?;
    Some(Notice::Appended {
        author: p.author.parse().ok()?,
        seq: p.seq,
    })
}

/// Sends notices without ever blocking the listener: a full queue turns into a count
/// of missed notices, delivered as [`Notice::Lagged`] as soon as there is room.
struct Outbox {
    tx: mpsc::Sender<Notice>,
    missed: u64,
}

impl Outbox {
    /// Queues `notice`; false if the subscriber is gone.
    fn push(&mut self, notice: Notice) -> bool {
        if self.missed > 0 {
            match self.tx.try_send(Notice::Lagged {
                missed: self.missed,
            }) {
                Ok(()) => self.missed = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.missed += 1;
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(notice) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Why serving a connection stopped.
enum Stop {
    /// The subscriber dropped the subscription.
    Unsubscribed,
    /// The connection is gone.
    Lost(String),
}

async fn run(target: Arc<ListenTarget>, mut listening: Listening, tx: mpsc::Sender<Notice>) {
    let mut out = Outbox { tx, missed: 0 };
    loop {
        match serve(&target, &mut listening, &mut out).await {
            Stop::Unsubscribed => return,
            Stop::Lost(why) => {
                warn!(channel = %target.channel, %why, "listening connection lost; reconnecting");
            }
        }
        let mut backoff = Backoff::new(FIRST_RECONNECT_DELAY, target.config.listen_max_backoff);
        let mut delay = backoff.next_delay();
        listening = loop {
            tokio::select! {
                _ = out.tx.closed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match listen(&target).await {
                Ok(l) => break l,
                Err(e) => {
                    delay = backoff.next_delay();
                    warn!(error = %e, retry_in = ?delay, "reconnecting the listener failed");
                }
            }
        };
        info!(channel = %target.channel, "listening again; subscribers catch up by since");
        if !out.push(Notice::Reconnected) {
            return;
        }
    }
}

async fn serve(target: &ListenTarget, listening: &mut Listening, out: &mut Outbox) -> Stop {
    let period = target.config.listen_ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A second handle on the queue, so waiting on it does not borrow `out`.
    let tx = out.tx.clone();
    loop {
        let lagging = out.missed > 0;
        tokio::select! {
            note = listening.notes.recv() => {
                let Some(note) = note else {
                    return Stop::Lost("connection closed".into());
                };
                if note.channel() != target.channel {
                    continue;
                }
                match parse(note.payload()) {
                    Some(notice) => {
                        if !out.push(notice) {
                            return Stop::Unsubscribed;
                        }
                    }
                    None => debug!(payload = note.payload(), "ignoring a foreign notification"),
                }
            }
            permit = tx.reserve(), if lagging => {
                match permit {
                    Ok(permit) => {
                        permit.send(Notice::Lagged { missed: out.missed });
                        out.missed = 0;
                    }
                    Err(_) => return Stop::Unsubscribed,
                }
            }
            _ = ping.tick() => {
                let check = tokio::time::timeout(period, listening.client.simple_query("SELECT 1"));
                match check.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Stop::Lost(e.to_string()),
                    Err(_) => return Stop::Lost("ping timed out".into()),
                }
            }
            _ = tx.closed() => return Stop::Unsubscribed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue never blocks the listener: missed notices become one `Lagged`.
    #[test]
    fn a_full_queue_turns_into_lagged() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox { tx, missed: 0 };
        let n = |seq| Notice::Appended {
            author: AuthorId([1; 32]),
            seq,
        };
        assert!(out.push(n(1)));
        assert!(out.push(n(2)));
        assert!(out.push(Notice::Reconnected));
        assert_eq!(out.missed, 2);
        assert_eq!(rx.try_recv().unwrap(), n(1));
        assert!(out.push(n(3)));
        assert_eq!(rx.try_recv().unwrap(), Notice::Lagged { missed: 2 });
        assert_eq!(out.missed, 1, "n(3) did not fit behind the Lagged");
        drop(rx);
        assert!(!out.push(n(4)), "a dropped subscriber ends the listener");
    }

    #[test]
    fn payloads_parse() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse(&format!(r#"{{"author":"{hex}","seq":7}}"#)),
            Some(Notice::Appended {
                author: AuthorId([0xab; 32]),
                seq: 7
            })
        );
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(r#"{"author":"zz","seq":1}"#), None);
    }
}
