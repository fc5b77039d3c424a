//! The SQLite backend of the store: one database file in the data dir, WAL journal with
//! `synchronous=FULL`, so a transaction acknowledged to a caller survives kill -9 and power
//! loss. Keys live in `kv`; every write is also appended to `log`, which watches read from and
//! which is compacted to the last `LOG_KEEP` revisions.

use crate::{Compare, Event, EventKind, KeyValue, Op, Result, Store, StoreError, Txn, TxnResult};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// How many revisions of history the log keeps for watches.
const LOG_KEEP: u64 = 100_000;
/// Compaction runs every this many revisions.
const COMPACT_EVERY: u64 = 1_000;

/// Most transactions committed together in one SQLite transaction (one fsync).
const GROUP_MAX: usize = 512;

/// A store in one SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    head: Arc<watch::Sender<u64>>,
    /// The writer thread's queue: transactions waiting to be committed.
    writes: std::sync::mpsc::Sender<Pending>,
}

/// A transaction waiting for the writer, and who to tell how it went.
struct Pending {
    txn: Txn,
    reply: oneshot::Sender<Result<TxnResult>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("revision", &*self.head.borrow())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        let store = Self::init(conn, true)?;
        // Checkpoints mostly run beside the writer (see `checkpoint_loop`), so commits rarely
        // wait for the WAL to be copied back. Beside a busy writer such a checkpoint never
        // quite catches up, and the WAL only starts over once one has; so the writer still
        // checkpoints itself every WAL_RESET_PAGES, finding nearly all of it done, and the WAL
        // stays bounded under any load.
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_timeout(std::time::Duration::from_secs(5))?;
        store
            .conn
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))?
            .pragma_update(None, "wal_autocheckpoint", WAL_RESET_PAGES)?;
        let head = Arc::downgrade(&store.head);
        std::thread::Builder::new()
            .name("berth-store-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoints, &head))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer: {e}")))?;
        Ok(store)
    }

    /// A store in memory, gone when dropped: the fake for fast tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(conn: Connection, on_disk: bool) -> Result<Self> {
        if on_disk {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS kv (
                 key TEXT PRIMARY KEY, value BLOB NOT NULL,
                 create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS log (
                 rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL,
                 value BLOB NOT NULL, deleted INTEGER NOT NULL, PRIMARY KEY (rev, seq));
             INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);",
        )?;
        let revision = read_meta(&conn, "revision")?;
        let conn = Arc::new(Mutex::new(conn));
        let head = Arc::new(watch::channel(revision).0);
        let (writes, queue) = std::sync::mpsc::channel();
        let (c, h) = (Arc::clone(&conn), Arc::clone(&head));
        std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || write_loop(&c, &h, &queue))
            .map_err(|e| StoreError::Backend(format!("cannot start the store writer: {e}")))?;
        Ok(Self { conn, head, writes })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("store lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn read_meta(conn: &Connection, name: &str) -> Result<u64> {
    let value: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |row| row.get(0))?;
    Ok(value as u64)
}

/// The exclusive upper bound of keys starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn row_to_kv(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        value: row.get(1)?,
        create_revision: row.get::<_, i64>(2)? as u64,
        mod_revision: row.get::<_, i64>(3)? as u64,
        version: row.get::<_, i64>(4)? as u64,
    })
}

fn get_kv(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    Ok(conn
        .prepare_cached("SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key = ?1")?
        .query_row([key], row_to_kv)
        .optional()?)
}

/// Makes the database at `path` readable by its owner only, creating it empty if missing:
/// SQLite creates the WAL and shared-memory files with the database's mode, so they follow.
/// Files left by an older version are tightened too.
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        StoreError::Backend(format!(
            "cannot secure the database {}: {e}",
            path.display()
        ))
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// WAL pages after which the writer checkpoints itself, so the WAL starts over (about 40 MiB).
const WAL_RESET_PAGES: i64 = 10_000;

