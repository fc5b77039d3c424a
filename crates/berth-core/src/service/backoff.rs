//! Restart backoff: a service whose tasks keep failing does not start replacements as fast as
//! they die. After the n-th consecutive failure the next launch waits `min(1 s × 2^(n-1),
//! 5 min)`: 1 s, 2 s, 4 s, ... 256 s, then 300 s. A task that ran for
//! [`STABLE_AFTER`] seconds before it failed starts a new streak, and a service that stays in
//! a steady state that long forgets its streak.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Delay after the first failure of a streak, in seconds.
pub const BASE_DELAY: f64 = 1.0;
/// Longest delay, in seconds.
pub const MAX_DELAY: f64 = 300.0;
/// Seconds of running that count as a successful start.
pub const STABLE_AFTER: f64 = 30.0;
/// Consecutive failures from which the service's events say it cannot start tasks.
pub const REPORT_AFTER: u32 = 3;

/// A service's streak of failed tasks and when it may launch again.
#[skip_serializing_none]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Failed tasks in a row.
    #[serde(default)]
    pub failures: u32,
    /// No task is launched before this time (epoch seconds).
    #[serde(default)]
    pub next_launch_at: Option<f64>,
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row.
    pub fn delay(failures: u32) -> f64 {
        if failures == 0 {
            return 0.0;
        }
        let doublings = i32::try_from(failures - 1).unwrap_or(i32::MAX).min(30);
        (BASE_DELAY * 2f64.powi(doublings)).min(MAX_DELAY)
    }

    /// Counts a failed task observed at `now`; `ran_for` is how long it was RUNNING (None
    /// when it never started).
    pub fn record_failure(&mut self, ran_for: Option<f64>, now: f64) {
        if ran_for.is_some_and(|r| r >= STABLE_AFTER) {
            self.failures = 1;
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        self.next_launch_at = Some(now + Backoff::delay(self.failures));
    }

    /// Whether a task may be launched at `now`.
    pub fn may_launch(&self, now: f64) -> bool {
        self.next_launch_at.is_none_or(|at| now >= at)
    }

    /// Forgets the streak (a new deployment, or a service that has been steady long enough).
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_one_second_up_to_five_minutes() {
        let delays: Vec<f64> = (0..=11).map(Backoff::delay).collect();
        assert_eq!(
            delays,
            vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
        );
        assert_eq!(Backoff::delay(u32::MAX), 300.0);
    }

    #[test]
    fn consecutive_failures_push_the_next_launch_further_out() {
        let mut backoff = Backoff::default();
        assert!(backoff.may_launch(0.0));
        backoff.record_failure(None, 100.0);
        assert!(!backoff.may_launch(100.5));
        assert!(backoff.may_launch(101.0));
        backoff.record_failure(Some(2.0), 101.0);
        backoff.record_failure(Some(2.0), 104.0);
        assert_eq!(backoff.failures, 3);
        assert_eq!(backoff.next_launch_at, Some(108.0));
    }

    #[test]
    fn a_task_that_ran_long_enough_starts_a_new_streak() {
        let mut backoff = Backoff {
            failures: 6,
            next_launch_at: Some(0.0),
        };
        backoff.record_failure(Some(STABLE_AFTER), 1000.0);
        assert_eq!(backoff.failures, 1);
        assert_eq!(backoff.next_launch_at, Some(1001.0));
        backoff.reset();
        assert_eq!(backoff, Backoff::default());
    }
}
