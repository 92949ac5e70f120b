//! Reading a connection URL: this crate's own parameters, the driver's, and the
//! password, which must never be shown.
//!
//! Two shapes are accepted, as by libpq: a URL (`postgres://user:password@host:port/db?k=v&…`,
//! or `postgresql://`) and a key=value string (`host=h user=u password='…' dbname=d`).
//! This crate's parameters ([`OWN_PARAMS`]) are taken out before the rest goes to
//! `tokio-postgres`, which refuses names it does not know.
//!
//! # Passwords
//! - In a URL, the user info ends at the *last* `@` before the first `?` (or, when
//!   there is none there, the last `@` at all), so a password may hold `@`, `/`, `:`
//!   or `?` unencoded (`postgres://alice:p@ss@db/app` is user `alice`, password
//!   `p@ss`, host `db`). The driver itself splits at the first `@`, which would put
//!   the rest of such a password into the host name, and from there into messages.
//! - A password may also come as `?password=` or `password=` in a key=value string.
//! - Messages about a malformed URL never quote it; they name a parameter only where
//!   it cannot be part of a password (an unknown name is not shown when the URL also
//!   passes a password as a parameter: an unquoted space in it would make the rest
//!   look like another parameter).
//! - The server is shown by [`redacted`]: `postgres://user@host:port/db`, never a
//!   password, and with every password text found replaced by `***` in case a
//!   malformed URL put one elsewhere.

use event_log_core::StoreError;
use percent_encoding::percent_decode_str;
use tokio_postgres::config::Host;

use crate::config::invalid;
use crate::params::{OWN_PARAMS, TLS_PARAMS, is_driver, is_own};

/// A URL taken apart.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// What goes to `tokio-postgres`: the URL without this crate's parameters.
    pub driver: String,
    /// This crate's parameters (the TLS ones too), decoded, in order.
    pub own: Vec<(String, String)>,
    /// Names of the driver's parameters the URL sets.
    pub driver_keys: Vec<String>,
    /// Every password text found (raw and decoded), for scrubbing.
    pub secrets: Vec<String>,
}

/// Takes `url` apart (see the module docs). Errors never quote the URL.
pub(crate) fn parse(url: &str) -> Result<Parsed, StoreError> {
    let mut p = Parsed::default();
    for prefix in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            parse_url(prefix, rest, &mut p)?;
            return Ok(p);
        }
    }
    parse_key_values(url, &mut p)?;
    Ok(p)
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_url(prefix: &str, rest: &str, p: &mut Parsed) -> Result<(), StoreError> {
    let first_q = rest.find('?').unwrap_or(rest.len());
    let at = rest[..first_q].rfind('@').or_else(|| rest.rfind('@'));
    let mut driver = prefix.to_owned();
    let after = match at {
        Some(i) => {
            let userinfo = &rest[..i];
            if let Some((_, password)) = userinfo.split_once(':') {
                p.secrets.push(password.to_owned());
                p.secrets.push(decode(password));
            }
            // The driver splits at the first `@`: hide the others from it.
            driver.push_str(&userinfo.replace('@', "%40"));
            driver.push('@');
            &rest[i + 1..]
        }
        None => rest,
    };
    let (hostpath, query) = match after.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (after, None),
    };
    driver.push_str(hostpath);
    let Some(query) = query else {
        p.driver = driver;
        return Ok(());
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let Some((raw_k, raw_v)) = pair.split_once('=') else {
            return Err(invalid(
                "malformed PostgreSQL URL: a parameter without `=` in the query",
            ));
        };
        let (k, v) = (decode(raw_k), decode(raw_v));
        if k == "password" {
            p.secrets.push(raw_v.to_owned());
            p.secrets.push(v.clone());
        }
        if !is_own(&k) {
            kept.push(pair);
        }
        pairs.push((k, v));
    }
    if !kept.is_empty() {
        driver.push('?');
        driver.push_str(&kept.join("&"));
    }
    p.driver = driver;
    sort_params(pairs, p)
}

/// Splits parameters into this crate's and the driver's, refusing unknown names.
fn sort_params(pairs: Vec<(String, String)>, p: &mut Parsed) -> Result<(), StoreError> {
    let has_password_param = pairs.iter().any(|(k, _)| k == "password");
    for (k, v) in pairs {
        if is_own(&k) {
            p.own.push((k, v));
        } else if is_driver(&k) {
            p.driver_keys.push(k);
        } else if has_password_param {
            return Err(invalid(
                "malformed PostgreSQL URL: an unknown parameter (not named: it follows a \
                 password, and may be part of it; quote or percent-encode the password)",
            ));
        } else {
            return Err(invalid(format!(
                "malformed PostgreSQL URL: unknown parameter `{k}` (this crate's: {}, {}; and \
                 libpq's connection parameters)",
                OWN_PARAMS.join(", "),
                TLS_PARAMS.join(", ")
            )));
        }
    }
    Ok(())
}

