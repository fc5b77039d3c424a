//! Services as pure logic: deployment arithmetic, the rolling-update and DAEMON steps, the
//! circuit breaker, restart backoff, the event messages, and the reconcile that ties them
//! together. No I/O: the server's service controller observes, calls [`reconcile::reconcile`],
//! and commits what it decides.

pub mod backoff;
pub mod bounds;
pub mod daemon;
pub mod events;
pub mod facts;
pub mod lifecycle;
pub mod reconcile;
pub mod record;
pub mod replica;
pub mod task_sets;

pub use record::{IdSource, ServiceRecord};

/// Counting ids for tests.
#[cfg(test)]
pub(crate) mod test_ids {
    use super::record::IdSource;

    /// Deployment ids `ecs-svc/000…N` and event ids `event-N` from one counter.
    #[derive(Debug, Default)]
    pub struct Counter(pub u64);

    impl IdSource for Counter {
        fn deployment_id(&mut self) -> String {
            self.0 += 1;
            format!("ecs-svc/{:019}", self.0)
        }
        fn event_id(&mut self) -> String {
            self.0 += 1;
            format!("event-{}", self.0)
        }
    }
}
