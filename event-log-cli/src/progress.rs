//! Progress bars on long operator work: drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps (or a spinner when the total is unknown) with a message.
pub fn bar(len: Option<u64>, message: &'static str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{msg:>10} {spinner} {pos} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(message);
    pb
}
