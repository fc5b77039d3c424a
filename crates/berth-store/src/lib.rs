//! The store: a revisioned key-value space modelled on etcd. Every write bumps one global
//! revision; reads return each key's `mod_revision`; transactions commit only when their
//! compare-on-revision guards hold; a watch streams the changes under a prefix from any
//! revision still in the log. The SQLite backend implements it for one server, the etcd
//! backend (feature `etcd`) for several; code above this crate sees only the trait, and
//! [`location::Location`] is the backend a `--store` value names.

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod history;
pub mod keys;
pub mod location;
pub mod logs;
pub mod sqlite;
pub mod typed;

use async_trait::async_trait;
use tokio::sync::mpsc;

pub use sqlite::SqliteStore;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a closed database).
    #[error("store backend error: {0}")]
    Backend(String),
    /// A watch asked for a revision the log no longer holds; the watcher must list again.
    #[error("revision {requested} has been compacted (oldest kept: {oldest})")]
    Compacted { requested: u64, oldest: u64 },
    /// The backend refused a write it cannot take (too large, too many operations), with why.
    #[error("the store refused the write: {0}")]
    Refused(String),
    /// A stored value could not be decoded as the type asked for.
    #[error("stored value at {key} is not valid: {message}")]
    Decode { key: String, message: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Result type of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: u64,
    /// Revision of the last write to the key.
    pub mod_revision: u64,
    /// Number of writes since creation, starting at 1.
    pub version: u64,
}

/// A guard of a transaction: the key's `mod_revision` must equal `mod_revision`
/// (0 means the key must not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub mod_revision: u64,
}

impl Compare {
    /// The key must be absent.
    pub fn absent(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            mod_revision: 0,
        }
    }

    /// The key must still be at `mod_revision`.
    pub fn at(key: impl Into<String>, mod_revision: u64) -> Self {
        Self {
            key: key.into(),
            mod_revision,
        }
    }
}

/// A write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// A transaction: all `ops` apply atomically at one new revision when every compare holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a guard.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    /// Adds a put.
    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// The outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held and the ops were applied.
    pub succeeded: bool,
    /// The store revision after the transaction (the new one when it succeeded).
    pub revision: u64,
}

/// What one transaction may hold, as the backend takes it: a writer that could write more
/// in one go (the service scheduler launching hundreds of tasks) splits its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// Guards, and separately writes, one transaction may carry.
    pub max_ops: usize,
    /// Bytes of keys and values one transaction may carry.
    pub max_bytes: usize,
}

impl WriteLimits {
    /// No limit short of memory (SQLite).
    pub const UNLIMITED: Self = Self {
        max_ops: usize::MAX,
        max_bytes: usize::MAX,
    };

    /// How many task records (up to 32 KiB each, with a guard or two apiece) one
    /// transaction should carry, leaving room for the rest of it.
    pub fn task_batch(&self) -> usize {
        (self.max_ops / 4).min(self.max_bytes / (32 << 10)).max(1)
    }
}

/// What happened to a key at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
    /// No key changed: the watch has delivered every change under its prefix up to the
    /// event's revision (its key is empty). The etcd backend's progress notifications: other
    /// writers to the same etcd (another prefix) move the store's revision without an event
    /// under this one, and a reader waiting for that revision learns it has everything.
    Progress,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    /// The new value (empty for a delete).
    pub value: Vec<u8>,
    pub revision: u64,
}

/// Changes under a prefix, in revision order, in batches of one or more revisions (a batch may
/// end with a [`EventKind::Progress`] event); an `Err(Compacted)` ends the stream.
pub type WatchStream = mpsc::Receiver<Result<Vec<Event>>>;

/// The revisioned key-value store every server component persists through.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// All keys under `prefix` in key order, with the revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)>;
    /// Applies a transaction atomically; durable before it returns.
    async fn txn(&self, txn: Txn) -> Result<TxnResult>;
    /// Streams changes under `prefix` with revision >= `from`.
    async fn watch(&self, prefix: &str, from: u64) -> Result<WatchStream>;
    /// The current revision.
    async fn revision(&self) -> Result<u64>;
    /// Forgets the history before `revision`: a watch from an earlier revision then ends with
    /// `Compacted`. Backends also compact on their own; compacting below the current
    /// compaction point does nothing.
    async fn compact(&self, revision: u64) -> Result<()>;
    /// What one transaction may hold.
    fn write_limits(&self) -> WriteLimits {
        WriteLimits::UNLIMITED
    }
    /// Asks the store's watches to say how far they have delivered, with an
    /// [`EventKind::Progress`] event: for a reader waiting for a revision that no change under
    /// its prefix made (another installation's write to a shared etcd). Backends whose
    /// watches see every revision do nothing.
    fn request_progress(&self) {}
}

/// One term of leadership among the servers that share a store.
#[derive(Debug)]
pub struct Term {
    /// The guard that fences the leader's writes: it holds only while this term lasts, so a
    /// deposed leader's transactions fail.
    pub fence: Compare,
    /// Turns true when the term has ended (the lease expired or could not be renewed, or the
    /// leader key changed hands); it never turns back.
    pub lost: tokio::sync::watch::Receiver<bool>,
    /// Ends the term at once when dropped or sent (a clean shutdown hands over without
    /// waiting for the lease to expire).
    pub resign: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Leader election over a shared store (the etcd backend: a lease and a key held with it).
#[async_trait]
pub trait Elect: Send + Sync + 'static {
    /// Waits until `candidate` leads, then returns its term.
    async fn campaign(&self, candidate: &str) -> Result<Term>;
    /// Who leads now, if anyone.
    async fn leader(&self) -> Result<Option<String>>;
}

impl std::fmt::Debug for dyn Elect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Elect")
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
