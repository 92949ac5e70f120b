//! The persister's retry schedule: jittered exponential backoff from [`backon`],
//! bounded by the policy's retry count and time budget.
//!
//! backon supplies the sleeps (exponential, capped, jittered); the persister keeps
//! its own loop around them because what happens between two attempts depends on
//! the reply (a batch in doubt is settled by reading the log before the next send)
//! and because a backpressured persister goes on retrying after the budget (see
//! [`Schedule::next_sleep`]).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use super::config::RetryPolicy;

/// The retries of one batch (or one read), from its first failed attempt.
#[derive(Debug)]
pub(crate) struct Schedule {
    policy: RetryPolicy,
    backoff: ExponentialBackoff,
    started: Instant,
    retries: u32,
}

impl Schedule {
    /// Starts the budget now (call it at the first attempt).
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(policy.initial_backoff)
            .with_max_delay(policy.max_backoff.max(policy.initial_backoff))
            .with_factor(2.0)
            .without_max_times();
        if policy.jitter {
            builder = builder.with_jitter();
        }
        Schedule {
            policy,
            backoff: builder.build(),
            started: Instant::now(),
            retries: 0,
        }
    }

    /// Retries granted so far.
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }

    /// Time since the first attempt.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The sleep before the next retry, or `None` once the budget is spent: the
    /// retry count reached `max_retries`, or the sleep would end past `max_elapsed`
    /// from the first attempt. With `beyond_budget` it never ends: the budget's
    /// limits are ignored and the sleeps stay capped at about `max_backoff`.
    pub(crate) fn next_sleep(&mut self, beyond_budget: bool) -> Option<Duration> {
        let sleep = self.backoff.next().unwrap_or(self.policy.max_backoff);
        if !beyond_budget {
            let spent = self.retries >= self.policy.max_retries
                || self.started.elapsed().saturating_add(sleep) > self.policy.max_elapsed;
            if spent {
                return None;
            }
        }
        self.retries = self.retries.saturating_add(1);
        Some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_retries: u32, max_elapsed_ms: u64, jitter: bool) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(80),
            max_elapsed: Duration::from_millis(max_elapsed_ms),
            jitter,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_double_up_to_the_cap_and_stop_at_the_count() {
        let mut s = Schedule::new(policy(6, 60_000, false));
        let sleeps: Vec<_> = std::iter::from_fn(|| s.next_sleep(false))
            .map(|d| (d.as_secs_f64() * 1000.0).round() as u64)
            .collect();
        assert_eq!(sleeps, [10, 20, 40, 80, 80, 80]);
        assert_eq!(s.retries(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_budget_ends_the_retries_and_jitter_stays_within_twice_the_sleep() {
        let mut s = Schedule::new(policy(u32::MAX, 1_000, true));
        let mut slept = Duration::ZERO;
        while let Some(d) = s.next_sleep(false) {
            assert!(
                d >= Duration::from_millis(10) && d < Duration::from_millis(160),
                "{d:?}"
            );
            tokio::time::sleep(d).await;
            slept += d;
        }
        assert!(slept <= Duration::from_millis(1_000), "{slept:?}");
        // At most 160 ms each, so at least 6 sleeps fit before the budget runs out.
        assert!(s.retries() >= 6, "{}", s.retries());
        // Beyond the budget (a backpressured persister) it goes on.
        assert!(s.next_sleep(true).is_some());
    }
}
