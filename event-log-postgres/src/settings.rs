//! What every session of a store runs with: the driver's configuration from the URL
//! and [`PostgresConfig`], and the server-side session settings (`-c` options).
//!
//! Client side: connect timeout, TCP keepalives and `TCP_USER_TIMEOUT` from the
//! config where the URL sets none. Server side, per session: `statement_timeout`,
//! `tcp_keepalives_idle/interval/count` and `tcp_user_timeout` mirroring the client's
//! (so the server ends the session of a client that vanished, freeing its locks),
//! `idle_in_transaction_session_timeout` (the operation timeout: no transaction of
//! this crate idles longer unless its client is gone), `synchronous_commit` if set,
//! and `default_transaction_read_only = on` for read-only stores.

use event_log_core::StoreError;

use crate::config::{PostgresConfig, config_error, invalid};
use crate::tls::TlsParams;
use crate::{params, url};

/// A store's connection settings.
pub(crate) struct Settings {
    /// The configuration, with the URL's parameters applied.
    pub config: PostgresConfig,
    /// The driver's configuration, session options included.
    pub pg: tokio_postgres::Config,
    /// The server as shown in messages: never a password.
    pub target: String,
    /// The URL's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`).
    pub tls: TlsParams,
}

/// Parses `url` (see [`crate::url`]) and applies `config` and the URL's parameters.
pub(crate) fn resolve(url_text: &str, mut config: PostgresConfig) -> Result<Settings, StoreError> {
    let parsed = url::parse(url_text)?;
    params::apply_own(&parsed.own, &mut config)?;
    let tls = TlsParams::from_params(&parsed.own)?;
    config.validate().map_err(config_error)?;
    let mut pg: tokio_postgres::Config = parsed.driver.parse().map_err(|e| {
        // The driver's remaining parse errors name a parameter, never its value (the
        // names were checked above); scrubbed all the same.
        invalid(url::scrub(
            &format!("malformed PostgreSQL URL: {e}"),
            &parsed.secrets,
        ))
    })?;
    if pg.get_hosts().is_empty() {
        return Err(invalid("malformed PostgreSQL URL: no host given"));
    }
    pg.ssl_mode(tls.driver_mode());
    let set = |k: &str| parsed.driver_keys.iter().any(|d| d == k);
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name(config.application_name.clone());
    }
    if let Some(k) = config.keepalive {
        if !set("keepalives") {
            pg.keepalives(true);
        }
        if !set("keepalives_idle") {
            pg.keepalives_idle(k.idle);
        }
        if !set("keepalives_interval") {
            pg.keepalives_interval(k.interval);
        }
        if !set("keepalives_retries") {
            pg.keepalives_retries(k.retries);
        }
    }
    if let Some(t) = config.tcp_user_timeout
        && !set("tcp_user_timeout")
    {
        pg.tcp_user_timeout(t);
    }
    let mut options: Vec<String> = Vec::new();
    if let Some(t) = config.statement_timeout {
        options.push(format!("statement_timeout={}", t.as_millis()));
    }
    options.push(format!(
        "idle_in_transaction_session_timeout={}",
        config.operation_timeout.as_millis()
    ));
    if pg.get_keepalives() {
        options.push(format!(
            "tcp_keepalives_idle={}",
            // The URL's driver parameters are not checked by validate(): 0 would
            // mean the server's OS default, so round a sub-second value up.
            pg.get_keepalives_idle().as_secs().max(1)
        ));
        if let Some(i) = pg.get_keepalives_interval() {
            options.push(format!("tcp_keepalives_interval={}", i.as_secs().max(1)));
        }
        if let Some(r) = pg.get_keepalives_retries() {
            options.push(format!("tcp_keepalives_count={r}"));
        }
    }
    if let Some(t) = pg.get_tcp_user_timeout() {
        options.push(format!("tcp_user_timeout={}", t.as_millis().max(1)));
    }
    if let Some(sc) = config.synchronous_commit {
        options.push(format!("synchronous_commit={}", sc.as_sql()));
    }
    if config.read_only {
        options.push("default_transaction_read_only=on".to_owned());
    }
    let extra: Vec<String> = options.iter().map(|o| format!("-c {o}")).collect();
    let extra = extra.join(" ");
    let options = match pg.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {extra}"),
        _ => extra,
    };
    pg.options(options);
    let target = url::redacted(&pg, &parsed.secrets);
    Ok(Settings {
        config,
        pg,
        target,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::SynchronousCommit;

    #[test]
    fn session_options_follow_the_config_and_the_url() {
        let cfg = PostgresConfig::default().with_synchronous_commit(Some(SynchronousCommit::Off));
        let s = resolve(
            "postgres://u@h/db?options=-c%20work_mem%3D4MB&keepalives_idle=60&mode=ro",
            cfg,
        )
        .unwrap();
        assert!(s.config.read_only);
        let options = s.pg.get_options().unwrap();
        assert!(options.starts_with("-c work_mem=4MB "), "{options}");
        for part in [
            "-c statement_timeout=30000",
            "-c tcp_keepalives_idle=60",
            "-c tcp_keepalives_interval=5",
            "-c tcp_keepalives_count=3",
            "-c tcp_user_timeout=30000",
            "-c synchronous_commit=off",
            "-c default_transaction_read_only=on",
        ] {
            assert!(options.contains(part), "{part} in {options}");
        }
        assert_eq!(s.pg.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(s.target, "postgres://u@h:5432/db");
    }

    #[test]
    fn malformed_url_is_invalid() {
        for url in ["postgres://u:p@h:notaport/db", "host=h port=x", "nonsense"] {
            let e = resolve(url, PostgresConfig::default()).err().unwrap();
            assert_eq!(e.kind(), event_log_core::StoreErrorKind::Invalid, "{url}");
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
    }
}
