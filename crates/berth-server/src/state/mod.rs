//! The server's typed, indexed cache of the store, built from a list and kept current by a
//! watch, like a Kubernetes informer. Each object is decoded once, when its event is applied;
//! the indexes and counters are kept from the same events ([`State`]). Readers take a
//! snapshot (one `Arc` clone) and never hold a lock while they read. A writer waits until the
//! cache has caught up with its own write before answering, so clients read their writes.
//!
//! Changes are routed: the agent stream of an instance subscribes to [`StateCache::instance_changes`],
//! which moves only when a task of that instance changes in a way its agent acts on.

pub mod index;
pub mod load;
pub mod snapshot;
pub mod tasks;
#[cfg(test)]
mod tests;

pub use index::scoped;
pub use snapshot::{epoch_ms, Entry, State, TaskIndex, Touched};
pub use tasks::TaskEntry;

use berth_store::{EventKind, KeyValue, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, watch};

/// The cache: the current [`State`] and who to wake when it moves.
#[derive(Debug)]
pub struct StateCache {
    current: RwLock<Arc<State>>,
    revision: watch::Sender<u64>,
    /// Per instance ARN: the revision of the last change its agent must act on.
    routes: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Who is told what each applied batch touched (controllers).
    listeners: Mutex<Vec<mpsc::UnboundedSender<Arc<Touched>>>>,
    /// The store followed, asked for the watch's progress when a revision is slow to come.
    store: Arc<dyn Store>,
}

/// How long [`StateCache::wait_for`] waits for a revision before it asks the store's watch for
/// progress, and then between asks.
const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_millis(100);
const PROGRESS_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

impl StateCache {
    /// Lists the store, then follows its watch in the background for as long as the
    /// returned cache lives.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<StateCache>, StoreError> {
        let (items, revision) = store.list("/").await?;
        let state = tokio::task::spawn_blocking(move || State::from_items(items, revision))
            .await
            .map_err(|e| StoreError::Backend(format!("building the state cache failed: {e}")))?;
        let cache = Arc::new(StateCache {
            current: RwLock::new(Arc::new(state)),
            revision: watch::channel(revision).0,
            routes: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
            store: Arc::clone(&store),
        });
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            let mut from = revision + 1;
            loop {
                let mut stream = match store.watch("/", from).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::error!(error = %e, "state: watch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                while let Some(batch) = stream.recv().await {
                    let Some(cache) = weak.upgrade() else { return };
                    match batch {
                        Ok(events) => {
                            if let Some(last) = events.last() {
                                from = last.revision + 1;
                            }
                            // The store's word that nothing else changed up to a revision:
                            // no new state to make.
                            if events.iter().all(|e| e.kind == EventKind::Progress) {
                                if let Some(last) = events.last() {
                                    cache.advance(last.revision);
                                }
                                continue;
                            }
                            // Decoding a large batch is CPU work: keep it off the async workers.
                            let applying = Arc::clone(&cache);
                            if let Err(e) =
                                tokio::task::spawn_blocking(move || applying.apply(events)).await
                            {
                                tracing::error!(error = %e, "state: applying a batch failed");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "state: watch ended; listing again");
                            match store.list("/").await {
                                Ok((items, revision)) => {
                                    cache.replace(items, revision);
                                    from = revision + 1;
                                }
                                Err(e) => tracing::error!(error = %e, "state: relist failed"),
                            }
                            break;
                        }
                    }
                }
                if weak.strong_count() == 0 {
                    return;
                }
            }
        });
        Ok(cache)
    }

    /// Applies a batch of watch events as one new state, then wakes who it concerns.
    fn apply(&self, events: Vec<berth_store::Event>) {
        let Some(last) = events.last().map(|e| e.revision) else {
            return;
        };
        let mut next = State::clone(&self.snapshot());
        let mut touched = Touched::default();
        for event in events {
            next.apply(event, &mut touched);
        }
        *self.current.write().expect("state lock poisoned") = Arc::new(next);
        self.route(touched.instances.iter().map(String::as_str), last);
        self.tell(touched);
        self.advance(last);
    }

    fn tell(&self, touched: Touched) {
        if touched.services.is_empty() && touched.clusters.is_empty() {
            return;
        }
        let touched = Arc::new(touched);
        self.listeners
            .lock()
            .expect("listeners lock poisoned")
            .retain(|listener| listener.send(Arc::clone(&touched)).is_ok());
    }

    /// What each batch applied from now on touched (services and clusters; routed instances
    /// go to [`StateCache::instance_changes`]). After a relist, every cluster is reported.
    pub fn changes(&self) -> mpsc::UnboundedReceiver<Arc<Touched>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.listeners
            .lock()
            .expect("listeners lock poisoned")
            .push(sender);
        receiver
    }

    /// Replaces the state by a fresh listing (after the watch fell behind compaction): every
    /// route is woken, since anything may have changed.
    fn replace(&self, items: Vec<KeyValue>, revision: u64) {
        *self.current.write().expect("state lock poisoned") =
            Arc::new(State::from_items(items, revision));
        let all: Vec<String> = self
            .routes
            .lock()
            .expect("routes lock poisoned")
            .keys()
            .cloned()
            .collect();
        self.route(all.iter().map(String::as_str), revision);
        let clusters = self
            .snapshot()
            .list(berth_store::keys::CLUSTERS)
            .filter_map(|(key, _)| key.strip_prefix(berth_store::keys::CLUSTERS))
            .map(str::to_string)
            .collect();
        self.tell(Touched {
            clusters,
            ..Touched::default()
        });
        self.advance(revision);
    }

    fn route<'a>(&self, instances: impl Iterator<Item = &'a str>, revision: u64) {
        let routes = self.routes.lock().expect("routes lock poisoned");
        for arn in instances {
            if let Some(sender) = routes.get(arn) {
                sender.send_replace(revision);
            }
        }
    }

    fn advance(&self, revision: u64) {
        self.revision.send_if_modified(|current| {
            let newer = revision > *current;
            if newer {
                *current = revision;
            }
            newer
        });
    }

    /// The current state: a snapshot that stays as it is while the caller reads it.
    pub fn snapshot(&self) -> Arc<State> {
        self.current.read().expect("state lock poisoned").clone()
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// A receiver that changes whenever the cache advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// A receiver that changes only when a task of the instance `arn` changes in a way its
    /// agent acts on (placed, asked to stop, stopped, removed).
    pub fn instance_changes(&self, arn: &str) -> watch::Receiver<u64> {
        let mut routes = self.routes.lock().expect("routes lock poisoned");
        routes
            .entry(arn.to_string())
            .or_insert_with(|| watch::channel(self.revision()).0)
            .subscribe()
    }

    /// Waits until the cache reflects at least `revision`.
    pub async fn wait_for(&self, revision: u64) {
        let mut rx = self.revision.subscribe();
        let reached = |current: &u64| *current >= revision;
        // A revision this store's writes made comes as events at once. One that only another
        // installation's writes made (a shared etcd: a failed guard, or the head, answer the
        // store's revision) comes only as the watch's progress, asked for when it is slow.
        // The sender lives as long as `self`, so `wait_for` cannot see it closed.
        let mut patience = PROGRESS_AFTER;
        while tokio::time::timeout(patience, rx.wait_for(reached))
            .await
            .is_err()
        {
            self.store.request_progress();
            patience = PROGRESS_AGAIN;
        }
    }

    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.snapshot().key_value(key)
    }

    /// All entries under `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Vec<KeyValue> {
        let state = self.snapshot();
        state
            .list(prefix)
            .filter_map(|(key, _)| state.key_value(key))
            .collect()
    }
}
