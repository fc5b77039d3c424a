//! The server's in-memory view of the store, built from a list and kept current by a watch,
//! like a Kubernetes informer. Reads are served from it; a writer waits until the view has
//! caught up with its own write before answering, so clients read their writes.

use berth_store::{EventKind, KeyValue, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// A mirror of the whole key space at some revision.
#[derive(Debug)]
pub struct View {
    entries: RwLock<BTreeMap<String, KeyValue>>,
    revision: watch::Sender<u64>,
}

impl View {
    /// Lists the store, then follows its watch in the background for as long as the
    /// returned view lives.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<View>, StoreError> {
        let (items, revision) = store.list("/").await?;
        let view = Arc::new(View {
            entries: RwLock::new(items.into_iter().map(|kv| (kv.key.clone(), kv)).collect()),
            revision: watch::channel(revision).0,
        });
        let weak = Arc::downgrade(&view);
        tokio::spawn(async move {
            let mut from = revision + 1;
            loop {
                let mut stream = match store.watch("/", from).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::error!(error = %e, "view: watch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                while let Some(batch) = stream.recv().await {
                    let Some(view) = weak.upgrade() else { return };
                    match batch {
                        Ok(events) => {
                            if let Some(last) = events.last() {
                                from = last.revision + 1;
                            }
                            view.apply(events);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "view: watch ended; listing again");
                            match store.list("/").await {
                                Ok((items, revision)) => {
                                    view.replace(items, revision);
                                    from = revision + 1;
                                }
                                Err(e) => tracing::error!(error = %e, "view: relist failed"),
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
        Ok(view)
    }

    fn apply(&self, events: Vec<berth_store::Event>) {
        let Some(last) = events.last().map(|e| e.revision) else {
            return;
        };
        {
            let mut entries = self.entries.write().expect("view lock poisoned");
            for event in events {
                match event.kind {
                    EventKind::Put => {
                        let previous = entries.get(&event.key);
                        let kv = KeyValue {
                            create_revision: previous.map_or(event.revision, |p| p.create_revision),
                            version: previous.map_or(1, |p| p.version + 1),
                            key: event.key.clone(),
                            value: event.value,
                            mod_revision: event.revision,
                        };
                        entries.insert(event.key, kv);
                    }
                    EventKind::Delete => {
                        entries.remove(&event.key);
                    }
                }
            }
        }
        self.advance(last);
    }

    fn replace(&self, items: Vec<KeyValue>, revision: u64) {
        *self.entries.write().expect("view lock poisoned") =
            items.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        self.advance(revision);
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

    /// The revision the view reflects.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// A receiver that changes whenever the view advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Waits until the view reflects at least `revision`.
    pub async fn wait_for(&self, revision: u64) {
        let mut rx = self.revision.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot see it closed.
        let _ = rx.wait_for(|current| *current >= revision).await;
    }

    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.entries
            .read()
            .expect("view lock poisoned")
            .get(key)
            .cloned()
    }

    /// All entries under `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Vec<KeyValue> {
        let entries = self.entries.read().expect("view lock poisoned");
        entries
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, kv)| kv.clone())
            .collect()
    }

    /// How many entries lie under `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        let entries = self.entries.read().expect("view lock poisoned");
        entries
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::{SqliteStore, Txn};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn view_follows_puts_and_deletes_in_the_store() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
        store
            .txn(Txn::new().put("/a/1", b"x".to_vec()))
            .await
            .expect("txn");
        let view = View::start(store.clone()).await.expect("start");
        assert_eq!(view.get("/a/1").expect("listed").value, b"x");
        let put = store
            .txn(Txn::new().put("/a/2", b"y".to_vec()))
            .await
            .expect("txn");
        view.wait_for(put.revision).await;
        assert_eq!(view.list("/a/").len(), 2);
        let del = store.txn(Txn::new().delete("/a/1")).await.expect("txn");
        view.wait_for(del.revision).await;
        assert!(view.get("/a/1").is_none());
        assert_eq!(view.count("/a/"), 1);
        let kv = view.get("/a/2").expect("kv");
        assert_eq!(kv.mod_revision, put.revision);
    }
}
