//! What one client may take of the server: open connections, time to send a request's head,
//! requests per second per principal (beyond it: `ThrottlingException`, as ECS answers) and
//! open desired-state streams per principal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; beyond it the server stops accepting until one closes.
    pub max_connections: usize,
    /// Time a client has to send a request's head (and an idle keep-alive connection to
    /// start the next), so slow or silent clients cannot hold connections.
    pub header_read_timeout: Duration,
    /// Requests per second each principal may make on average.
    pub requests_per_second: f64,
    /// Requests a principal may make at once above that rate.
    pub burst: f64,
    /// Desired-state streams each principal may hold open.
    pub max_streams_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 16_000,
            header_read_timeout: Duration::from_secs(30),
            requests_per_second: 20_000.0,
            burst: 40_000.0,
            max_streams_per_principal: 10_000,
        }
    }
}

/// A token bucket per principal.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Buckets untouched this long are forgotten (they are full again by then anyway).
const FORGET_AFTER: Duration = Duration::from_secs(60);

impl RateLimiter {
    /// Takes one request's token from `principal`'s bucket; `false` when it is empty.
    pub fn admit(&self, principal: &str, limits: &Limits) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.refilled) < FORGET_AFTER);
        }
        // A known principal's bucket is found without allocating its name again.
        if !buckets.contains_key(principal) {
            buckets.insert(
                principal.to_string(),
                Bucket {
                    tokens: limits.burst,
                    refilled: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(principal) else {
            return true;
        };
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limits.requests_per_second).min(limits.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open desired-state streams per principal.
#[derive(Debug, Default)]
pub struct StreamCount {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct StreamSlot {
    count: std::sync::Arc<StreamCount>,
    principal: String,
}

impl StreamCount {
    /// How many streams are open, every principal's.
    pub fn total(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// Counts a new stream of `principal`, unless it already holds `max`.
    pub fn open(self: &std::sync::Arc<Self>, principal: &str, max: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(principal.to_string()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            count: std::sync::Arc::clone(self),
            principal: principal.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.count.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_gets_its_burst_then_its_rate_and_others_are_untouched() {
        let limits = Limits {
            requests_per_second: 1.0,
            burst: 5.0,
            ..Limits::default()
        };
        let limiter = RateLimiter::default();
        let admitted = (0..10).filter(|_| limiter.admit("alice", &limits)).count();
        assert_eq!(admitted, 5, "the burst, then nothing until tokens refill");
        assert!(
            limiter.admit("bob", &limits),
            "another principal has its own bucket"
        );
    }

    #[test]
    fn streams_are_counted_per_principal_until_they_close() {
        let count = std::sync::Arc::new(StreamCount::default());
        let first = count.open("agent", 2).expect("first");
        let _second = count.open("agent", 2).expect("second");
        assert!(count.open("agent", 2).is_none(), "a third is refused");
        assert!(count.open("other", 2).is_some());
        drop(first);
        assert!(
            count.open("agent", 2).is_some(),
            "a closed stream frees its slot"
        );
    }
}
