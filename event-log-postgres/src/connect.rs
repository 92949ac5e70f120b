//! Making connections with any TLS connector, behind one non-generic type.
//!
//! The pool (deadpool) already erases the connector type. Listening connections
//! ([`crate::Notifications`]) need the connection's message stream too, so this module
//! wraps "connect with connector `T`" into a boxed function returning the client and
//! its messages as a boxed stream. `PostgresStore` stays non-generic whatever TLS stack
//! a caller plugs in.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};

/// A connected client and its connection's asynchronous messages. The stream drives
/// the connection: it must be polled for the client to make progress.
pub(crate) type Connected = (
    Client,
    BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>,
);

/// Connects with the connector the store was opened with.
pub(crate) type Connector = Arc<
    dyn Fn(tokio_postgres::Config) -> BoxFuture<'static, Result<Connected, tokio_postgres::Error>>
        + Send
        + Sync,
>;

/// A [`Connector`] using `tls`.
pub(crate) fn connector<T>(tls: T) -> Connector
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    Arc::new(move |config: tokio_postgres::Config| {
        let tls = tls.clone();
        Box::pin(async move {
            let (client, mut connection) = config.connect(tls).await?;
            let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
            Ok((client, messages))
        })
    })
}
