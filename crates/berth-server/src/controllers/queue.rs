//! A keyed work queue and the workers that drain it, in the style of kube-rs's controller
//! runtime (and client-go's workqueue): a key queued twice is reconciled once; a key is never
//! reconciled by two workers at once (queued again while in flight, it runs once more after);
//! a reconcile asks to run again after a while, or fails and is retried with exponential
//! backoff.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a reconcile wants next for its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run again after this long (unless a change queues it sooner).
    RequeueAfter(Duration),
    /// Nothing until a change (or the resync) queues it again.
    AwaitChange,
}

/// The first retry of a failed key waits this long; each further failure doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// The longest wait between retries of a failing key.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Inner<K> {
    ready: VecDeque<K>,
    queued: HashSet<K>,
    in_flight: HashSet<K>,
    /// Keys queued while in flight: queued again when they finish.
    dirty: HashSet<K>,
    /// Keys waiting for their time, and when each is due.
    delayed: BTreeMap<(Instant, u64), K>,
    due: HashMap<K, (Instant, u64)>,
    sequence: u64,
    failures: HashMap<K, u32>,
}

/// A de-duplicating queue of keys to reconcile.
#[derive(Debug)]
pub struct WorkQueue<K> {
    inner: Mutex<Inner<K>>,
    wake: Notify,
}

