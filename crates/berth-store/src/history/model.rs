//! The run as the checker sees it: operations, the versions they wrote or saw, and the
//! real-time order of the revisions they answered.

use super::check::OpRef;
use super::{Call, Outcome, Record, Write};

/// One operation of the run.
pub(super) struct Op {
    pub(super) at: OpRef,
    pub(super) record: Record,
}

/// How a transaction that committed bears on revisions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// It puts a key: the revision is its own.
    Puts,
    /// It only deletes: on etcd, deleting absent keys makes no revision, so the one it
    /// reports may be the last write's.
    DeletesOnly,
    /// It writes nothing: it reports the current revision, as a read.
    Nothing,
}

impl Op {
    pub(super) fn invoke(&self) -> u64 {
        self.record.invoke
    }

    /// When it answered; never for a call that did not.
    pub(super) fn complete(&self) -> u64 {
        self.record.complete.unwrap_or(u64::MAX)
    }

    pub(super) fn txn(&self) -> Option<(&[super::Guard], &[Write])> {
        match &self.record.call {
            Call::Txn { compares, ops } => Some((compares, ops)),
            _ => None,
        }
    }

    /// The revision it committed at, and how.
    pub(super) fn committed(&self) -> Option<(u64, Commit)> {
        let (_, writes) = self.txn()?;
        match self.record.outcome {
            Some(Outcome::Txn {
                succeeded: true,
                revision,
            }) => {
                let commit = if writes.iter().any(|w| matches!(w, Write::Put { .. })) {
                    Commit::Puts
                } else if writes.is_empty() {
                    Commit::Nothing
                } else {
                    Commit::DeletesOnly
                };
                Some((revision, commit))
            }
            _ => None,
        }
    }

    /// A transaction that may or may not have committed.
    pub(super) fn indeterminate(&self) -> bool {
        self.txn().is_some() && !matches!(self.record.outcome, Some(Outcome::Txn { .. }))
    }

    /// The global revision it answered, and whether it made that revision (so that an
    /// operation that completed before it must have answered less).
    pub(super) fn point(&self) -> Option<(u64, bool)> {
        match (&self.record.outcome, self.committed()) {
            (_, Some((revision, commit))) => Some((revision, commit == Commit::Puts)),
            (Some(Outcome::Txn { revision, .. }), None) => Some((*revision, false)),
            (Some(Outcome::Listed { revision, .. }), _) => Some((*revision, false)),
            (Some(Outcome::Revision(revision)), _) => Some((*revision, false)),
            _ => None,
        }
    }

    /// The value it leaves at `key` when it commits (its last write to it).
    pub(super) fn writes(&self, key: &str) -> Option<&Write> {
        self.txn()?.1.iter().rev().find(|w| w.key() == key)
    }
}

/// A key's value from some revision on: a put's hash (unknown when only a guard named
/// it), or absence.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    Put(Option<u64>),
    Deleted,
}

/// A version named by a read or a guard.
pub(super) struct Ref<'a> {
    pub(super) op: usize,
    pub(super) key: &'a str,
    pub(super) hash: Option<u64>,
}

/// An operation's answer of a global revision, placed in real time.
#[derive(Clone, Copy)]
pub(super) struct Point {
    pub(super) op: usize,
    pub(super) invoke: u64,
    /// When it answered; never for a transaction placed where a read saw its writes.
    pub(super) complete: Option<u64>,
    pub(super) revision: u64,
    /// Whether it made the revision (a transaction that put), so that no operation
    /// invoked after it completed may answer it, and none answered before may.
    pub(super) writes: bool,
}

/// The highest revision answered before a time, and the lowest bound on revisions
/// answered after one.
pub(super) struct Timeline {
    /// (complete, running maximum of (revision, op)) in completion order.
    before: Vec<(u64, (u64, usize))>,
    /// (invoke, running minimum from the end of the highest revision an operation that
    /// answered before it could have seen) in invocation order.
    after: Vec<(u64, u64)>,
}

impl Timeline {
    pub(super) fn new(points: &[Point]) -> Self {
        let mut by_complete: Vec<_> = points
            .iter()
            .filter_map(|p| p.complete.map(|complete| (complete, (p.revision, p.op))))
            .collect();
        by_complete.sort_unstable();
        let mut best: Option<(u64, usize)> = None;
        let before = by_complete
            .into_iter()
            .map(|(complete, point)| {
                let highest = best.map_or(point, |b| b.max(point));
                best = Some(highest);
                (complete, highest)
            })
            .collect();
        let mut after: Vec<_> = points
            .iter()
            .map(|p| {
                let visible = if p.writes {
                    p.revision.saturating_sub(1)
                } else {
                    p.revision
                };
                (p.invoke, visible)
            })
            .collect();
        after.sort_unstable();
        let mut low = u64::MAX;
        for entry in after.iter_mut().rev() {
            low = low.min(entry.1);
            entry.1 = low;
        }
        Self { before, after }
    }

    /// The highest revision answered by an operation that completed before `t`, and that
    /// operation.
    pub(super) fn answered_before(&self, t: u64) -> Option<(u64, usize)> {
        let n = self.before.partition_point(|(complete, _)| *complete < t);
        n.checked_sub(1).map(|i| self.before[i].1)
    }

    /// The highest revision an operation that completed at `t` can have seen.
    pub(super) fn visible_until(&self, t: u64) -> u64 {
        let n = self.after.partition_point(|(invoke, _)| *invoke <= t);
        self.after.get(n).map_or(u64::MAX, |(_, low)| *low)
    }
}
