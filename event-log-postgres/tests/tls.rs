//! TLS from the URL (`sslmode`, `sslrootcert`) against the real test server, which
//! `scripts/test.sh` starts with a certificate for 127.0.0.1 and localhost from a
//! throwaway CA (`EVENT_LOG_TEST_PG_CA`). Each test works in its own schema.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use event_log_conformance::assert::fails_with;
use event_log_core::{OpStore, StoreError, StoreErrorKind};
use event_log_postgres::PostgresStore;

/// The test server's CA certificate, from `EVENT_LOG_TEST_PG_CA`. Never skips.
fn ca() -> String {
    match std::env::var("EVENT_LOG_TEST_PG_CA") {
        Ok(path) if !path.is_empty() => path,
        _ => panic!(
            "EVENT_LOG_TEST_PG_CA is not set: run the tests with `scripts/test.sh` (its \
             server speaks TLS with a throwaway CA), or set it to the CA certificate (PEM) \
             of the server in EVENT_LOG_TEST_PG_URL"
        ),
    }
}

/// The test server's URL with `params` added to its query.
fn with(params: &str) -> String {
    let url = pg_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// True if every backend of `application_name` runs TLS (and there is one).
async fn sessions_are_tls(application_name: &str) -> bool {
    let rows = admin()
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1",
            &[&application_name],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "no backend of {application_name}");
    rows.iter().all(|r| r.get::<_, bool>(0))
}

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_schema(tag));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A freshly generated self-signed certificate and its key (`NAME.crt`, `NAME.key`),
/// made with the machine's openssl.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}"), "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

/// A freshly generated CA certificate (that signed nothing the server has).
fn other_ca(dir: &Path) -> PathBuf {
    self_signed(dir, "another-test-ca").0
}

async fn open(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(url, config(schema)).await
}

/// verify-full with the server's CA: connects over TLS, appends and reads back.
#[tokio::test]
async fn verify_full_with_the_right_ca_connects_over_tls() {
    let schema = unique_schema("tls_full");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let url = with(&format!("sslmode=verify-full&sslrootcert={}", ca()));
    let store = open(&url, &schema).await.expect("open with verify-full");
    let ops = chain(1, 1, 3, "tls");
    store.append(&ops).await.unwrap();
    let page = store
        .load(event_log_core::Position::START, 10)
        .await
        .unwrap();
    assert_eq!(page.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), ops);
    assert!(
        sessions_are_tls(&schema).await,
        "the store's sessions are TLS"
    );
    assert!(!store.redacted_url().contains("sslrootcert"));
}

/// verify-full with a CA that did not sign the server's certificate: refused, typed.
#[tokio::test]
async fn verify_full_with_another_ca_is_refused() {
    let dir = TempDir::new("tls_ca");
    let other = other_ca(&dir.0);
    let schema = unique_schema("tls_other");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let url = with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other.display()
    ));
    fails_with(
        open(&url, &schema).await,
        StoreErrorKind::Invalid,
        &["TLS", "sslmode=verify-full"],
    );
}

/// verify-ca checks the chain, not the name; verify-full checks the name too.
#[tokio::test]
async fn verify_ca_checks_the_chain_and_verify_full_the_name() {
    let schema = unique_schema("tls_ca_name");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let pg: tokio_postgres::Config = pg_url().parse().unwrap();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap();
    let db = pg.get_dbname().unwrap();
    // A name the certificate does not hold, reached at the server's address.
    let base = format!(
        "host=not-in-the-certificate.invalid hostaddr=127.0.0.1 port={port} user={user} \
         dbname={db} sslrootcert={}",
        ca()
    );
    let store = open(&format!("{base} sslmode=verify-ca"), &schema)
        .await
        .expect("verify-ca ignores the name");
    assert!(sessions_are_tls(&schema).await);
    drop(store);
    let e = open(&format!("{base} sslmode=verify-full"), &schema)
        .await
        .expect_err("verify-full checks the name");
    assert_eq!(e.kind(), StoreErrorKind::Invalid, "{e}");
}

