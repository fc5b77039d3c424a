//! The verification of a run against the store's model (see the [module
//! documentation](super) for what is and is not checked).

use super::check::{Anomaly, Summary};
use super::model::{Commit, Op, Point, Ref, Timeline, Value};
use super::{Call, Outcome, Write};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

pub(super) struct Checker<'a> {
    ops: &'a [Op],
    anomalies: Vec<Anomaly>,
    /// Every key's known versions by revision.
    versions: BTreeMap<&'a str, BTreeMap<u64, (Value, Option<usize>)>>,
    /// The transaction that made each revision.
    owners: BTreeMap<u64, usize>,
    /// Transactions that never answered, placed at the revision a read saw them at.
    attributed: HashMap<usize, u64>,
    unexplained: BTreeSet<u64>,
    /// Keys that writers outside the histories wrote, before the run or in it (a process
    /// whose history is missing, or the leader election, which writes etcd directly).
    external: BTreeSet<&'a str>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(ops: &'a [Op]) -> Self {
        Self {
            ops,
            anomalies: Vec::new(),
            versions: BTreeMap::new(),
            owners: BTreeMap::new(),
            attributed: HashMap::new(),
            unexplained: BTreeSet::new(),
            external: BTreeSet::new(),
        }
    }

    pub(super) fn run(mut self) -> Result<Summary, Vec<Anomaly>> {
        let ops = self.ops;
        // Revisions and their writes, of the transactions that put.
        self.claim_all(Commit::Puts);
        // Real time, against the revisions answered.
        let points: Vec<Point> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| {
                let complete = op.record.complete?;
                let (revision, writes) = op.point()?;
                Some(Point {
                    op: i,
                    invoke: op.invoke(),
                    complete: Some(complete),
                    revision,
                    writes,
                })
            })
            .collect();
        let timeline = Timeline::new(&points);
        for p in &points {
            if let Some((before, j)) = timeline.answered_before(p.invoke) {
                if before > p.revision || (p.writes && before == p.revision) {
                    self.anomalies.push(Anomaly::RealTimeInversion {
                        earlier: ops[j].at,
                        earlier_revision: before,
                        later: ops[p.op].at,
                        later_revision: p.revision,
                    });
                }
            }
        }
        let run = (
            points.iter().map(|p| p.revision).min().unwrap_or(0),
            points.iter().map(|p| p.revision).max().unwrap_or(u64::MAX),
        );
        self.resolve_references(&timeline, run);
        // Transactions that only delete keep the revisions they answered, where free: on
        // etcd, one that deleted nothing answered the revision of the write before it,
        // which a read may have seen.
        self.claim_all(Commit::DeletesOnly);
        // Where the transactions that never answered but were seen fall in real time.
        let mut placed = points.clone();
        placed.extend(self.attributed.iter().map(|(&i, &revision)| Point {
            op: i,
            invoke: ops[i].invoke(),
            complete: None,
            revision,
            writes: true,
        }));
        let timeline = Timeline::new(&placed);
        for (i, op) in ops.iter().enumerate() {
            self.check_guards(i, op);
            self.check_read(op, &timeline);
        }
        if !self.anomalies.is_empty() {
            return Err(self.anomalies);
        }
        Ok(self.summary())
    }

    /// Claims the revisions of the committed transactions of kind `commit`.
    fn claim_all(&mut self, commit: Commit) {
        for (i, op) in self.ops.iter().enumerate() {
            match op.committed() {
                Some((revision, c)) if c == commit => self.claim(i, revision, commit),
                _ => {}
            }
        }
    }

    /// Records that transaction `i` made `revision`, with its writes.
    fn claim(&mut self, i: usize, revision: u64, commit: Commit) {
        let ops = self.ops;
        let op = &ops[i];
        if let Some(&other) = self.owners.get(&revision) {
            // A deletion of absent keys on etcd reports the revision before it.
            if commit == Commit::Puts {
                self.anomalies.push(Anomaly::DuplicateRevision {
                    revision,
                    first: self.ops[other].at,
                    second: op.at,
                });
            }
            return;
        }
        self.owners.insert(revision, i);
        let Some((_, writes)) = op.txn() else { return };
        for write in writes {
            let value = match write {
                Write::Put { hash, .. } => Value::Put(Some(*hash)),
                Write::Delete { .. } => Value::Deleted,
            };
            let versions = self.versions.entry(write.key()).or_default();
            versions.entry(revision).or_insert((value, Some(i)));
        }
    }

    /// Verifies every version a read or a guard names, placing the transactions that never
    /// answered where reads saw their writes.
    fn resolve_references(&mut self, timeline: &Timeline, (first, last): (u64, u64)) {
        let ops = self.ops;
        let mut named: BTreeMap<u64, Vec<Ref<'a>>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let mut name = |key: &'a str, revision: u64, hash: Option<u64>, bound: u64| {
                if revision == 0 || revision > bound {
                    self.anomalies.push(Anomaly::FutureRead {
                        op: op.at,
                        key: key.to_string(),
                        revision,
                        bound,
                    });
                } else {
                    named
                        .entry(revision)
                        .or_default()
                        .push(Ref { op: i, key, hash });
                }
            };
            match (&op.record.call, &op.record.outcome) {
                (Call::Get { key }, Some(Outcome::Got(Some(seen)))) => {
                    name(key, seen.mod_revision, Some(seen.hash), u64::MAX);
                }
                (Call::List { .. }, Some(Outcome::Listed { revision, kvs })) => {
                    for kv in kvs {
                        name(&kv.key, kv.mod_revision, Some(kv.hash), *revision);
                    }
                }
                (Call::Txn { compares, .. }, _) => {
                    if let Some((revision, commit)) = op.committed() {
                        // One that wrote nothing was checked at the revision it answered.
                        let bound = match commit {
                            Commit::Puts => revision.saturating_sub(1),
                            Commit::DeletesOnly | Commit::Nothing => revision,
                        };
                        for guard in compares.iter().filter(|g| g.mod_revision > 0) {
                            name(&guard.key, guard.mod_revision, None, bound);
                        }
                    }
                }
                _ => {}
            }
        }
        for (revision, refs) in named {
            if !self.owners.contains_key(&revision) {
                if let Some(i) = self.candidate(revision, &refs, timeline) {
                    self.attributed.insert(i, revision);
                    self.claim(i, revision, Commit::Puts);
                } else if revision > last {
                    for r in &refs {
                        self.anomalies.push(Anomaly::FutureRead {
                            op: ops[r.op].at,
                            key: r.key.to_string(),
                            revision,
                            bound: last,
                        });
                    }
                    continue;
                } else {
                    if revision >= first {
                        self.unexplained.insert(revision);
                    }
                    self.external.extend(refs.iter().map(|r| r.key));
                    for r in &refs {
                        let versions = self.versions.entry(r.key).or_default();
                        versions
                            .entry(revision)
                            .or_insert((Value::Put(r.hash), None));
                    }
                }
            }
            for r in &refs {
                self.verify(revision, r);
            }
        }
    }

    /// The transaction that never answered, put every value `refs` saw at `revision`, and
    /// could have committed there: invoked before they completed and after every revision
    /// below `revision` had been answered. The earliest invoked, if several could.
    fn candidate(&self, revision: u64, refs: &[Ref<'_>], timeline: &Timeline) -> Option<usize> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(i, op)| op.indeterminate() && !self.attributed.contains_key(i))
            .filter(|(_, op)| {
                timeline
                    .answered_before(op.invoke())
                    .is_none_or(|(before, _)| before < revision)
            })
            .filter(|(_, op)| {
                refs.iter().all(|r| {
                    op.invoke() < self.ops[r.op].complete()
                        && matches!(op.writes(r.key), Some(Write::Put { hash, .. })
                            if r.hash.is_none_or(|h| h == *hash))
                })
            })
            .min_by_key(|(_, op)| op.invoke())
            .map(|(i, _)| i)
    }

    /// Checks one named version against what was written at its revision.
    fn verify(&mut self, revision: u64, r: &Ref<'a>) {
        let op = self.ops[r.op].at;
        let key = r.key.to_string();
        let known = self
            .versions
            .get_mut(r.key)
            .and_then(|versions| versions.get_mut(&revision));
        match known {
            None => {
                if let Some(&writer) = self.owners.get(&revision) {
                    let writer = self.ops[writer].at;
                    self.anomalies.push(Anomaly::PhantomVersion {
                        op,
                        key,
                        revision,
                        writer,
                    });
                }
            }
            Some((Value::Deleted, _)) => {
                self.anomalies
                    .push(Anomaly::WrongValue { op, key, revision });
            }
            Some((Value::Put(written), _)) => match (*written, r.hash) {
                (Some(w), Some(h)) if w != h => {
                    self.anomalies
                        .push(Anomaly::WrongValue { op, key, revision });
                }
                (None, Some(h)) => *written = Some(h),
                _ => {}
            },
        }
    }

    /// The last version of `key` at or below `revision`.
    fn at(&self, key: &str, revision: u64) -> Option<(u64, Value)> {
        self.versions
            .get(key)?
            .range(..=revision)
            .next_back()
            .map(|(r, (value, _))| (*r, *value))
    }

    /// The first version of `key` above `revision`.
    fn next(&self, key: &str, revision: u64) -> Option<u64> {
        let versions = self.versions.get(key)?;
        versions
            .range(revision.saturating_add(1)..)
            .next()
            .map(|(r, _)| *r)
    }

    /// Whether a write no one saw could have changed `key` (deleted it, when
    /// `deletes_only`) at a revision in `(after, upto]` that no recorded transaction holds:
    /// a transaction that never answered, invoked before `by`, or a writer outside the
    /// histories where one has written the key.
    fn unseen_write(
        &self,
        key: &str,
        (after, upto): (u64, u64),
        by: u64,
        deletes_only: bool,
    ) -> bool {
        if upto <= after {
            return false;
        }
        let taken = self.owners.range(after + 1..=upto).count() as u64;
        taken < upto - after
            && (self.external.contains(key) || self.pending_write(key, by, deletes_only))
    }

    /// Whether a transaction that never answered and was not seen, invoked before `by`,
    /// writes `key` (deletes it, when `deletes_only`).
    fn pending_write(&self, key: &str, by: u64, deletes_only: bool) -> bool {
        self.ops.iter().enumerate().any(|(i, op)| {
            let writes = match op.writes(key) {
                Some(Write::Delete { .. }) => true,
                Some(Write::Put { .. }) => !deletes_only,
                None => false,
            };
            writes && op.indeterminate() && !self.attributed.contains_key(&i) && op.invoke() < by
        })
    }

    /// A committed transaction's guards held just below its revision; a failed one's did
    /// not all hold at the revision it answered.
    fn check_guards(&mut self, i: usize, op: &'a Op) {
        let Some((guards, _)) = op.txn() else { return };
        let guards: Vec<(&str, u64)> = guards
            .iter()
            .map(|g| (g.key.as_str(), g.mod_revision))
            .collect();
        if let Some((revision, commit)) = op.committed() {
            // The state its guards were checked against: just below the revision it made,
            // or at the one it answered if it made none.
            let below = match commit {
                Commit::Puts => revision.saturating_sub(1),
                Commit::DeletesOnly if self.owners.get(&revision) == Some(&i) => {
                    revision.saturating_sub(1)
                }
                Commit::DeletesOnly | Commit::Nothing => revision,
            };
            for (key, expected) in guards {
                let actual = match self.at(key, below) {
                    Some((actual, Value::Put(_))) if expected == 0 => {
                        if self.unseen_write(key, (actual, below), op.complete(), true) {
                            continue;
                        }
                        actual
                    }
                    Some((actual, _)) if expected > 0 && actual > expected => actual,
                    _ => continue,
                };
                self.anomalies.push(Anomaly::LostUpdate {
                    txn: op.at,
                    revision,
                    key: key.to_string(),
                    expected,
                    actual,
                });
            }
        } else if let Some(Outcome::Txn {
            succeeded: false,
            revision,
        }) = op.record.outcome
        {
            let all_held = guards.iter().all(|&(key, expected)| {
                let state = self.at(key, revision);
                let held = match state {
                    Some((_, Value::Deleted)) => expected == 0,
                    Some((actual, Value::Put(_))) => actual == expected,
                    None => false,
                };
                let since = state.map_or(0, |(r, _)| r);
                held && !self.unseen_write(key, (since, revision), op.complete(), false)
            });
            if all_held {
                self.anomalies.push(Anomaly::GuardShouldHaveHeld {
                    txn: op.at,
                    revision,
                });
            }
        }
    }

    /// A get returned the key's state at some revision its real-time window allows; a
    /// list returned its prefix's state at its revision.
    fn check_read(&mut self, op: &'a Op, timeline: &Timeline) {
        let stale = |key: &str, returned: Option<u64>, newer: u64| Anomaly::StaleRead {
            op: op.at,
            key: key.to_string(),
            returned,
            newer,
        };
        match (&op.record.call, &op.record.outcome) {
            (Call::Get { key }, Some(Outcome::Got(found))) => {
                let low = timeline
                    .answered_before(op.invoke())
                    .map_or(0, |(revision, _)| revision);
                let high = timeline.visible_until(op.complete());
                match found {
                    Some(seen) => {
                        if seen.mod_revision > high {
                            self.anomalies.push(Anomaly::FutureRead {
                                op: op.at,
                                key: key.clone(),
                                revision: seen.mod_revision,
                                bound: high,
                            });
                        }
                        if let Some(newer) = self.next(key, seen.mod_revision) {
                            if newer <= low {
                                self.anomalies
                                    .push(stale(key, Some(seen.mod_revision), newer));
                            }
                        }
                    }
                    None => {
                        let Some((since, Value::Put(_))) = self.at(key, low) else {
                            return;
                        };
                        let deleted_later = high > low
                            && self.versions.get(key.as_str()).is_some_and(|versions| {
                                versions
                                    .range(low + 1..=high)
                                    .any(|(_, (value, _))| *value == Value::Deleted)
                            });
                        if !deleted_later
                            && !self.unseen_write(key, (since, high), op.complete(), true)
                        {
                            self.anomalies.push(stale(key, None, since));
                        }
                    }
                }
            }
            (Call::List { prefix }, Some(Outcome::Listed { revision, kvs })) => {
                let revision = *revision;
                for kv in kvs {
                    if let Some(newer) = self.next(&kv.key, kv.mod_revision) {
                        if newer <= revision {
                            self.anomalies
                                .push(stale(&kv.key, Some(kv.mod_revision), newer));
                        }
                    }
                }
                let listed: BTreeSet<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
                let missing: Vec<(&str, u64)> = self
                    .versions
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(key, _)| key.starts_with(prefix.as_str()))
                    .filter(|(key, _)| !listed.contains(*key))
                    .filter_map(|(key, _)| match self.at(key, revision) {
                        Some((since, Value::Put(_))) => Some((*key, since)),
                        _ => None,
                    })
                    .filter(|(key, since)| {
                        !self.unseen_write(key, (*since, revision), op.complete(), true)
                    })
                    .collect();
                for (key, since) in missing {
                    self.anomalies.push(stale(key, None, since));
                }
            }
            _ => {}
        }
    }

    fn summary(&self) -> Summary {
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let mut summary = Summary {
            ops: self.ops.len(),
            attributed: self.attributed.len(),
            unexplained_revisions: self.unexplained.iter().copied().collect(),
            external_keys: self.external.iter().map(|k| k.to_string()).collect(),
            ..Summary::default()
        };
        for op in self.ops {
            match (&op.record.call, &op.record.outcome) {
                (Call::Get { key }, outcome) => {
                    keys.insert(key);
                    summary.reads += usize::from(matches!(outcome, Some(Outcome::Got(_))));
                }
                (Call::List { .. }, Some(Outcome::Listed { kvs, .. })) => {
                    keys.extend(kvs.iter().map(|kv| kv.key.as_str()));
                    summary.reads += 1;
                }
                (Call::Revision, Some(Outcome::Revision(_))) => summary.reads += 1,
                (Call::Txn { compares, ops }, outcome) => {
                    keys.extend(compares.iter().map(|g| g.key.as_str()));
                    keys.extend(ops.iter().map(Write::key));
                    match outcome {
                        Some(Outcome::Txn {
                            succeeded: true, ..
                        }) => summary.writes += 1,
                        Some(Outcome::Txn { .. }) => summary.failed_guards += 1,
                        _ => summary.indeterminate += 1,
                    }
                }
                _ => {}
            }
        }
        summary.keys = keys.len();
        summary
    }
}
