//! Store URLs without their secrets, for every message, log line and printout.
//!
//! A store URL may carry a password in several places: the userinfo
//! (`postgres://alice:pw@host/db`, where the password may itself hold `@` or
//! percent-escapes), a query parameter (`?password=`, `?sslpassword=`, `?token=`…),
//! or, for PostgreSQL, a libpq key=value string (`host=h password='a b'`). This
//! module promises that [`redact_url`] removes every one of them, whatever the shape,
//! and that a text it cannot parse loses more, never less: the part that might be a
//! secret is replaced too.
//!
//! URLs are parsed with the `url` crate (WHATWG rules: the userinfo ends at the
//! *last* `@` of the authority). Query parameters and libpq strings are rewritten
//! piece by piece from the original text, so what is not secret is shown as given.

use url::Url;

/// What replaces a secret.
const HIDDEN: &str = "***";

/// Whether a query parameter or libpq keyword names a secret (case-insensitive):
/// `password`, `passwd`, `pwd`, `sslpassword`, `secret`, `token`, and any name
/// containing `password`, `secret` or `token` (e.g. `auth_token`).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    matches!(n.as_str(), "passwd" | "pwd")
        || ["password", "secret", "token"]
            .iter()
            .any(|w| n.contains(w))
}

/// `text` (a store URL or a libpq key=value string) with every password, secret
/// query parameter and secret keyword value replaced by `***`.
///
/// ```
/// use event_log::redact::redact_url;
/// assert_eq!(redact_url("postgres://alice:p@ss@db/x"), "postgres://alice:***@db/x");
/// assert_eq!(redact_url("postgres://db/x?password=pw"), "postgres://db/x?password=***");
/// assert_eq!(redact_url("host=db password='a b'"), "host=db password=***");
/// ```
pub fn redact_url(text: &str) -> String {
    if is_dsn(text) {
        return dsn(text).0;
    }
    match Url::parse(text) {
        Ok(url) if !looks_like_userinfo(text, &url) => parsed(text, url).0,
        _ => unparsed(text).0,
    }
}

/// Every secret `text` carries, as written and percent-decoded, for callers that
/// scrub them from texts they do not produce themselves (another crate's error
/// message). Empty when the URL holds none.
pub fn secrets(text: &str) -> Vec<String> {
    let mut found = if is_dsn(text) {
        dsn(text).1
    } else {
        match Url::parse(text) {
            Ok(url) if !looks_like_userinfo(text, &url) => parsed(text, url).1,
            _ => unparsed(text).1,
        }
    };
    let decoded: Vec<String> = found
        .iter()
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort();
    found.dedup();
    found
}

