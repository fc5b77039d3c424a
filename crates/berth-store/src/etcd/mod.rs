//! The etcd backend of the store, for several servers over one etcd cluster. Revisions are
//! etcd's own; a transaction is an etcd `Txn` whose guards compare `mod_revision` (an absent
//! key compares as 0, as in the SQLite backend); a watch is an etcd watch from a revision,
//! re-created from the next revision when its connection or member goes away, and ended
//! with `Compacted` when etcd no longer has that revision. Every key lives under the URL's
//! path, so one etcd cluster can hold several Berth installations.

mod election;
pub mod local;

use crate::{Event, EventKind, KeyValue, Op, Result, Store, StoreError, Txn, TxnResult};
use async_trait::async_trait;
use etcd_client as etcd;
use std::collections::HashMap;
use std::path::PathBuf;

pub use crate::location::EtcdConfig;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// etcd's default `--max-request-bytes` (1.5 MiB): a larger write is refused before it is sent.
pub const MAX_REQUEST_BYTES: usize = 1_572_864;
/// etcd's default `--max-txn-ops`: a transaction with more writes is refused before it is sent.
pub const MAX_TXN_OPS: usize = 128;
/// Keys read per request when listing (every page at the revision of the first).
const PAGE: i64 = 500;
/// Largest response accepted from etcd: a page of large values.
const MAX_RESPONSE_BYTES: usize = 512 << 20;
/// Revisions of history kept for watches, as the SQLite backend keeps.
const HISTORY_KEPT: u64 = 100_000;
/// How often the store compacts etcd's history down to `HISTORY_KEPT` revisions.
const COMPACT_EVERY: Duration = Duration::from_secs(60);
/// How long one read or write may wait for etcd before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How the store reaches the etcd cluster `config` names.
fn connect_options(config: &EtcdConfig) -> Result<etcd::ConnectOptions> {
    let mut options = etcd::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(3), Duration::from_secs(3))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    if let Some((user, password)) = &config.user {
        options = options.with_user(user, password);
    }
    let tls = config
        .endpoints
        .iter()
        .any(|endpoint| endpoint.starts_with("https://"));
    if tls || config.ca.is_some() || config.client_cert.is_some() {
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| StoreError::Backend(format!("cannot read {}: {e}", path.display())))
        };
        let mut tls_options = etcd::TlsOptions::new();
        if let Some(ca) = &config.ca {
            tls_options = tls_options.ca_certificate(etcd::Certificate::from_pem(read(ca)?));
        }
        if let Some((cert, key)) = &config.client_cert {
            tls_options = tls_options.identity(etcd::Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls_options);
    }
    Ok(options)
}

/// A store in an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: etcd::Client,
    prefix: String,
    /// Held while the store is in use; the compactor stops when it is gone.
    alive: Arc<()>,
    /// Bumped to ask every watch of this store for a progress notification (see
    /// [`EtcdStore::request_progress`]).
    progress: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// An etcd failure as a store error: a request etcd refuses for its size or number of
/// operations is `Refused`, anything else a backend failure.
fn backend(e: etcd::Error) -> StoreError {
    let message = e.to_string();
    if message.contains("request is too large") || message.contains("too many operations") {
        StoreError::Refused(format!("etcd: {message}"))
    } else {
        StoreError::Backend(format!("etcd: {message}"))
    }
}

