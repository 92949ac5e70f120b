//! A TCP proxy on loopback between a store and the test server, which can stop
//! forwarding without closing anything: a black hole, like a network partition or a
//! half-open connection. Bytes that arrive while a direction is black-holed are read
//! and dropped; sockets stay open. A side that closes while black-holed has its close
//! passed on only once the proxy is healed (a partition delivers no FIN either).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes of each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both directions are forwarded.
    Forward,
    /// Nothing is forwarded, either way.
    BlackHole,
    /// Requests reach the server; its answers are dropped.
    BlackHoleReplies,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    /// Where to connect instead of the server.
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`), forwarding.
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(watch::channel(Mode::Forward).0);
        let task = {
            let mode = mode.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, mode.subscribe(), false));
                    tokio::spawn(pump(sr, cw, mode.subscribe(), true));
                }
            })
        };
        Proxy { addr, mode, task }
    }

    /// Changes what is forwarded, for open connections and new ones.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn drops(mode: Mode, replies: bool) -> bool {
    match mode {
        Mode::Forward => false,
        Mode::BlackHole => true,
        Mode::BlackHoleReplies => replies,
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    replies: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if drops(*mode.borrow(), replies) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    // Closed: passed on only once this direction forwards again.
    while drops(*mode.borrow_and_update(), replies) {
        if mode.changed().await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// `host:port` of the test server's URL (`postgres://user@host:port/db`).
pub fn server_addr(url: &str) -> String {
    let pg: tokio_postgres::Config = url.parse().unwrap();
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("the test server must be reached over TCP, not {other:?}"),
    };
    format!("{host}:{}", pg.get_ports().first().copied().unwrap_or(5432))
}

/// The test server's URL with `addr` as host and port.
pub fn url_via(url: &str, addr: SocketAddr) -> String {
    let pg: tokio_postgres::Config = url.parse().unwrap();
    let user = pg.get_user().unwrap_or("postgres");
    let db = pg.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}@{addr}/{db}")
}
