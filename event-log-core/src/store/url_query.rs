//! The parameters of a file store's URL (`sqlite://events.db?mode=ro`), for backend
//! crates: each backend reads its own parameters with these helpers, so the facade
//! only picks the backend by scheme and every file store spells `mode` the same way.

/// Why the part of a file store URL after the scheme cannot be used. The text is
/// what a user reads after the URL it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlQueryError {
    /// Nothing between the scheme and the query.
    #[error("no file path after the scheme")]
    NoPath,
    /// A parameter the backend does not read.
    #[error("unknown parameter `{key}` (known: {known})")]
    Unknown {
        /// The parameter as written.
        key: String,
        /// The parameters the backend reads, comma-separated.
        known: &'static str,
    },
    /// A parameter with a value the backend does not know.
    #[error("{key} must be {expected}, not `{value}`")]
    BadValue {
        /// The parameter.
        key: &'static str,
        /// The value as written.
        value: String,
        /// The values it takes, as a phrase (`` `ro` or `rw` ``).
        expected: &'static str,
    },
}

/// A URL's parameters in order, as `(key, value)`; `k` without `=` has the value `""`.
pub type Params<'a> = Vec<(&'a str, &'a str)>;

/// Splits what follows `scheme:` in a file store URL (`//path?k=v&k2=v2`) into the
/// file path and its [`Params`].
pub fn split_file_url(rest: &str) -> Result<(&str, Params<'_>), UrlQueryError> {
    let (path, params) = match rest.split_once('?') {
        None => (rest, Vec::new()),
        Some((p, q)) => (
            p,
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .collect(),
        ),
    };
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(UrlQueryError::NoPath);
    }
    Ok((path, params))
}

/// The `mode=` parameter: `true` (read-only) for `ro`, `false` for `rw`.
pub fn read_only_mode(value: &str) -> Result<bool, UrlQueryError> {
    match value {
        "ro" => Ok(true),
        "rw" => Ok(false),
        other => Err(UrlQueryError::BadValue {
            key: "mode",
            value: other.to_owned(),
            expected: "`ro` or `rw`",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_path_and_parameters() {
        assert_eq!(
            split_file_url("//a/b.db?mode=ro&&flag").unwrap(),
            ("a/b.db", vec![("mode", "ro"), ("flag", "")])
        );
        assert_eq!(split_file_url("x.db").unwrap(), ("x.db", vec![]));
        assert_eq!(split_file_url("//?mode=ro"), Err(UrlQueryError::NoPath));
    }

    #[test]
    fn mode_is_ro_or_rw() {
        assert_eq!(read_only_mode("ro"), Ok(true));
        assert_eq!(read_only_mode("rw"), Ok(false));
        assert_eq!(
            read_only_mode("x").unwrap_err().to_string(),
            "mode must be `ro` or `rw`, not `x`"
        );
    }
}
