//! Writing results to stdout, where a closed pipe means "stop, success".
//!
//! `evlog show … | head -1` closes the pipe after one line; the next write fails
//! with `BrokenPipe`. `println!` panics on it; [`line()`] returns [`OutputError::Closed`]
//! instead, which the command returns and `main` turns into a quiet exit 0.

use std::fmt;
use std::io::Write;

/// Why a line could not be written to stdout.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader went away (the pipe is closed): not a failure, the command stops.
    #[error("stdout closed")]
    Closed,
    /// Another write error.
    #[error("cannot write to stdout: {0}")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for OutputError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Io(e)
        }
    }
}

/// Writes `args` and a newline to stdout.
pub fn line(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes `text` as it is to stdout.
pub fn text(text: &str) -> Result<(), OutputError> {
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// Writes `value` as one line of JSON to stdout.
pub fn json<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let s = serde_json::to_string(value)?;
    line(format_args!("{s}"))?;
    Ok(())
}

/// Flushes stdout (a closed pipe is [`OutputError::Closed`]).
pub fn flush() -> Result<(), OutputError> {
    std::io::stdout().lock().flush()?;
    Ok(())
}

/// Whether `e`, or an error it was caused by, is [`OutputError::Closed`].
pub fn is_closed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if matches!(err.downcast_ref::<OutputError>(), Some(OutputError::Closed)) {
            return true;
        }
        next = err.source();
    }
    false
}

/// `println!` that returns an [`OutputError`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