/// require: TLS, no certificate check.
#[tokio::test]
async fn require_connects_over_tls() {
    let schema = unique_schema("tls_require");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let _store = open(&with("sslmode=require"), &schema)
        .await
        .expect("open with require");
    assert!(sessions_are_tls(&schema).await);
}

/// disable: plain text, even though the server offers TLS.
#[tokio::test]
async fn disable_stays_plain() {
    let schema = unique_schema("tls_disable");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let _store = open(&with("sslmode=disable"), &schema)
        .await
        .expect("open with disable");
    assert!(!sessions_are_tls(&schema).await);
}

/// A missing sslrootcert file: `Invalid`, naming the parameter and the path.
#[tokio::test]
async fn a_missing_root_certificate_is_invalid_naming_the_path() {
    let dir = TempDir::new("tls_missing");
    let missing = dir.0.join("no-such-ca.crt");
    let url = with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        missing.display()
    ));
    let e = open(&url, &unique_schema("tls_missing"))
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), StoreErrorKind::Invalid, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("sslrootcert") && text.contains(&missing.display().to_string()),
        "{text}"
    );
}

/// An unknown sslmode: `Invalid`, naming the parameter.
#[tokio::test]
async fn a_bad_sslmode_is_invalid() {
    let e = open(&with("sslmode=verify-please"), &unique_schema("tls_bad"))
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), StoreErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("sslmode"), "{e}");
}

/// Through the facade: `event_log::open` with verify-full.
#[tokio::test]
async fn the_facade_opens_with_verify_full() {
    let schema = unique_schema("tls_facade");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let url = with(&format!(
        "sslmode=verify-full&sslrootcert={}&schema={schema}&application_name={schema}",
        ca()
    ));
    let log = event_log::open(&url, key(7)).await.expect("open the log");
    log.append_transition(event_log::Transition::now("s-1", "a", "b", "Go"))
        .await
        .expect("append");
    assert!(log.store().count().await.unwrap() >= 1);
    assert!(sessions_are_tls(&schema).await);
}

/// sslcert and sslkey are read (the server asks for no client certificate, so the
/// store connects); a key file that holds no key is `Invalid` naming `sslkey` and
/// the path, never its content.
#[tokio::test]
async fn client_certificate_files_are_read_and_a_bad_key_is_named() {
    let dir = TempDir::new("tls_client");
    let (crt, key) = self_signed(&dir.0, "client");
    let schema = unique_schema("tls_client");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let files = |key: &Path| {
        with(&format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            ca(),
            crt.display(),
            key.display()
        ))
    };
    let _store = open(&files(&key), &schema)
        .await
        .expect("open with a client certificate");
    assert!(sessions_are_tls(&schema).await);

    let bad = dir.0.join("not-a-key.pem");
    std::fs::write(&bad, "Sekret-Not-A-Key-Content").unwrap();
    let e = open(&files(&bad), &schema)
        .await
        .expect_err("a key file without a key");
    assert_eq!(e.kind(), StoreErrorKind::Invalid, "{e}");
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("sslkey") && text.contains(&bad.display().to_string()),
        "{text}"
    );
    assert!(!text.contains("Sekret"), "{text}");
}

/// A server that does not offer TLS (it answers the SSLRequest with `N`, as one
/// without `ssl=on` does): under require and verify-full an `Invalid` error, never a
/// plain-text session; under prefer the client goes on in plain text (and this fake
/// then hangs up).
#[tokio::test]
async fn a_server_without_tls_is_refused_under_require() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let startups = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = startups.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                s.read_exact(&mut request).await.ok()?;
                s.write_all(b"N").await.ok()?;
                // Anything after `N` is a plain-text startup message.
                let mut byte = [0u8; 1];
                if s.read(&mut byte).await.ok()? > 0 {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Some(())
            });
        }
    });
    for params in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", ca()),
    ] {
        let url = format!("postgres://alice@{addr}/db?{params}");
        let e = open(&url, &unique_schema("tls_none"))
            .await
            .expect_err("no TLS offered");
        assert_eq!(e.kind(), StoreErrorKind::Invalid, "{params}: {e}");
        assert!(e.to_string().contains("TLS"), "{e}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        startups.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was sent in plain text"
    );
}
