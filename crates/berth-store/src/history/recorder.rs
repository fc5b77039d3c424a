//! The recording decorator: a store that passes every call on and writes it down.

use super::{hash, monotonic_nanos, Call, Guard, Listed, Outcome, Record, Seen, Write};
use crate::{KeyValue, Op, Result, Store, Txn, TxnResult, WatchStream, WriteLimits};
use async_trait::async_trait;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The process's sequence of operation ids, shared by all its recorders so that
/// `(pid, id)` names one operation.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A [`Store`] that records `get`, `list`, `revision` and `txn` calls to a history file (see
/// the [module documentation](super) for the format) and passes every call on unchanged.
/// A failure to record is logged and never fails the call.
pub struct Recorder {
    inner: Arc<dyn Store>,
    file: Mutex<File>,
    path: PathBuf,
    /// Whether a recording failure has been logged (once is enough).
    warned: AtomicBool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Wraps `inner`, appending its history to `file` (created if missing; other processes
    /// must write files of their own).
    pub fn wrap(inner: Arc<dyn Store>, file: &Path) -> std::io::Result<Arc<dyn Store>> {
        let handle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?;
        Ok(Arc::new(Self {
            inner,
            file: Mutex::new(handle),
            path: file.to_path_buf(),
            warned: AtomicBool::new(false),
        }))
    }

    /// Appends `record` as one line in one write, so that a kill leaves at worst a torn
    /// last line and never interleaves two.
    fn append(&self, record: &Record) {
        let written = serde_json::to_vec(record)
            .map_err(std::io::Error::from)
            .and_then(|mut line| {
                line.push(b'\n');
                let mut file = self
                    .file
                    .lock()
                    .map_err(|_| std::io::Error::other("history file lock poisoned"))?;
                file.write_all(&line)?;
                file.flush()
            });
        if let Err(e) = written {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "store history: cannot record an operation; going on without it");
            }
        }
    }

    /// Records `call`, answered with `outcome` between `invoke` and now.
    fn completed(&self, id: u64, invoke: u64, call: Call, outcome: Outcome) {
        self.append(&Record {
            pid: std::process::id(),
            id,
            invoke,
            complete: Some(monotonic_nanos()),
            call,
            outcome: Some(outcome),
        });
    }
}

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

fn seen(kv: &KeyValue) -> Seen {
    Seen {
        mod_revision: kv.mod_revision,
        hash: hash(&kv.value),
    }
}

fn txn_call(txn: &Txn) -> Call {
    Call::Txn {
        compares: txn
            .compares
            .iter()
            .map(|c| Guard {
                key: c.key.clone(),
                mod_revision: c.mod_revision,
            })
            .collect(),
        ops: txn
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => Write::Put {
                    key: key.clone(),
                    hash: hash(value),
                    len: value.len(),
                },
                Op::Delete { key } => Write::Delete { key: key.clone() },
            })
            .collect(),
    }
}

fn outcome_of<T>(result: &Result<T>, ok: impl FnOnce(&T) -> Outcome) -> Outcome {
    match result {
        Ok(value) => ok(value),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

#[async_trait]
impl Store for Recorder {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let (id, invoke) = (next_id(), monotonic_nanos());
        let result = self.inner.get(key).await;
        let outcome = outcome_of(&result, |found| Outcome::Got(found.as_ref().map(seen)));
        let call = Call::Get {
            key: key.to_string(),
        };
        self.completed(id, invoke, call, outcome);
        result
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        let (id, invoke) = (next_id(), monotonic_nanos());
        let result = self.inner.list(prefix).await;
        let outcome = outcome_of(&result, |(kvs, revision)| Outcome::Listed {
            revision: *revision,
            kvs: kvs
                .iter()
                .map(|kv| Listed {
                    key: kv.key.clone(),
                    mod_revision: kv.mod_revision,
                    hash: hash(&kv.value),
                })
                .collect(),
        });
        let call = Call::List {
            prefix: prefix.to_string(),
        };
        self.completed(id, invoke, call, outcome);
        result
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let call = txn_call(&txn);
        let (id, invoke) = (next_id(), monotonic_nanos());
        // The invoke line goes first: if this process dies before the answer, the checker
        // still knows this write may have happened.
        self.append(&Record {
            pid: std::process::id(),
            id,
            invoke,
            complete: None,
            call: call.clone(),
            outcome: None,
        });
        let result = self.inner.txn(txn).await;
        let outcome = outcome_of(&result, |r| Outcome::Txn {
            succeeded: r.succeeded,
            revision: r.revision,
        });
        self.completed(id, invoke, call, outcome);
        result
    }

    async fn watch(&self, prefix: &str, from: u64) -> Result<WatchStream> {
        self.inner.watch(prefix, from).await
    }

    async fn revision(&self) -> Result<u64> {
        let (id, invoke) = (next_id(), monotonic_nanos());
        let result = self.inner.revision().await;
        let outcome = outcome_of(&result, |r| Outcome::Revision(*r));
        self.completed(id, invoke, Call::Revision, outcome);
        result
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        self.inner.compact(revision).await
    }

    fn request_progress(&self) {
        self.inner.request_progress();
    }

    fn write_limits(&self) -> WriteLimits {
        self.inner.write_limits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compare, SqliteStore};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn calls_are_recorded_with_their_answers_and_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.jsonl");
        runtime().block_on(async {
            let inner: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
            let store = Recorder::wrap(inner, &path).expect("wrap");
            let txn = Txn::new()
                .when(Compare::absent("/a"))
                .put("/a", b"v".to_vec());
            assert!(store.txn(txn).await.expect("txn").succeeded);
            assert!(store.get("/a").await.expect("get").is_some());
        });
        let (records, torn) = super::super::read(&path).expect("read");
        assert_eq!(torn, 0);
        assert_eq!(
            records.len(),
            3,
            "an invoke line, then the answered txn, then the get"
        );
        assert_eq!(records[0].complete, None);
        assert_eq!(records[0].id, records[1].id);
        assert_eq!(records[0].pid, std::process::id());
        assert_eq!(
            records[1].outcome,
            Some(Outcome::Txn {
                succeeded: true,
                revision: 1
            })
        );
        let get = &records[2];
        assert!(get.invoke <= get.complete.expect("complete"));
        assert!(records[1].complete.expect("complete") <= get.invoke);
        assert_eq!(
            get.outcome,
            Some(Outcome::Got(Some(Seen {
                mod_revision: 1,
                hash: hash(b"v")
            })))
        );
    }

    #[test]
    fn a_history_that_cannot_be_written_fails_no_call() {
        runtime().block_on(async {
            let inner: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
            // Every write to /dev/full fails with ENOSPC.
            let store = Recorder::wrap(inner, Path::new("/dev/full")).expect("wrap");
            let txn = Txn::new().put("/a", b"v".to_vec());
            assert!(store.txn(txn).await.expect("txn").succeeded);
            assert!(store.get("/a").await.expect("get").is_some());
            assert_eq!(store.revision().await.expect("revision"), 1);
        });
    }
}
