//! The checker: reads the histories of a run and verifies them against the store's model
//! (see the [module documentation](super) for what is and is not checked).

use super::model::Op;
use super::verify::Checker;
use super::{read, Record};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Names one recorded operation: the history it is in (its index in the paths given to
/// [`check`]), the process and the process's id of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpRef {
    /// The history's index in the paths checked.
    pub file: usize,
    /// The process that made the call.
    pub pid: u32,
    /// The process's id of the call.
    pub id: u64,
}

impl std::fmt::Display for OpRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "op {}/{} (history {})", self.pid, self.id, self.file)
    }
}

/// What a run did, when its histories hold no anomaly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations recorded, answered or not.
    pub ops: usize,
    /// Transactions that committed.
    pub writes: usize,
    /// Gets, lists and revision reads that answered.
    pub reads: usize,
    /// Transactions that answered that a guard failed.
    pub failed_guards: usize,
    /// Transactions that never answered or answered an error: they may or may not have
    /// committed.
    pub indeterminate: usize,
    /// Of those, how many a read showed to have committed (and at which revision).
    pub attributed: usize,
    /// Distinct keys the operations named.
    pub keys: usize,
    /// Revisions within the run that reads or guards named but no recorded transaction
    /// explains (a write by a process whose history is missing).
    pub unexplained_revisions: Vec<u64>,
    /// Keys read or guarded at a revision no recorded transaction explains (those above,
    /// or before the run): someone else writes them, so the checker allows writes it
    /// cannot see to them.
    pub external_keys: Vec<String>,
    /// Lines that could not be read: cut short by a kill.
    pub torn_lines: usize,
}

/// What no linearizable revisioned store could have answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Anomaly {
    /// A history file could not be read at all.
    #[error("cannot read history {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    /// Two transactions that put answered the same revision.
    #[error("{first} and {second} both committed at revision {revision}")]
    DuplicateRevision {
        revision: u64,
        first: OpRef,
        second: OpRef,
    },
    /// An operation answered a revision below (or, for a write, equal to) one answered
    /// before it was invoked.
    #[error(
        "{earlier} answered revision {earlier_revision} before {later} was invoked, \
         yet {later} answered revision {later_revision}"
    )]
    RealTimeInversion {
        earlier: OpRef,
        earlier_revision: u64,
        later: OpRef,
        later_revision: u64,
    },
    /// A read or a guard named a version of a key at a revision whose transaction did not
    /// write that key.
    #[error(
        "{op} saw {key} at revision {revision}, which {writer} committed without writing {key}"
    )]
    PhantomVersion {
        op: OpRef,
        key: String,
        revision: u64,
        writer: OpRef,
    },
    /// A read returned a value, or a guard named a version, other than the one written at
    /// that revision (or a key deleted there).
    #[error("{op} saw {key} at revision {revision} with another value than was written there")]
    WrongValue {
        op: OpRef,
        key: String,
        revision: u64,
    },
    /// A read or a guard named a revision it could not have seen: one written by an
    /// operation invoked after it completed, above its own revision, or beyond the run.
    #[error("{op} saw {key} at revision {revision}, beyond {bound}, the highest it could see")]
    FutureRead {
        op: OpRef,
        key: String,
        revision: u64,
        bound: u64,
    },
    /// A transaction committed although a key it guarded had been written since the
    /// revision it expected (or existed, when it expected none).
    #[error(
        "{txn} committed at revision {revision} guarded by {key} at {expected}, \
         but {key} had been written at revision {actual}"
    )]
    LostUpdate {
        txn: OpRef,
        revision: u64,
        key: String,
        expected: u64,
        actual: u64,
    },
    /// A get returned a version (or absence) that a later write had replaced before the
    /// get began; or a list one replaced at or below its revision.
    #[error(
        "{op} read {key} {}, already superseded by revision {newer} when it read",
        version(.returned)
    )]
    StaleRead {
        op: OpRef,
        key: String,
        returned: Option<u64>,
        newer: u64,
    },
    /// A transaction answered that a guard failed, yet every guard held at the revision it
    /// answered.
    #[error("{txn} failed at revision {revision} although every guard held there")]
    GuardShouldHaveHeld { txn: OpRef, revision: u64 },
}

fn version(returned: &Option<u64>) -> String {
    match returned {
        Some(revision) => format!("at revision {revision}"),
        None => "as absent".to_string(),
    }
}

/// Checks the histories of one run (every process's file): the run's summary, or every
/// anomaly found.
pub fn check(histories: &[PathBuf]) -> Result<Summary, Vec<Anomaly>> {
    let mut unreadable = Vec::new();
    let mut torn_lines = 0;
    let mut merged: BTreeMap<OpRef, Record> = BTreeMap::new();
    for (file, path) in histories.iter().enumerate() {
        match read(path) {
            Ok((records, torn)) => {
                torn_lines += torn;
                for record in records {
                    let at = OpRef {
                        file,
                        pid: record.pid,
                        id: record.id,
                    };
                    // An answered line supersedes the invoke line of the same call.
                    match merged.get(&at) {
                        Some(known) if known.complete.is_some() => {}
                        _ => {
                            merged.insert(at, record);
                        }
                    }
                }
            }
            Err(e) => unreadable.push(Anomaly::Unreadable {
                path: path.clone(),
                message: e.to_string(),
            }),
        }
    }
    if !unreadable.is_empty() {
        return Err(unreadable);
    }
    let ops: Vec<Op> = merged
        .into_iter()
        .map(|(at, record)| Op { at, record })
        .collect();
    let mut summary = Checker::new(&ops).run()?;
    summary.torn_lines = torn_lines;
    Ok(summary)
}