impl<K: Clone + Eq + Hash + Ord> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            inner: Mutex::new(Inner {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                in_flight: HashSet::new(),
                dirty: HashSet::new(),
                delayed: BTreeMap::new(),
                due: HashMap::new(),
                sequence: 0,
                failures: HashMap::new(),
            }),
            wake: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> WorkQueue<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        self.inner.lock().expect("work queue lock poisoned")
    }

    /// Queues `key` now (a no-op when it is queued already).
    pub fn add(&self, key: K) {
        let mut inner = self.lock();
        if let Some(at) = inner.due.remove(&key) {
            inner.delayed.remove(&at);
        }
        if inner.in_flight.contains(&key) {
            inner.dirty.insert(key);
            return;
        }
        if inner.queued.insert(key.clone()) {
            inner.ready.push_back(key);
            drop(inner);
            self.wake.notify_one();
        }
    }

    /// Queues `key` after `delay`, unless it is queued sooner (the earlier time wins).
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut inner = self.lock();
        if inner.queued.contains(&key) {
            return;
        }
        if let Some(&(current, _)) = inner.due.get(&key) {
            if current <= at {
                return;
            }
            let old = inner.due.remove(&key).expect("just read");
            inner.delayed.remove(&old);
        }
        inner.sequence += 1;
        let slot = (at, inner.sequence);
        inner.delayed.insert(slot, key.clone());
        inner.due.insert(key, slot);
        drop(inner);
        // A worker may be sleeping until a later time: let it look again.
        self.wake.notify_one();
    }

    /// Waits for the next key to reconcile and marks it in flight.
    pub async fn next(&self) -> K {
        loop {
            let wait = {
                let mut inner = self.lock();
                let now = Instant::now();
                while let Some((&slot, _)) = inner.delayed.iter().next() {
                    if slot.0 > now {
                        break;
                    }
                    let key = inner.delayed.remove(&slot).expect("just seen");
                    inner.due.remove(&key);
                    if inner.in_flight.contains(&key) {
                        inner.dirty.insert(key);
                    } else if inner.queued.insert(key.clone()) {
                        inner.ready.push_back(key);
                    }
                }
                if let Some(key) = inner.ready.pop_front() {
                    inner.queued.remove(&key);
                    inner.in_flight.insert(key.clone());
                    if !inner.ready.is_empty() {
                        // More work: wake another worker.
                        self.wake.notify_one();
                    }
                    return key;
                }
                inner.delayed.keys().next().map(|(at, _)| *at)
            };
            match wait {
                Some(at) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Marks `key` done with `outcome`: requeued after its action's delay, or after a backoff
    /// that grows with each failure in a row; queued again at once if it changed meanwhile.
    pub fn done<E>(&self, key: K, outcome: &Result<Action, E>) {
        let retry = {
            let mut inner = self.lock();
            inner.in_flight.remove(&key);
            let retry = match outcome {
                Ok(action) => {
                    inner.failures.remove(&key);
                    match action {
                        Action::RequeueAfter(delay) => Some(*delay),
                        Action::AwaitChange => None,
                    }
                }
                Err(_) => {
                    let failures = inner.failures.entry(key.clone()).or_default();
                    *failures += 1;
                    Some(backoff(*failures))
                }
            };
            if inner.dirty.remove(&key) {
                drop(inner);
                self.add(key.clone());
            }
            retry
        };
        if let Some(delay) = retry {
            self.add_after(key, delay);
        }
    }

    /// How many keys are queued now (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Whether no key is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The wait before retry number `failures` (1 for the first).
pub fn backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// Starts `workers` workers that reconcile the keys of `queue` with `reconcile` for as long as
/// `alive` says so; errors are logged and retried with backoff.
pub fn spawn_workers<K, F, Fut, E>(
    queue: Arc<WorkQueue<K>>,
    workers: usize,
    reconcile: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    K: Clone + Eq + Hash + Ord + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(K) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Result<Action, E>>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    (0..workers)
        .map(|_| {
            let queue = Arc::clone(&queue);
            let reconcile = reconcile.clone();
            tokio::spawn(async move {
                loop {
                    let key = queue.next().await;
                    // `None`: the owner is gone; stop.
                    let Some(outcome) = reconcile(key.clone()).await else {
                        return;
                    };
                    if let Err(e) = &outcome {
                        tracing::warn!(key = ?key, error = %e, "reconcile failed; retrying with backoff");
                    }
                    queue.done(key, &outcome);
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_key_queued_twice_is_handed_out_once() {
        let queue = WorkQueue::default();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.next().await, "a");
        assert_eq!(queue.next().await, "b");
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_queued_while_in_flight_runs_once_more_after_and_never_twice_at_once() {
        let queue = WorkQueue::default();
        queue.add("a");
        let key = queue.next().await;
        queue.add("a");
        assert!(
            queue.is_empty(),
            "not handed to a second worker while in flight"
        );
        queue.done::<()>(key, &Ok(Action::AwaitChange));
        assert_eq!(queue.next().await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_waits_and_an_earlier_change_wins() {
        let queue = WorkQueue::default();
        queue.add("a");
        let key = queue.next().await;
        queue.done::<()>(key, &Ok(Action::RequeueAfter(Duration::from_secs(10))));
        let start = Instant::now();
        assert_eq!(queue.next().await, "a");
        assert_eq!(start.elapsed(), Duration::from_secs(10));

        queue.add_after("b", Duration::from_secs(60));
        queue.add("b");
        let start = Instant::now();
        assert_eq!(queue.next().await, "b");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_success_resets_them() {
        let queue = WorkQueue::default();
        queue.add("a");
        let mut waits = Vec::new();
        let mut key = queue.next().await;
        for _ in 0..3 {
            queue.done(key, &Err("boom"));
            let start = Instant::now();
            key = queue.next().await;
            waits.push(start.elapsed());
        }
        assert_eq!(waits, [BACKOFF_BASE, BACKOFF_BASE * 2, BACKOFF_BASE * 4]);
        queue.done::<()>("a", &Ok(Action::AwaitChange));
        queue.add("a");
        let key = queue.next().await;
        queue.done(key, &Err("boom"));
        let start = Instant::now();
        assert_eq!(queue.next().await, "a");
        assert_eq!(
            start.elapsed(),
            BACKOFF_BASE,
            "a success started the count again"
        );
        assert_eq!(backoff(40), BACKOFF_MAX);
    }
}