/// A libpq key=value string: no `://`, and it starts with `keyword =`.
pub(crate) fn is_dsn(text: &str) -> bool {
    if text.contains("://") {
        return false;
    }
    match text.split_once('=') {
        Some((key, _)) => {
            let key = key.trim();
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// `scheme:` or `scheme://`, and the rest; no head if `text` has no scheme.
fn split_scheme(text: &str) -> (&str, &str) {
    match text.split_once(':') {
        Some((scheme, _))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            let colon = scheme.len() + 1;
            let end = if text[colon..].starts_with("//") {
                colon + 2
            } else {
                colon
            };
            text.split_at(end)
        }
        _ => ("", text),
    }
}

/// True if the `url` crate found no password in `url` but its text has a `:`
/// before a later `@` (`postgres://u:1/b@h/db` parses as host `u`, port 1, path
/// `/b@h/db`; `postgres:u:pw@h` as an opaque path): a driver may still read a
/// password there, so the text is redacted as if it had one.
fn looks_like_userinfo(text: &str, url: &Url) -> bool {
    if url.password().is_some() {
        return false;
    }
    let (_, rest) = split_scheme(text);
    match rest.rfind('@') {
        Some(at) => rest[..at].contains(':'),
        None => false,
    }
}

/// A URL the `url` crate parsed: the redacted text and the secrets found.
fn parsed(text: &str, mut url: Url) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    if let Some(pw) = url.password() {
        secrets.push(pw.to_owned());
        // Cannot fail: a URL with a password has a host.
        let _ = url.set_password(Some(HIDDEN));
    }
    if let Some(q) = url.query().map(str::to_owned) {
        let (q, found) = query(&q);
        if !found.is_empty() {
            secrets.extend(found);
            url.set_query(Some(&q));
        }
    }
    if secrets.is_empty() {
        // Nothing to hide: show the URL exactly as given.
        (text.to_owned(), secrets)
    } else {
        (url.to_string(), secrets)
    }
}

/// A URL the `url` crate refused (e.g. several PostgreSQL hosts), or one it read
/// without a password although its text looks like it has one: everything up to the
/// last `@` after the scheme is taken for userinfo; of it, what follows the user
/// name (from the first `:`, `/`, `?`, `#` or `@`) is hidden, and secret query
/// parameters after the `@` are hidden. A `@` that was not the end of a userinfo
/// (say in a query value) only makes more of the text hidden.
fn unparsed(text: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let (head, rest) = split_scheme(text);
    let (userinfo, after) = match (head.is_empty(), rest.rfind('@')) {
        (false, Some(at)) => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let mut out = head.to_owned();
    if let Some(info) = userinfo {
        match info.find([':', '/', '?', '#', '@']) {
            Some(end) => {
                let hidden = &info[end..];
                secrets.push(hidden.strip_prefix(':').unwrap_or(hidden).to_owned());
                if let Some((_, q)) = hidden.split_once('?') {
                    secrets.extend(query(q).1);
                }
                out.push_str(&info[..end]);
                out.push(':');
                out.push_str(HIDDEN);
            }
            None => out.push_str(info),
        }
        out.push('@');
    }
    match after.split_once('?') {
        Some((path, q)) => {
            let (q, found) = query(q);
            secrets.extend(found);
            out.push_str(path);
            out.push('?');
            out.push_str(&q);
        }
        None => out.push_str(after),
    }
    (out, secrets)
}

/// A raw query string with secret parameters' values hidden (other parameters kept
/// byte for byte), and the hidden values.
fn query(q: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let (q, fragment) = match q.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (q, None),
    };
    let parts: Vec<String> = q
        .split('&')
        .map(|part| {
            let (raw_key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = url::form_urlencoded::parse(raw_key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if is_secret_name(&key) {
                secrets.push(value.to_owned());
                format!("{raw_key}={HIDDEN}")
            } else {
                part.to_owned()
            }
        })
        .collect();
    let mut out = parts.join("&");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    (out, secrets)
}

/// A libpq key=value string with secret keywords' values hidden, and those values.
///
/// Grammar (libpq "Keyword/Value Connection Strings"): `keyword = value` pairs
/// separated by whitespace; a value is single-quoted (with `\'` and `\\` escapes)
/// or runs to the next whitespace (with `\` escapes). An unterminated quote runs to
/// the end. A keyword without `=` hides the rest of the string.
fn dsn(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut secrets = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while let Some(c) = chars.next_if(|c| c.is_whitespace()) {
            out.push(c);
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            // Not `keyword = value`: hide whatever follows, it may be a secret.
            out.push_str(&key);
            if chars.peek().is_some() {
                out.push(' ');
                out.push_str(HIDDEN);
            }
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut raw = String::new();
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            raw.push('\'');
            while let Some(c) = chars.next() {
                raw.push(c);
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            raw.push(e);
                            value.push(e);
                        }
                    }
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                raw.push(c);
                if c == '\\' {
                    if let Some(e) = chars.next() {
                        raw.push(e);
                        value.push(e);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push_str(&key);
        out.push('=');
        if is_secret_name(&key) {
            secrets.push(value);
            secrets.push(raw);
            out.push_str(HIDDEN);
        } else {
            out.push_str(&raw);
        }
    }
    (out, secrets)
}

#[cfg(test)]
mod tests {
    use super::{redact_url, secrets};

    /// Every shape of secret a store URL can carry is gone from its redacted form.
    #[test]
    fn no_password_survives_redaction() {
        let cases: &[(&str, &[&str])] = &[
            ("postgres://alice:p@ss@db/x", &["p@ss", "ss@", "p%40ss"]),
            ("postgres://alice:Secr%40t99@db:5432/x", &["Secr", "t99"]),
            ("postgres://alice@db/x?password=Pa55word", &["Pa55word"]),
            (
                "postgres://db/x?sslmode=require&SSLPassword=Pa55word",
                &["Pa55word"],
            ),
            (
                "postgres://db/x?token=T0ken&secret=S3cret&pwd=Pwd1&auth_token=At0k",
                &["T0ken", "S3cret", "Pwd1", "At0k"],
            ),
            (
                "postgres://u:Pw1@h1:5432,h2:5433/db?password=Pw2",
                &["Pw1", "Pw2"],
            ),
            ("postgres://u:a/b@c@h/db", &["a/b", "b@c"]),
            ("postgres://u:1/b@h/db", &["1/b"]),
            ("postgres:u:Opaque1@h/db", &["Opaque1"]),
            ("postgres://u@h1:1,h2:2/db?password=Q1@x", &["Q1"]),
            ("postgres://h1:1,h2:2/db?sslpassword=Q2", &["Q2"]),
            ("postgres://db:5432/x?password=a1@b", &["a1"]),
            ("host=h password='a b' user=u", &["a b", "'a"]),
            ("host=h password=x", &["=x"]),
            ("host=h password = 'it\\'s' port=1", &["it"]),
            ("host=h PASSWORD=Upper1", &["Upper1"]),
            ("host=h password", &[]),
            ("host=h password 'Lost1'", &["Lost1"]),
        ];
        for (url, hidden) in cases {
            let shown = redact_url(url);
            for s in *hidden {
                assert!(
                    !shown.contains(s),
                    "{url} redacted to {shown}, which shows {s:?}"
                );
            }
        }
    }

    /// What is not secret is kept, so the message still says which store it was.
    #[test]
    fn redaction_keeps_user_host_and_other_parameters() {
        assert_eq!(
            redact_url("postgres://alice:p@ss@db/x"),
            "postgres://alice:***@db/x"
        );
        assert_eq!(
            redact_url("postgres://alice@db/x?sslmode=require&password=y"),
            "postgres://alice@db/x?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("host=h password='a b' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_url("postgres://u:Pw1@h1:5432,h2:5433/db"),
            "postgres://u:***@h1:5432,h2:5433/db"
        );
        assert_eq!(redact_url("sqlite:///tmp/a b.db"), "sqlite:///tmp/a b.db");
        assert_eq!(
            redact_url("sqlite://rel/x.db?durability=normal"),
            "sqlite://rel/x.db?durability=normal"
        );
        assert_eq!(redact_url("memory:"), "memory:");
    }

    /// The secrets are listed as written and decoded, for scrubbing other texts.
    #[test]
    fn secrets_lists_each_form() {
        let s = secrets("postgres://alice:Secr%40t@db/x?token=T%20k");
        for want in ["Secr%40t", "Secr@t", "T%20k", "T k"] {
            assert!(s.iter().any(|x| x == want), "{want} missing from {s:?}");
        }
        assert_eq!(secrets("host=h password='a b'"), vec!["'a b'", "a b"]);
        assert!(secrets("sqlite:///x.db").is_empty());
    }
}
