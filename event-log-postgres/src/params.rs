//! The URL parameters: this crate's own ([`OWN_PARAMS`], applied over
//! [`PostgresConfig`]), the TLS ones ([`TLS_PARAMS`], read by [`crate::tls`]), and the
//! driver's (libpq's names, passed on to `tokio-postgres`). Taking a URL apart, and
//! keeping its password out of sight, is [`crate::url`]'s.

use std::time::Duration;

use event_log_core::StoreError;

use crate::config::{PostgresConfig, invalid};
use crate::options::Recycling;

/// This crate's URL parameters, applied over [`PostgresConfig`]; see the crate docs.
pub const OWN_PARAMS: &[&str] = &[
    "schema",
    "mode",
    "operation_timeout",
    "statement_timeout",
    "sled_lock_timeout",
    "recycle",
];

/// The parameters `tokio-postgres` knows (libpq's names).
const DRIVER_PARAMS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// The TLS parameters, read by [`crate::tls`] (libpq's names).
pub(crate) const TLS_PARAMS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// True for the parameters this crate reads itself ([`OWN_PARAMS`] and
/// [`TLS_PARAMS`]), which the driver never sees.
pub(crate) fn is_own(k: &str) -> bool {
    OWN_PARAMS.contains(&k) || TLS_PARAMS.contains(&k)
}

/// True for the parameters the driver reads.
pub(crate) fn is_driver(k: &str) -> bool {
    DRIVER_PARAMS.contains(&k)
}

/// A duration parameter: whole seconds (`30`), or with a unit: `500ms`, `30s`, `2min`.
fn duration(name: &str, v: &str) -> Result<Duration, StoreError> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = digits.parse().map_err(|_| {
        invalid(format!(
            "URL parameter {name}: expected a duration like 30, 30s or 500ms"
        ))
    })?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(invalid(format!(
            "URL parameter {name}: unknown unit (use ms, s or min)"
        ))),
    }
}

/// Applies this crate's URL parameters over `config`.
pub(crate) fn apply_own(
    own: &[(String, String)],
    config: &mut PostgresConfig,
) -> Result<(), StoreError> {
    for (k, v) in own {
        match k.as_str() {
            "schema" => config.schema = v.clone(),
            "mode" => {
                config.read_only = event_log_core::backend::url_query::read_only_mode(v)
                    .map_err(|e| invalid(format!("URL parameter {e}")))?;
            }
            "operation_timeout" => config.operation_timeout = duration(k, v)?,
            "statement_timeout" => {
                let d = duration(k, v)?;
                config.statement_timeout = (!d.is_zero()).then_some(d);
            }
            "sled_lock_timeout" => config.sled_lock_timeout = duration(k, v)?,
            "recycle" => {
                config.recycling = match v.as_str() {
                    "fast" => Recycling::Fast,
                    "verified" => Recycling::Verified,
                    _ => {
                        return Err(invalid(
                            "URL parameter recycle: expected `fast` or `verified`",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
