//! Histories of store operations and their linearizability check: a [`Recorder`] wraps a
//! [`Store`](crate::Store) and appends one JSON line per operation to a file of its own, and
//! [`check`] reads the files of every process of a run and reports what no linearizable
//! revisioned store could have answered.
//!
//! # The line format
//!
//! One JSON object per line, fields in this order (so every line starts with `{"pid":`):
//!
//! ```text
//! {"pid":4711,"id":12,"invoke":81234567890123,"complete":81234568012345,
//!  "call":{"txn":{"compares":[{"key":"/c/0","mod_revision":41}],
//!                 "ops":[{"put":{"key":"/c/0","hash":1234567890,"len":2}}]}},
//!  "outcome":{"txn":{"succeeded":true,"revision":57}}}
//! ```
//!
//! - `pid`, `id`: the process and its own sequence number of the operation (from 1).
//! - `invoke`, `complete`: CLOCK_MONOTONIC in nanoseconds, read just before the call went to
//!   the store and just after it answered; comparable between processes on one host.
//! - `call`: `{"get":{"key":…}}`, `{"list":{"prefix":…}}`, `"revision"`, or
//!   `{"txn":{"compares":[{"key","mod_revision"}],"ops":[{"put":{"key","hash","len"}} |
//!   {"delete":{"key"}}]}}`. Values are not kept: `hash` is the 64-bit FNV-1a of the value.
//! - `outcome`: `{"got":null}` or `{"got":{"mod_revision","hash"}}`,
//!   `{"listed":{"revision","kvs":[{"key","mod_revision","hash"}]}}`, `{"revision":N}`,
//!   `{"txn":{"succeeded","revision"}}`, or `{"error":"…"}`.
//!
//! A transaction is written twice: a line without `complete` and `outcome` before it goes
//! to the store, and the full line when it has answered. A process killed in between leaves
//! the first line only, so the checker knows of every write that may have happened. Reads
//! are written once, when they complete. A line cut short by a kill is skipped by the reader
//! (and counted); `watch` and `compact` are not recorded.
//!
//! # The model
//!
//! The store claims a total order of its writes: every transaction that writes gets a
//! revision of its own, and a key's state at revision `r` is the last write to it at or
//! below `r`. The checker does not search for an order, as Knossos or Porcupine must for a
//! plain register (an NP-complete search): it takes the order the store reports and
//! verifies that it explains every answer and agrees with real time. Checked ([`Anomaly`]
//! names each failure):
//!
//! 1. **Distinct revisions**: no two committed transactions that put report one revision.
//! 2. **Real time**: every answer that names a global revision (a transaction's, a list's,
//!    `revision()`) is at least every revision answered by an operation that completed
//!    before it was invoked, and above them when it is a transaction that put.
//! 3. **Versions exist**: every version a read or a guard names (`key` at `mod_revision`,
//!    with the value's hash for reads) was written there, with that value, by the
//!    transaction that made that revision, which was invoked before the read completed. A
//!    revision no recorded transaction made is explained by a transaction that never
//!    answered (or answered an error) and puts those values: it is then taken to have
//!    committed there with all its writes ([`Summary::attributed`]). Failing that, it is
//!    allowed if it is not beyond the highest revision the run answered, and listed in
//!    [`Summary::unexplained_revisions`] (if within the run) and its keys in
//!    [`Summary::external_keys`] — a clean run whose every process's history is given has
//!    none but the keys the leader election writes directly (its fences name them).
//! 4. **Guards**: each key a committed transaction guarded was at the expected revision
//!    (absent, for 0) just below the revision it made — otherwise an update was lost. A
//!    failed transaction had a guard false at the revision it answered, which rule 2 has
//!    placed inside its real-time window.
//! 5. **Fresh reads**: a `get` returns the key's state at some revision between the highest
//!    revision answered by an operation that completed before the get was invoked and the
//!    lowest one an operation invoked after it completed could answer: neither stale nor
//!    from the future; `None` only where the key was absent (or not yet known) there. A
//!    `list` returns exactly its prefix's known state at the revision it answered.
//!
//! Allowed, as a linearizable store may do them or the histories cannot tell: a write no
//! one saw, where a revision in between is free, by a transaction that never answered or to
//! an external key (so a guard may fail, or a read miss a key, because of it); a
//! transaction that wrote nothing (no writes; on etcd, deletes of absent keys) answering
//! the revision before it. Not checked: watches; values beyond their hash; a key's state
//! before the run (a key is not assumed absent before its first known write). A run should
//! end with a recorded `revision()`, which bounds the revisions its reads may name.

mod check;
mod model;
mod recorder;
#[cfg(test)]
mod tests;
mod verify;

pub use check::{check, Anomaly, OpRef, Summary};
pub use recorder::Recorder;

use serde::{Deserialize, Serialize};

/// One line of a history: an operation, invoked and (unless `complete` is missing) answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The process that made the call.
    pub pid: u32,
    /// The process's sequence number of the call, from 1.
    pub id: u64,
    /// CLOCK_MONOTONIC nanoseconds just before the call.
    pub invoke: u64,
    /// CLOCK_MONOTONIC nanoseconds just after the answer; absent on a transaction's invoke line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<u64>,
    /// What was asked.
    pub call: Call,
    /// What the store answered; absent on a transaction's invoke line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A store call as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Get {
        key: String,
    },
    List {
        prefix: String,
    },
    Txn {
        compares: Vec<Guard>,
        ops: Vec<Write>,
    },
    Revision,
}

/// A guard of a transaction: `key` at `mod_revision` (0: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    pub key: String,
    pub mod_revision: u64,
}

/// A write of a transaction, its value reduced to a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    Put { key: String, hash: u64, len: usize },
    Delete { key: String },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Put { key, .. } | Write::Delete { key } => key,
        }
    }
}

/// A version of a key as a read saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub mod_revision: u64,
    pub hash: u64,
}

/// A key of a list as it came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub key: String,
    pub mod_revision: u64,
    pub hash: u64,
}

/// What the store answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Got(Option<Seen>),
    Listed { revision: u64, kvs: Vec<Listed> },
    Revision(u64),
    Txn { succeeded: bool, revision: u64 },
    Error(String),
}

/// The 64-bit FNV-1a hash of a value, as recorded (the values themselves can be large, and
/// telling two apart is all the checker needs).
pub fn hash(value: &[u8]) -> u64 {
    // Hand-written rather than a crate: it is the whole algorithm.
    value.iter().fold(0xcbf2_9ce4_8422_2325, |h, byte| {
        (h ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the host, unlike
/// `Instant`, which cannot be written down.
pub fn monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Reads the records of one history file; returns them with the number of lines that could
/// not be read (cut short by a kill). A line cut short and continued by a later process
/// writing to the same file is recovered from where the later record begins.
pub fn read(path: &std::path::Path) -> std::io::Result<(Vec<Record>, usize)> {
    let text = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut torn = 0;
    for line in text.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Ok(record) = serde_json::from_slice::<Record>(line) {
            records.push(record);
            continue;
        }
        torn += 1;
        const START: &[u8] = b"{\"pid\":";
        let recovered = (1..line.len())
            .filter(|&at| line[at..].starts_with(START))
            .find_map(|at| serde_json::from_slice::<Record>(&line[at..]).ok());
        records.extend(recovered);
    }
    Ok((records, torn))
}