/// Runs one etcd call with the call timeout.
async fn timed<T>(call: impl std::future::Future<Output = Result<T, etcd::Error>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(backend),
        Err(_) => Err(StoreError::Backend(format!(
            "etcd did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// Attempts of one call that failed in a way that can be retried (see [`retried`]).
const ATTEMPTS: u32 = 6;

/// Runs an etcd call, and again (backing off, about 3 s in all) when it failed in a way that
/// cannot have applied it — the member had no leader (an election under way), or the
/// connection was refused (a member down) — or, for a read, after any transport failure. A
/// write whose fate is unknown is not retried: the caller sees the error.
async fn retried<T, F, Fut>(read: bool, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match timed(call()).await {
            Err(StoreError::Backend(message))
                if attempt < ATTEMPTS && retryable(&message, read) =>
            {
                tracing::debug!(%message, attempt, "store: etcd call failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn retryable(message: &str, read: bool) -> bool {
    let lower = message.to_ascii_lowercase();
    let never_applied = lower.contains("no leader")
        || lower.contains("connection refused")
        || lower.contains("leader changed");
    never_applied
        || (read
            && (lower.contains("unavailable")
                || lower.contains("transport error")
                || lower.contains("did not answer")))
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix;
/// `\0`, meaning no end, when there is none).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(header: Option<&etcd::ResponseHeader>) -> u64 {
    header.map_or(0, |h| h.revision().max(0) as u64)
}

impl EtcdStore {
    /// Connects to the cluster and checks that it answers.
    pub async fn connect(config: &EtcdConfig) -> Result<Self> {
        let options = connect_options(config)?;
        let client = tokio::time::timeout(
            CALL_TIMEOUT,
            etcd::Client::connect(&config.endpoints, Some(options)),
        )
        .await
        .map_err(|_| {
            StoreError::Backend(format!(
                "cannot reach etcd at {} within {}s",
                config.endpoints.join(","),
                CALL_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| {
            StoreError::Backend(format!(
                "cannot reach etcd at {}: {e}",
                config.endpoints.join(",")
            ))
        })?;
        let store = Self {
            client,
            prefix: config.prefix.clone(),
            alive: Arc::new(()),
            progress: Arc::new(tokio::sync::watch::channel(0).0),
        };
        store.revision().await.map_err(|e| {
            StoreError::Backend(format!(
                "etcd at {} does not answer: {e}",
                config.endpoints.join(",")
            ))
        })?;
        tokio::spawn(compact_loop(store.clone(), Arc::downgrade(&store.alive)));
        Ok(store)
    }

    fn kv(&self) -> etcd::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// The store's key of an etcd key (without the prefix).
    fn store_key(&self, key: &[u8]) -> Result<String> {
        let key = std::str::from_utf8(key).map_err(|_| StoreError::Decode {
            key: String::from_utf8_lossy(key).into_owned(),
            message: "the key is not UTF-8".into(),
        })?;
        Ok(key.strip_prefix(&self.prefix).unwrap_or(key).to_string())
    }

    fn key_value(&self, kv: &etcd::KeyValue) -> Result<KeyValue> {
        Ok(KeyValue {
            key: self.store_key(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision().max(0) as u64,
            mod_revision: kv.mod_revision().max(0) as u64,
            version: kv.version().max(0) as u64,
        })
    }

    /// The etcd transaction of `txn`: several writes to one key become the last of them (etcd
    /// refuses a transaction that names a key twice; the outcome is the same), and one that
    /// etcd would refuse for its size is refused here with the key that makes it too large.
    fn etcd_txn(&self, txn: Txn) -> Result<etcd::Txn> {
        let mut last = HashMap::new();
        for (i, op) in txn.ops.iter().enumerate() {
            let (Op::Put { key, .. } | Op::Delete { key }) = op;
            last.insert(key.as_str(), i);
        }
        let writes = txn
            .ops
            .iter()
            .enumerate()
            .filter(|(i, op)| {
                let (Op::Put { key, .. } | Op::Delete { key }) = op;
                last.get(key.as_str()) == Some(i)
            })
            .map(|(_, op)| op)
            .collect::<Vec<_>>();
        if writes.len() > MAX_TXN_OPS {
            return Err(StoreError::Refused(format!(
                "a transaction of {} writes is more than etcd takes ({MAX_TXN_OPS})",
                writes.len()
            )));
        }
        let mut bytes = 0;
        let mut largest = ("", 0);
        for op in &writes {
            let (key, size) = match op {
                Op::Put { key, value } => (key, key.len() + value.len()),
                Op::Delete { key } => (key, key.len()),
            };
            bytes += size + self.prefix.len() + 16;
            if size > largest.1 {
                largest = (key.as_str(), size);
            }
        }
        bytes += txn
            .compares
            .iter()
            .map(|c| c.key.len() + self.prefix.len() + 16)
            .sum::<usize>();
        if bytes > MAX_REQUEST_BYTES {
            return Err(StoreError::Refused(format!(
                "a write of {bytes} bytes is more than etcd takes ({MAX_REQUEST_BYTES}); its \
                 largest value is {} ({} bytes)",
                largest.0, largest.1
            )));
        }
        let compares = txn
            .compares
            .iter()
            .map(|c| {
                etcd::Compare::mod_revision(
                    self.full_key(&c.key),
                    etcd::CompareOp::Equal,
                    c.mod_revision as i64,
                )
            })
            .collect::<Vec<_>>();
        let ops = writes
            .into_iter()
            .map(|op| match op {
                Op::Put { key, value } => etcd::TxnOp::put(self.full_key(key), value.clone(), None),
                Op::Delete { key } => etcd::TxnOp::delete(self.full_key(key), None),
            })
            .collect::<Vec<_>>();
        Ok(etcd::Txn::new().when(compares).and_then(ops))
    }

    /// One page of the keys in `[from, end)` at `revision` (0: the current one).
    async fn page(
        &self,
        from: Vec<u8>,
        end: Vec<u8>,
        revision: u64,
    ) -> Result<(Vec<KeyValue>, u64, bool)> {
        let mut options = etcd::GetOptions::new().with_range(end).with_limit(PAGE);
        if revision > 0 {
            options = options.with_revision(revision as i64);
        }
        let response = retried(true, || {
            let (mut kv, from, options) = (self.kv(), from.clone(), options.clone());
            async move { kv.get(from, Some(options)).await }
        })
        .await?;
        let items = response
            .kvs()
            .iter()
            .map(|kv| self.key_value(kv))
            .collect::<Result<Vec<_>>>()?;
        Ok((items, header_revision(response.header()), response.more()))
    }

    /// Lists `[full_prefix, its end)` page by page, every page at the first page's revision.
    async fn list_once(&self, full_prefix: Vec<u8>) -> Result<(Vec<KeyValue>, u64)> {
        let end = prefix_end(&full_prefix);
        let mut from = if full_prefix.is_empty() {
            vec![0]
        } else {
            full_prefix
        };
        let mut revision = 0;
        let mut items = Vec::new();
        loop {
            let (page, at, more) = self.page(from, end.clone(), revision).await?;
            if revision == 0 {
                revision = at;
            }
            let next = page.last().map(|kv| self.full_key(&kv.key));
            items.extend(page);
            match next {
                Some(mut last) if more => {
                    last.push(0);
                    from = last;
                }
                _ => return Ok((items, revision)),
            }
        }
    }
}

/// Compacts etcd's history to the last `HISTORY_KEPT` revisions every `COMPACT_EVERY`, for
/// as long as the store is in use. Several servers may each do it: compacting to a point
/// already compacted changes nothing.
async fn compact_loop(mut store: EtcdStore, alive: Weak<()>) {
    // This copy must not keep the store in use.
    store.alive = Arc::new(());
    loop {
        tokio::time::sleep(COMPACT_EVERY).await;
        if alive.upgrade().is_none() {
            return;
        }
        match store.revision().await {
            Ok(head) if head > HISTORY_KEPT => {
                if let Err(e) = store.compact(head - HISTORY_KEPT).await {
                    tracing::warn!(error = %e, "store: etcd compaction failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "store: etcd unreachable for compaction"),
        }
    }
}

/// Follows etcd's watch of `full_prefix` from `next`, re-creating it from the next revision
/// when its connection or member fails, until the receiver goes away or the revision it
/// needs has been compacted.
async fn follow(
    store: EtcdStore,
    full_prefix: Vec<u8>,
    mut next: u64,
    tx: mpsc::Sender<Result<Vec<Event>>>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut asked = store.progress.subscribe();
    loop {
        let options = etcd::WatchOptions::new()
            .with_prefix()
            .with_start_revision(next as i64)
            .with_progress_notify();
        let mut watcher = store.client.watch_client();
        let watch = tokio::select! {
            watch = watcher.watch(full_prefix.clone(), Some(options)) => watch,
            _ = tx.closed() => return,
        };
        match watch {
            Ok(stream) => {
                let (mut requests, mut stream) = stream.split();
                loop {
                    let message = tokio::select! {
                        message = stream.message() => message,
                        changed = asked.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            if let Err(e) = requests.request_progress().await {
                                tracing::debug!(error = %e, "store: cannot ask etcd for watch progress");
                            }
                            continue;
                        }
                        _ = tx.closed() => return,
                    };
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "store: etcd watch broke; watching again");
                            break;
                        }
                    };
                    backoff = Duration::from_millis(100);
                    if response.compact_revision() > 0 {
                        let _ = tx
                            .send(Err(StoreError::Compacted {
                                requested: next,
                                oldest: response.compact_revision() as u64,
                            }))
                            .await;
                        return;
                    }
                    if response.canceled() {
                        tracing::debug!(
                            reason = response.cancel_reason(),
                            "store: etcd watch canceled; watching again"
                        );
                        break;
                    }
                    let events = response
                        .events()
                        .iter()
                        .filter_map(|event| {
                            let kv = event.kv()?;
                            Some(store.store_key(kv.key()).map(|key| Event {
                                kind: match event.event_type() {
                                    etcd::EventType::Put => EventKind::Put,
                                    etcd::EventType::Delete => EventKind::Delete,
                                },
                                key,
                                value: kv.value().to_vec(),
                                revision: kv.mod_revision().max(0) as u64,
                            }))
                        })
                        .collect::<Result<Vec<_>>>();
                    // A progress notification: no event, and every change up to the header's
                    // revision sent.
                    let progress = response.events().is_empty()
                        && !response.created()
                        && header_revision(response.header()) >= next;
                    match events {
                        Ok(events) if events.is_empty() && progress => {
                            let revision = header_revision(response.header());
                            next = revision + 1;
                            let event = Event {
                                kind: EventKind::Progress,
                                key: String::new(),
                                value: Vec::new(),
                                revision,
                            };
                            if tx.send(Ok(vec![event])).await.is_err() {
                                return;
                            }
                        }
                        Ok(events) if events.is_empty() => {}
                        Ok(events) => {
                            next = events.last().map_or(next, |e| e.revision + 1);
                            if tx.send(Ok(events)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "store: cannot watch etcd; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = retried(true, || {
            let (mut kv, key) = (self.kv(), self.full_key(key));
            async move { kv.get(key, None).await }
        })
        .await?;
        response
            .kvs()
            .first()
            .map(|kv| self.key_value(kv))
            .transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        // A page's revision can be compacted between pages: list again from the top.
        let mut tries = 0;
        loop {
            match self.list_once(self.full_key(prefix)).await {
                Err(StoreError::Backend(message)) if message.contains("compacted") && tries < 3 => {
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let request = self.etcd_txn(txn)?;
        let response = retried(false, || {
            let (mut kv, request) = (self.kv(), request.clone());
            async move { kv.txn(request).await }
        })
        .await?;
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: header_revision(response.header()),
        })
    }

    async fn watch(&self, prefix: &str, from: u64) -> Result<crate::WatchStream> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(follow(self.clone(), self.full_key(prefix), from.max(1), tx));
        Ok(rx)
    }

    async fn revision(&self) -> Result<u64> {
        let key = if self.prefix.is_empty() {
            b"/".to_vec()
        } else {
            self.prefix.clone().into_bytes()
        };
        let options = etcd::GetOptions::new().with_count_only();
        let response = retried(true, || {
            let (mut kv, key, options) = (self.kv(), key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })
        .await?;
        Ok(header_revision(response.header()))
    }

    fn write_limits(&self) -> crate::WriteLimits {
        crate::WriteLimits {
            max_ops: MAX_TXN_OPS,
            max_bytes: MAX_REQUEST_BYTES,
        }
    }

    /// Every watch of this store asks etcd for a progress notification: once etcd has sent
    /// it every change up to its current revision, it says so, and the watch passes that on
    /// as an [`EventKind::Progress`](crate::EventKind::Progress) event.
    fn request_progress(&self) {
        self.progress
            .send_modify(|asked| *asked = asked.wrapping_add(1));
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        match timed(self.kv().compact(revision as i64, None)).await {
            Ok(_) => Ok(()),
            // Already compacted there or beyond, or not yet written so far: nothing to do.
            Err(StoreError::Backend(message))
                if message.contains("compacted") || message.contains("future revision") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_at_its_next_key() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), b"\0");
    }
}
