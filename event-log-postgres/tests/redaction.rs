//! No password in any output: whatever the URL's shape (an `@` in the password, raw or
//! percent-encoded, `?password=`, key=value strings, quoted or malformed), the password
//! appears in no error (Display, source chain, Debug), no store Debug and no log line,
//! whether the server is down, refuses the password, or accepts it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use event_log_core::{OpStore, StoreError};
use event_log_postgres::{PostgresConfig, PostgresStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The part of every test password that must never be shown.
const SECRET: &str = "Hunter2Sekret";

/// URL shapes for `host:port` and `user`, with the password each one carries (`None`
/// for malformed ones, which must be refused before connecting).
fn shapes(addr: &str, user: &str) -> Vec<(String, Option<String>)> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    vec![
        (
            format!("postgres://{user}:Pw@{SECRET}@{addr}/db"),
            Some(format!("Pw@{SECRET}")),
        ),
        (
            format!("postgres://{user}:Pw%40{SECRET}@{addr}/db"),
            Some(format!("Pw@{SECRET}")),
        ),
        (
            format!("postgres://{user}:Pw/{SECRET}?@{addr}/db"),
            Some(format!("Pw/{SECRET}?")),
        ),
        (
            format!("postgres://{user}:Pw@{SECRET}@{addr}/db?application_name=a@b"),
            Some(format!("Pw@{SECRET}")),
        ),
        (
            format!("postgresql://{user}@{addr}/db?sslmode=disable&password={SECRET}%40x"),
            Some(format!("{SECRET}@x")),
        ),
        (
            format!("host={host} port={port} user={user} password={SECRET} dbname=db"),
            Some(SECRET.to_owned()),
        ),
        (
            format!("host={host} port={port} user={user} password='Pw @{SECRET} x' dbname=db"),
            Some(format!("Pw @{SECRET} x")),
        ),
        (
            format!("host={host} port={port} user={user} password=Pw {SECRET}=x dbname=db"),
            None,
        ),
        (
            format!("host={host} port={port} user={user} password=Pw {SECRET} x"),
            None,
        ),
    ]
}

/// Display, every source's Display, and Debug.
fn everything(e: &StoreError) -> String {
    let mut out = format!("{e} | {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(" | {s} | {s:?}"));
        source = s.source();
    }
    out
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET) && !text.contains("Pw@") && !text.contains("Pw%40"),
        "{what} shows the password: {text}"
    );
}

/// Collects every log line (all levels) of the current thread while alive.
struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Logs {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        Logs {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

fn quick() -> PostgresConfig {
    PostgresConfig::default()
        .with_schema(unique_schema("redact"))
        .with_connect_timeout(std::time::Duration::from_secs(2))
}

/// A server that is not there.
#[tokio::test]
async fn down_server_errors_hide_the_password() {
    let logs = Logs::capture();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (url, _) in shapes(&format!("127.0.0.1:{port}"), "alice") {
        let err = PostgresStore::open(&url, quick()).await.unwrap_err();
        assert_clean(&format!("the error for {url:?}"), &everything(&err));
    }
    assert_clean("the logs", &logs.text());
}

/// A fake server that declines TLS, asks for the password in clear text, records it
/// and refuses it the way PostgreSQL does (SQLSTATE 28P01).
async fn refusing_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut len = s.read_u32().await.ok()? as usize;
                let mut startup = vec![0; len.checked_sub(4)?];
                s.read_exact(&mut startup).await.ok()?;
                if startup == 80877103u32.to_be_bytes() {
                    // An SSLRequest (sslmode=prefer, the default): no TLS here, as a
                    // server without ssl=on answers; then the startup message.
                    s.write_all(b"N").await.ok()?;
                    len = s.read_u32().await.ok()? as usize;
                    startup = vec![0; len.checked_sub(4)?];
                    s.read_exact(&mut startup).await.ok()?;
                }
                // AuthenticationCleartextPassword.
                s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.ok()?;
                if s.read_u8().await.ok()? != b'p' {
                    return None;
                }
                let len = s.read_u32().await.ok()? as usize;
                let mut body = vec![0; len.checked_sub(4)?];
                s.read_exact(&mut body).await.ok()?;
                body.pop(); // the NUL terminator
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                let mut fields = Vec::new();
                for (code, value) in [
                    (b'S', "FATAL"),
                    (b'V', "FATAL"),
                    (b'C', "28P01"),
                    (b'M', "password authentication failed for user \"alice\""),
                ] {
                    fields.push(code);
                    fields.extend_from_slice(value.as_bytes());
                    fields.push(0);
                }
                fields.push(0);
                let mut msg = vec![b'E'];
                msg.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                msg.extend_from_slice(&fields);
                s.write_all(&msg).await.ok()?;
                Some(())
            });
        }
    });
    (addr, seen)
}

/// A server that refuses the password: it gets the password as the URL meant it, and
/// nothing shows it.
#[tokio::test]
async fn refused_password_errors_hide_the_password() {
    let logs = Logs::capture();
    let (addr, seen) = refusing_server().await;
    for (url, password) in shapes(&addr, "alice") {
        let err = PostgresStore::open(&url, quick()).await.unwrap_err();
        assert_clean(&format!("the error for {url:?}"), &everything(&err));
        if let Some(password) = password {
            assert!(
                err.to_string().contains("password authentication failed"),
                "{url:?}: {err}"
            );
            let last = seen.lock().unwrap().pop();
            assert_eq!(last.as_deref(), Some(password.as_str()), "{url:?}");
        }
    }
    assert_clean("the logs", &logs.text());
}

/// A server that accepts (the test server trusts loopback): the store's Debug, its
/// redacted URL and its later errors hide the password.
#[tokio::test]
async fn an_open_store_hides_the_password() {
    let logs = Logs::capture();
    let pg: tokio_postgres::Config = pg_url().parse().unwrap();
    let user = pg.get_user().unwrap_or("postgres").to_owned();
    let addr = common::proxy::server_addr(&pg_url());
    for (url, password) in shapes(&addr, &user) {
        if password.is_none() {
            continue;
        }
        // The shapes name database `db`; the test server has `postgres`.
        let url = url
            .replace("/db", "/postgres")
            .replace("dbname=db", "dbname=postgres");
        let config = quick();
        let _guard = SchemaGuard::new(&pg_url(), &config.schema);
        let store = PostgresStore::open(&url, config)
            .await
            .unwrap_or_else(|e| panic!("{url:?}: {e}"));
        assert_clean("the store's Debug", &format!("{store:?}"));
        assert_clean("the redacted URL", store.redacted_url());
        store.close().await.unwrap();
        let err = store.count().await.unwrap_err();
        assert_clean("an error after close", &everything(&err));
    }
    assert_clean("the logs", &logs.text());
}