/// How often the checkpointer looks for new commits to copy back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The checkpointer thread: whenever the head moved, copies committed WAL frames back into
/// the database while writes go on (a PASSIVE checkpoint waits for no reader or writer).
/// Ends when the store is gone.
fn checkpoint_loop(conn: &Connection, head: &std::sync::Weak<watch::Sender<u64>>) {
    let mut done = None;
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(head) = head.upgrade() else { return };
        let now = *head.borrow();
        drop(head);
        if done == Some(now) {
            continue;
        }
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => done = Some(now),
            Err(e) => tracing::warn!(error = %e, "store: checkpoint failed; retrying"),
        }
    }
}

/// The writer thread: takes every transaction queued, commits them together in one SQLite
/// transaction (group commit: one fsync for the lot), each in a savepoint with its own
/// revision and guards, then answers each. Ends when every handle to the store is gone.
fn write_loop(
    conn: &Mutex<Connection>,
    head: &watch::Sender<u64>,
    queue: &std::sync::mpsc::Receiver<Pending>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Ok(mut guard) = conn.lock() else {
            for pending in batch {
                let _ = pending
                    .reply
                    .send(Err(StoreError::Backend("store lock poisoned".into())));
            }
            return;
        };
        let results = commit_group(&mut guard, batch.iter().map(|p| &p.txn));
        drop(guard);
        let results = match results {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(e) => {
                let message = e.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::Backend(message.clone())))
                    .collect::<Vec<_>>()
            }
        };
        let top = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r: &TxnResult| r.revision)
            .max();
        if let Some(top) = top {
            head.send_if_modified(|head| {
                let advanced = top > *head;
                if advanced {
                    *head = top;
                }
                advanced
            });
        }
        for (pending, result) in batch.into_iter().zip(results) {
            let _ = pending.reply.send(result);
        }
    }
}

/// Commits `txns` in one SQLite transaction: a transaction whose guards fail writes nothing
/// and the others go on. Any SQLite error undoes the whole group. The head revision is read
/// once and written once per group.
fn commit_group<'a>(
    conn: &mut Connection,
    txns: impl Iterator<Item = &'a Txn>,
) -> Result<Vec<TxnResult>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = read_meta(&tx, "revision")?;
    let mut revision = start;
    let mut results = Vec::new();
    for txn in txns {
        results.push(apply_in(&tx, txn, &mut revision)?);
    }
    if revision != start {
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
            .execute([revision as i64])?;
        let due = (start / COMPACT_EVERY) != (revision / COMPACT_EVERY);
        if due && revision > LOG_KEEP {
            let keep_from = revision - LOG_KEEP;
            tx.execute("DELETE FROM log WHERE rev < ?1", [keep_from as i64])?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                [(keep_from - 1) as i64],
            )?;
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Applies one transaction inside an open SQLite transaction whose head revision is
/// `revision`; a transaction that writes advances it by one.
fn apply_in(tx: &Connection, txn: &Txn, revision: &mut u64) -> Result<TxnResult> {
    for Compare { key, mod_revision } in &txn.compares {
        let actual = get_kv(tx, key)?.map_or(0, |kv| kv.mod_revision);
        if actual != *mod_revision {
            return Ok(TxnResult {
                succeeded: false,
                revision: *revision,
            });
        }
    }
    if txn.ops.is_empty() {
        return Ok(TxnResult {
            succeeded: true,
            revision: *revision,
        });
    }
    let rev = *revision + 1;
    for (seq, op) in txn.ops.iter().enumerate() {
        match op {
            Op::Put { key, value } => {
                tx.prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev, version) VALUES (?1, ?2, ?3, ?3, 1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                         mod_rev = excluded.mod_rev, version = kv.version + 1",
                )?
                .execute(params![key, value, rev as i64])?;
                tx.prepare_cached(
                    "INSERT INTO log (rev, seq, key, value, deleted) VALUES (?1, ?2, ?3, ?4, 0)",
                )?
                .execute(params![rev as i64, seq as i64, key, value])?;
            }
            Op::Delete { key } => {
                let removed = tx
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key])?;
                if removed > 0 {
                    tx.prepare_cached(
                        "INSERT INTO log (rev, seq, key, value, deleted) VALUES (?1, ?2, ?3, x'', 1)",
                    )?
                    .execute(params![rev as i64, seq as i64, key])?;
                }
            }
        }
    }
    *revision = rev;
    Ok(TxnResult {
        succeeded: true,
        revision: rev,
    })
}

