//! Exponential backoff with jitter for reconnects and report retries: 0.1 s doubling up to
//! 5 s, each delay drawn between half and all of the current step.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first delay.
pub const INITIAL: Duration = Duration::from_millis(100);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(5);

/// Delays that double from [`INITIAL`] to [`MAX`], jittered.
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { step: INITIAL }
    }
}

impl Backoff {
    /// The next delay to wait; each call doubles the step up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(MAX);
        let half = step / 2;
        half + half.mul_f64(random_fraction())
    }

    /// Starts over from the first delay (after a success).
    pub fn reset(&mut self) {
        self.step = INITIAL;
    }
}

/// A number in [0, 1) that differs between calls: `RandomState` is seeded per process and
/// per instance, which is all jitter needs.
fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_a_tenth_of_a_second_up_to_five_seconds_with_jitter() {
        let mut backoff = Backoff::default();
        let mut steps = Vec::new();
        for _ in 0..10 {
            steps.push(backoff.next_delay());
        }
        assert!(steps[0] >= Duration::from_millis(50) && steps[0] <= INITIAL);
        assert!(steps[1] >= Duration::from_millis(100) && steps[1] <= Duration::from_millis(200));
        assert!(steps.iter().all(|d| *d <= MAX));
        assert!(steps[9] >= MAX / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }
}
