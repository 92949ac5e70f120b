//! A TCP proxy on loopback between a store and its PostgreSQL server that can stop
//! forwarding without closing anything: a black hole, as a network partition or a
//! half-open connection makes one. While black-holed, bytes arriving either way are
//! read and dropped and every socket stays open; a side that closes meanwhile has its
//! close passed on only once the proxy forwards again (a partition delivers no FIN
//! either). New connections are accepted while black-holed, and go nowhere.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both directions are forwarded.
    Forward,
    /// Nothing is forwarded, either way; sockets stay open.
    BlackHole,
}

/// A running proxy; it stops (closing every connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port, forwarding. Must be
    /// called within a tokio runtime (its tasks run there).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(watch::channel(Mode::Forward).0);
        let accept = mode.clone();
        let task = tokio::spawn(async move {
            let mut pumps = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let server = if *accept.borrow() == Mode::BlackHole {
                    // A connection made into the black hole: its handshake goes nowhere.
                    None
                } else {
                    TcpStream::connect(upstream).await.ok()
                };
                let (cr, cw) = client.into_split();
                match server {
                    Some(server) => {
                        let (sr, sw) = server.into_split();
                        pumps.spawn(pump(cr, sw, accept.subscribe()));
                        pumps.spawn(pump(sr, cw, accept.subscribe()));
                    }
                    None => {
                        pumps.spawn(swallow(cr, cw));
                    }
                }
            }
        });
        Ok(Proxy { addr, mode, task })
    }

    /// Where to connect instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what is forwarded, on open connections and new ones.
    pub fn set(&self, mode: Mode) {
        tracing::debug!(?mode, proxy = %self.addr, "proxy mode");
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every pump.
        self.task.abort();
    }
}

/// Forwards `from` to `to` while the mode forwards; drops what arrives otherwise.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *mode.borrow() == Mode::BlackHole {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    // Closed: passed on only once this direction forwards again.
    while *mode.borrow_and_update() == Mode::BlackHole {
        if mode.changed().await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// A connection accepted into the black hole: reads and drops everything, holding
/// the socket open until the client closes it.
async fn swallow(mut from: OwnedReadHalf, _to: OwnedWriteHalf) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn read_one(conn: &mut TcpStream) -> u8 {
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).await.unwrap();
        b[0]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn black_hole_drops_bytes_keeps_the_socket_and_forwarding_resumes() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        conn.write_all(b"a").await.unwrap();
        assert_eq!(read_one(&mut conn).await, b'a');

        proxy.set(Mode::BlackHole);
        conn.write_all(b"b").await.unwrap();
        let mut b = [0u8; 1];
        let answered =
            tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut b)).await;
        assert!(
            answered.is_err(),
            "a black-holed connection answered (or closed): {answered:?}"
        );

        proxy.set(Mode::Forward);
        conn.write_all(b"c").await.unwrap();
        // "b" was dropped, not delayed: the next byte back is "c".
        assert_eq!(read_one(&mut conn).await, b'c');
    }
}