/// Reads log events under `prefix` from revision `from`; also returns the head revision the
/// read saw and the compaction point.
fn read_log(conn: &Connection, prefix: &str, from: u64) -> Result<(Vec<Event>, u64, u64)> {
    let head = read_meta(conn, "revision")?;
    let compacted = read_meta(conn, "compacted")?;
    let mut stmt = conn.prepare_cached(
        "SELECT rev, key, value, deleted FROM log
         WHERE rev >= ?1 AND rev <= ?2 AND key >= ?3 AND key < ?4 ORDER BY rev, seq",
    )?;
    let events = stmt
        .query_map(
            params![from as i64, head as i64, prefix, prefix_end(prefix)],
            |row| {
                Ok(Event {
                    revision: row.get::<_, i64>(0)? as u64,
                    key: row.get(1)?,
                    value: row.get(2)?,
                    kind: if row.get::<_, i64>(3)? != 0 {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    },
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((events, head, compacted))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.with_conn(move |conn| get_kv(conn, &key)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        let prefix = prefix.to_string();
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            let revision = read_meta(&tx, "revision")?;
            let items = {
                let mut stmt = tx.prepare_cached(
                    "SELECT key, value, create_rev, mod_rev, version FROM kv
                     WHERE key >= ?1 AND key < ?2 ORDER BY key",
                )?;
                let rows = stmt.query_map(params![prefix, prefix_end(&prefix)], row_to_kv)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok((items, revision))
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Pending { txn, reply })
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?
    }

    async fn watch(&self, prefix: &str, from: u64) -> Result<crate::WatchStream> {
        let (tx, rx) = mpsc::channel(64);
        let store = self.clone();
        let prefix = prefix.to_string();
        let mut head_rx = self.head.subscribe();
        tokio::spawn(async move {
            let mut next = from.max(1);
            loop {
                // Wait until something at or after `next` has been written, or the reader left.
                while *head_rx.borrow_and_update() < next {
                    tokio::select! {
                        changed = head_rx.changed() => if changed.is_err() { return },
                        _ = tx.closed() => return,
                    }
                }
                let p = prefix.clone();
                let read = store.with_conn(move |conn| read_log(conn, &p, next)).await;
                let (events, head, compacted) = match read {
                    Ok(read) => read,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if next <= compacted {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: next,
                            oldest: compacted + 1,
                        }))
                        .await;
                    return;
                }
                next = head + 1;
                if !events.is_empty() && tx.send(Ok(events)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn revision(&self) -> Result<u64> {
        Ok(*self.head.borrow())
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let head = read_meta(&tx, "revision")?;
            let last_dropped = revision.min(head + 1).saturating_sub(1);
            if last_dropped > read_meta(&tx, "compacted")? {
                tx.execute("DELETE FROM log WHERE rev <= ?1", [last_dropped as i64])?;
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                    [last_dropped as i64],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

// Behaviour shared with every backend is checked by tests/conformance.rs.
#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn acknowledged_writes_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("berth.db");
        runtime().block_on(async {
            let store = SqliteStore::open(&path).expect("open");
            for i in 0..20 {
                store
                    .txn(Txn::new().put(format!("/k/{i:02}"), vec![i]))
                    .await
                    .expect("txn");
            }
        });
        runtime().block_on(async {
            let store = SqliteStore::open(&path).expect("reopen");
            let (items, rev) = store.list("/k/").await.expect("list");
            assert_eq!(items.len(), 20);
            assert_eq!(rev, 20);
            assert_eq!(store.revision().await.expect("rev"), 20);
        });
    }

    #[test]
    fn the_database_and_its_wal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("berth.db");
        // A file an older version left world-readable is tightened too.
        std::fs::write(&path, b"").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        runtime().block_on(async {
            let store = SqliteStore::open(&path).expect("open");
            store
                .txn(Txn::new().put("/k", b"v".to_vec()))
                .await
                .expect("txn");
            for suffix in ["", "-wal", "-shm"] {
                let file = dir.path().join(format!("berth.db{suffix}"));
                let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", file.display());
            }
        });
    }
}
