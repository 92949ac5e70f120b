//! The delays between retries: jittered exponential backoff from [`backon`].
//!
//! Used by the listener's reconnect ([`crate::notify`]), the follower's catch-up and
//! subscription retries ([`crate::follower`]) and the wait for a sled's writer lock.
//! Each keeps its own loop, because what ends it is not a count: the listener and the
//! follower retry for as long as they live (until a success resets the delay), and the
//! writer lock's wait is bounded by wall time, queries included.
//!
//! The delay starts at `min`, doubles up to `max`, and each sleep adds a random part
//! of up to the delay again, never past `max`: processes that lost the server at the
//! same moment (a restart) do not all come back in the same millisecond, and the
//! configured bound stays the longest sleep.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// An endless sequence of retry delays; see the module docs.
#[derive(Debug)]
pub(crate) struct Backoff {
    builder: ExponentialBuilder,
    max: Duration,
    delays: ExponentialBackoff,
}

impl Backoff {
    /// Delays from `min` doubling to `max` (`max` below `min` counts as `min`).
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        let builder = ExponentialBuilder::new()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoff {
            builder,
            max,
            delays: builder.build(),
        }
    }

    /// The next delay: at least the current step, less than twice it, at most `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        // Without a count or a total limit the sequence never ends; `max` stands in
        // should it ever.
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// Starts again from `min` (after a success).
    pub(crate) fn reset(&mut self) {
        self.delays = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    /// Each step doubles, jitter stays below the next step, and `max` bounds them all.
    #[test]
    fn delays_double_with_jitter_up_to_the_bound() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        for step in [100u64, 200, 400, 800, 1_000, 1_000, 1_000] {
            let d = ms(b.next_delay());
            assert!(d >= step && d < 2 * step, "step {step}: {d}");
            assert!(d <= 1_000, "past the bound: {d}");
        }
    }

    /// Over many sequences the delays are spread, not all equal (that is the jitter).
    #[test]
    fn delays_are_spread() {
        let firsts: std::collections::BTreeSet<u64> = (0..32)
            .map(|_| {
                Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
                    .next_delay()
                    .as_micros() as u64
            })
            .collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[test]
    fn reset_starts_again_from_the_minimum() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(5));
        for _ in 0..8 {
            b.next_delay();
        }
        assert!(b.next_delay() >= Duration::from_millis(1_280));
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(20));
    }

    #[test]
    fn a_bound_below_the_minimum_is_the_minimum() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(10));
        assert_eq!(b.next_delay(), Duration::from_millis(50));
        assert_eq!(b.next_delay(), Duration::from_millis(50));
    }
}