/// A `key=value` string, tokenised as libpq (and `tokio-postgres`) does: keys end at
/// whitespace or `=`, values are bare (to whitespace) or single-quoted, `\` escapes.
fn parse_key_values(s: &str, p: &mut Parsed) -> Result<(), StoreError> {
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].1.is_whitespace() {
            *i += 1;
        }
    };
    let malformed = |what: &str, at: usize| {
        invalid(format!(
            "malformed PostgreSQL connection string: {what} at byte {at}"
        ))
    };
    let offset = |i: usize| bytes.get(i).map(|b| b.0).unwrap_or(s.len());
    let mut pairs = Vec::new();
    let mut driver = String::new();
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            break;
        }
        let start = offset(i);
        while i < bytes.len() && !bytes[i].1.is_whitespace() && bytes[i].1 != '=' {
            i += 1;
        }
        let key = s[start..offset(i)].to_owned();
        skip_ws(&mut i);
        if bytes.get(i).map(|b| b.1) != Some('=') {
            return Err(malformed("expected `=` after a parameter name", offset(i)));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if bytes.get(i).map(|b| b.1) == Some('\'') {
            i += 1;
            loop {
                match bytes.get(i).map(|b| b.1) {
                    None => return Err(malformed("unterminated quoted value", offset(i))),
                    Some('\'') => break,
                    Some('\\') => {
                        i += 1;
                        if let Some(&(_, c)) = bytes.get(i) {
                            value.push(c);
                        }
                    }
                    Some(c) => value.push(c),
                }
                i += 1;
            }
            i += 1;
        } else {
            while let Some(&(_, c)) = bytes.get(i) {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    i += 1;
                    if let Some(&(_, c)) = bytes.get(i) {
                        value.push(c);
                    }
                } else {
                    value.push(c);
                }
                i += 1;
            }
            if value.is_empty() {
                return Err(malformed("a parameter without a value", offset(i)));
            }
        }
        let end = offset(i);
        if key == "password" {
            p.secrets.push(value.clone());
            p.secrets.push(s[start..end].to_owned());
        }
        if !is_own(&key) {
            driver.push_str(&s[start..end]);
            driver.push(' ');
        }
        pairs.push((key, value));
    }
    p.driver = driver.trim_end().to_owned();
    sort_params(pairs, p)
}

/// `text` with every password text of `secrets` (3 characters or more) replaced by
/// `***`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.chars().count() >= 3) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The server as a URL without the password, for messages and logs.
pub(crate) fn redacted(pg: &tokio_postgres::Config, secrets: &[String]) -> String {
    let user = pg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let db = pg.get_dbname().unwrap_or("");
    scrub(
        &format!("postgres://{user}{}/{db}", hosts.join(",")),
        secrets,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::PostgresConfig;
    use crate::params::apply_own;

    fn pg(url: &str) -> (tokio_postgres::Config, Parsed) {
        let p = parse(url).unwrap();
        (p.driver.parse().unwrap(), p)
    }

    #[test]
    fn an_at_sign_in_the_password_stays_in_the_password() {
        for url in [
            "postgres://alice:p@ss@db.example:6543/app",
            "postgres://alice:p%40ss@db.example:6543/app",
            "postgresql://alice:p@ss@db.example:6543/app?application_name=x@y",
        ] {
            let (c, p) = pg(url);
            assert_eq!(c.get_password(), Some(&b"p@ss"[..]), "{url}");
            assert_eq!(
                redacted(&c, &p.secrets),
                "postgres://alice@db.example:6543/app"
            );
        }
        let (c, _) = pg("postgres://alice:p/s?s@db:1/app");
        assert_eq!(c.get_password(), Some(&b"p/s?s"[..]));
        assert_eq!(c.get_dbname(), Some("app"));
    }

    #[test]
    fn own_parameters_are_taken_out() {
        let (c, p) =
            pg("postgres://u@h/db?schema=s1&mode=ro&sslmode=disable&statement_timeout=500ms");
        assert_eq!(c.get_dbname(), Some("db"));
        assert_eq!(p.driver, "postgres://u@h/db");
        let mut config = PostgresConfig::default();
        apply_own(&p.own, &mut config).unwrap();
        assert_eq!(config.schema, "s1");
        assert!(config.read_only);
        assert_eq!(config.statement_timeout, Some(Duration::from_millis(500)));
        let p = parse("host=h mode=ro user='a b' operation_timeout=2s").unwrap();
        assert_eq!(p.driver, "host=h user='a b'");
        apply_own(&p.own, &mut config).unwrap();
        assert_eq!(config.operation_timeout, Duration::from_secs(2));
    }

    #[test]
    fn passwords_are_found_in_every_shape() {
        for (url, secret) in [
            ("postgres://u:s3cret@h/db", "s3cret"),
            ("postgres://u@h/db?password=s3cret", "s3cret"),
            ("host=h password=s3cret", "s3cret"),
            ("host=h password='s3 cret'", "s3 cret"),
        ] {
            let p = parse(url).unwrap();
            assert!(
                p.secrets.iter().any(|s| s == secret),
                "{url}: {:?}",
                p.secrets
            );
        }
    }

    #[test]
    fn malformed_urls_are_invalid_and_never_quoted() {
        for url in [
            "host=h password=se cret=x",
            "host=h password=se cret",
            "host=h password='unterminated",
            "postgres://u@h/db?password=se&cret=x",
            "postgres://u@h/db?password",
        ] {
            let e = parse(url).unwrap_err();
            assert_eq!(e.kind(), event_log_core::StoreErrorKind::Invalid, "{url}");
            assert!(!e.to_string().contains("cret"), "{e}");
        }
        let e = parse("postgres://u@h/db?shema=x").unwrap_err();
        assert!(
            e.to_string().contains("`shema`"),
            "names a harmless typo: {e}"
        );
        assert!(parse("postgres://u@h/db?statement_timeout=5h").is_ok());
        let mut config = PostgresConfig::default();
        let p = parse("postgres://u@h/db?statement_timeout=5h").unwrap();
        assert!(apply_own(&p.own, &mut config).is_err());
    }
}
