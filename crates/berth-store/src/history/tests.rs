//! The checker on hand-made histories: good ones pass, each kind of anomaly is caught.

use super::*;
use std::io::Write as _;
use std::path::PathBuf;

/// A transaction of process `pid`: guards, puts, and what it answered (`None`: it never did).
fn txn(
    pid: u32,
    id: u64,
    (invoke, complete): (u64, u64),
    compares: &[(&str, u64)],
    puts: &[(&str, &str)],
    answered: Option<(bool, u64)>,
) -> Record {
    Record {
        pid,
        id,
        invoke,
        complete: answered.map(|_| complete),
        call: Call::Txn {
            compares: compares
                .iter()
                .map(|(key, mod_revision)| Guard {
                    key: key.to_string(),
                    mod_revision: *mod_revision,
                })
                .collect(),
            ops: puts
                .iter()
                .map(|(key, value)| Write::Put {
                    key: key.to_string(),
                    hash: hash(value.as_bytes()),
                    len: value.len(),
                })
                .collect(),
        },
        outcome: answered.map(|(succeeded, revision)| Outcome::Txn {
            succeeded,
            revision,
        }),
    }
}

fn delete(pid: u32, id: u64, (invoke, complete): (u64, u64), key: &str, revision: u64) -> Record {
    Record {
        pid,
        id,
        invoke,
        complete: Some(complete),
        call: Call::Txn {
            compares: vec![],
            ops: vec![Write::Delete {
                key: key.to_string(),
            }],
        },
        outcome: Some(Outcome::Txn {
            succeeded: true,
            revision,
        }),
    }
}

fn get(
    pid: u32,
    id: u64,
    (invoke, complete): (u64, u64),
    key: &str,
    found: Option<(u64, &str)>,
) -> Record {
    Record {
        pid,
        id,
        invoke,
        complete: Some(complete),
        call: Call::Get {
            key: key.to_string(),
        },
        outcome: Some(Outcome::Got(found.map(|(mod_revision, value)| Seen {
            mod_revision,
            hash: hash(value.as_bytes()),
        }))),
    }
}

fn list(
    pid: u32,
    id: u64,
    (invoke, complete): (u64, u64),
    prefix: &str,
    revision: u64,
    kvs: &[(&str, u64, &str)],
) -> Record {
    Record {
        pid,
        id,
        invoke,
        complete: Some(complete),
        call: Call::List {
            prefix: prefix.to_string(),
        },
        outcome: Some(Outcome::Listed {
            revision,
            kvs: kvs
                .iter()
                .map(|(key, mod_revision, value)| Listed {
                    key: key.to_string(),
                    mod_revision: *mod_revision,
                    hash: hash(value.as_bytes()),
                })
                .collect(),
        }),
    }
}

fn revision(pid: u32, id: u64, (invoke, complete): (u64, u64), revision: u64) -> Record {
    Record {
        pid,
        id,
        invoke,
        complete: Some(complete),
        call: Call::Revision,
        outcome: Some(Outcome::Revision(revision)),
    }
}

/// Writes each process's records to a file of its own, with `tail` appended to the last.
fn files(histories: &[Vec<Record>], tail: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (n, records) in histories.iter().enumerate() {
        let path = dir.path().join(format!("{n}.jsonl"));
        let mut file = std::fs::File::create(&path).expect("create");
        for record in records {
            let line = serde_json::to_string(record).expect("json");
            writeln!(file, "{line}").expect("write");
        }
        if n + 1 == histories.len() {
            file.write_all(tail.as_bytes()).expect("write");
        }
        paths.push(path);
    }
    (dir, paths)
}

fn check_histories(histories: &[Vec<Record>]) -> Result<Summary, Vec<Anomaly>> {
    let (_dir, paths) = files(histories, "");
    check(&paths)
}

/// The one anomaly of a history that must have exactly one.
fn only_anomaly(histories: &[Vec<Record>]) -> Anomaly {
    let anomalies = check_histories(histories).expect_err("an anomaly");
    assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
    anomalies.into_iter().next().expect("one")
}

#[test]
fn a_history_of_guarded_increments_and_reads_passes() {
    let one = vec![
        txn(1, 1, (0, 10), &[("/c", 0)], &[("/c", "1")], Some((true, 1))),
        txn(
            1,
            2,
            (15, 25),
            &[("/c", 1)],
            &[("/c", "2")],
            Some((false, 2)),
        ),
        get(1, 3, (26, 27), "/c", Some((2, "2"))),
        list(1, 4, (28, 29), "/", 2, &[("/c", 2, "2")]),
        get(1, 5, (30, 31), "/d", None),
    ];
    let two = vec![
        get(2, 1, (11, 12), "/c", Some((1, "1"))),
        txn(
            2,
            2,
            (13, 20),
            &[("/c", 1)],
            &[("/c", "2")],
            Some((true, 2)),
        ),
        revision(2, 3, (30, 31), 2),
        // Concurrent with the write of revision 2: may see either.
        get(2, 4, (14, 16), "/c", Some((1, "1"))),
    ];
    let summary = check_histories(&[one, two]).expect("no anomaly");
    assert_eq!(
        summary,
        Summary {
            ops: 9,
            writes: 2,
            reads: 6,
            failed_guards: 1,
            keys: 2,
            ..Summary::default()
        }
    );
}

#[test]
fn a_read_after_a_delete_may_miss_the_key() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        delete(1, 2, (11, 20), "/c", 2),
        get(1, 3, (21, 22), "/c", None),
        list(1, 4, (23, 24), "/", 2, &[]),
        txn(
            1,
            5,
            (25, 30),
            &[("/c", 0)],
            &[("/c", "3")],
            Some((true, 3)),
        ),
    ];
    check_histories(&[history]).expect("no anomaly");
}

#[test]
fn a_stale_read_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        txn(1, 2, (11, 20), &[], &[("/c", "2")], Some((true, 2))),
        get(1, 3, (21, 22), "/c", Some((1, "1"))),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::StaleRead {
            returned: Some(1),
            newer: 2,
            ..
        }
    ));
}

#[test]
fn a_read_missing_a_key_written_before_it_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        get(1, 2, (21, 22), "/c", None),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::StaleRead {
            returned: None,
            newer: 1,
            ..
        }
    ));
}

#[test]
fn a_list_missing_a_key_at_its_revision_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/a/x", "1")], Some((true, 1))),
        txn(1, 2, (11, 20), &[], &[("/a/y", "1")], Some((true, 2))),
        list(1, 3, (21, 22), "/a/", 2, &[("/a/y", 2, "1")]),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::StaleRead {
            returned: None,
            newer: 1,
            ..
        }
    ));
}

#[test]
fn a_lost_update_is_caught() {
    // Both increments guarded on revision 1 commit: the second overwrote the first.
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        txn(
            1,
            2,
            (11, 20),
            &[("/c", 1)],
            &[("/c", "2")],
            Some((true, 2)),
        ),
        txn(
            1,
            3,
            (11, 30),
            &[("/c", 1)],
            &[("/c", "2")],
            Some((true, 3)),
        ),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::LostUpdate {
            revision: 3,
            expected: 1,
            actual: 2,
            ..
        }
    ));
}

#[test]
fn a_create_over_an_existing_key_is_a_lost_update() {
    let history = vec![
        txn(1, 1, (0, 10), &[("/c", 0)], &[("/c", "1")], Some((true, 1))),
        txn(
            1,
            2,
            (11, 20),
            &[("/c", 0)],
            &[("/c", "2")],
            Some((true, 2)),
        ),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::LostUpdate {
            revision: 2,
            expected: 0,
            actual: 1,
            ..
        }
    ));
}

#[test]
fn two_writes_at_one_revision_are_caught() {
    let one = vec![txn(1, 1, (0, 10), &[], &[("/a", "1")], Some((true, 2)))];
    let two = vec![txn(2, 1, (0, 10), &[], &[("/b", "1")], Some((true, 2)))];
    assert!(matches!(
        only_anomaly(&[one, two]),
        Anomaly::DuplicateRevision { revision: 2, .. }
    ));
}

#[test]
fn a_revision_going_back_in_real_time_is_caught() {
    let one = vec![txn(1, 1, (0, 10), &[], &[("/a", "1")], Some((true, 5)))];
    let two = vec![txn(2, 1, (20, 30), &[], &[("/b", "1")], Some((true, 4)))];
    assert!(matches!(
        only_anomaly(&[one, two]),
        Anomaly::RealTimeInversion {
            earlier_revision: 5,
            later_revision: 4,
            ..
        }
    ));
}

#[test]
fn a_failed_guard_that_held_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        txn(
            1,
            2,
            (20, 30),
            &[("/c", 1)],
            &[("/c", "2")],
            Some((false, 1)),
        ),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::GuardShouldHaveHeld { revision: 1, .. }
    ));
}

#[test]
fn a_value_other_than_the_one_written_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        get(1, 2, (11, 12), "/c", Some((1, "one"))),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::WrongValue { revision: 1, .. }
    ));
}

#[test]
fn a_version_its_revision_did_not_write_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/a", "1")], Some((true, 1))),
        get(1, 2, (11, 12), "/b", Some((1, "1"))),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::PhantomVersion { revision: 1, .. }
    ));
}

#[test]
fn a_read_of_a_write_invoked_after_it_completed_is_caught() {
    let history = vec![
        get(1, 1, (0, 5), "/c", Some((1, "1"))),
        txn(1, 2, (10, 20), &[], &[("/c", "1")], Some((true, 1))),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::FutureRead {
            revision: 1,
            bound: 0,
            ..
        }
    ));
}

#[test]
fn a_write_that_never_answered_is_placed_where_a_read_saw_it() {
    // Process 1 dies during its increment, in the middle of its next line.
    let one = vec![
        txn(1, 1, (0, 10), &[("/c", 0)], &[("/c", "1")], Some((true, 1))),
        txn(1, 2, (11, 0), &[("/c", 1)], &[("/c", "2")], None),
    ];
    let two = vec![
        get(2, 1, (30, 31), "/c", Some((2, "2"))),
        txn(
            2,
            2,
            (32, 40),
            &[("/c", 2)],
            &[("/c", "3")],
            Some((true, 3)),
        ),
        revision(2, 3, (41, 42), 3),
    ];
    let (_dir, paths) = files(&[two, one], "{\"pid\":1,\"id\":3,\"inv");
    let summary = check(&paths).expect("no anomaly");
    assert_eq!(summary.indeterminate, 1);
    assert_eq!(summary.attributed, 1);
    assert_eq!(summary.torn_lines, 1);
    assert!(summary.unexplained_revisions.is_empty());
}

#[test]
fn a_write_no_history_holds_is_allowed_within_the_run_and_reported() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        get(1, 2, (20, 21), "/c", Some((2, "2"))),
        revision(1, 3, (22, 23), 2),
    ];
    let summary = check_histories(&[history]).expect("no anomaly");
    assert_eq!(summary.unexplained_revisions, vec![2]);
}

#[test]
fn a_version_beyond_every_revision_of_the_run_is_caught() {
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))),
        get(1, 2, (20, 21), "/c", Some((9, "9"))),
    ];
    assert!(matches!(
        only_anomaly(&[history]),
        Anomaly::FutureRead {
            revision: 9,
            bound: 1,
            ..
        }
    ));
}

#[test]
fn a_line_cut_short_and_continued_by_another_process_is_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.jsonl");
    let first = serde_json::to_string(&txn(1, 1, (0, 10), &[], &[("/c", "1")], Some((true, 1))))
        .expect("json");
    let second = serde_json::to_string(&get(2, 1, (20, 21), "/c", Some((1, "1")))).expect("json");
    std::fs::write(
        &path,
        format!("{first}\n{{\"pid\":1,\"id\":2,\"in{second}\n"),
    )
    .expect("write");
    let (records, torn) = read(&path).expect("read");
    assert_eq!(torn, 1);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].pid, 2);
}

#[test]
fn transactions_that_wrote_nothing_may_answer_the_revision_before_them() {
    // On etcd, deleting an absent key makes no revision; a transaction without writes
    // neither.
    let history = vec![
        txn(1, 1, (0, 10), &[], &[("/a", "1")], Some((true, 1))),
        delete(1, 2, (11, 20), "/b", 1),
        txn(1, 3, (21, 30), &[("/a", 1)], &[], Some((true, 1))),
        txn(1, 4, (31, 40), &[], &[("/a", "2")], Some((true, 2))),
    ];
    check_histories(&[history]).expect("no anomaly");
}

#[test]
fn a_fence_on_the_election_key_may_fail_but_never_let_two_leaders_write() {
    // The leader key is written by the election, outside the store's histories: revision
    // 5 elects the old leader; 7 (the lease's expiry) and 8 (the new leader) go unseen.
    let old_leader = vec![
        txn(
            1,
            1,
            (0, 10),
            &[("/leader", 5)],
            &[("/x", "1")],
            Some((true, 6)),
        ),
        txn(
            1,
            2,
            (25, 35),
            &[("/leader", 5)],
            &[("/x", "3")],
            Some((false, 9)),
        ),
    ];
    let new_leader = vec![txn(
        2,
        1,
        (20, 30),
        &[("/leader", 8)],
        &[("/x", "2")],
        Some((true, 9)),
    )];
    let summary = check_histories(&[old_leader.clone(), new_leader.clone()]).expect("no anomaly");
    assert_eq!(summary.external_keys, vec!["/leader".to_string()]);
    assert_eq!(summary.unexplained_revisions, vec![8]);

    // The deposed leader's fenced write commits: split brain.
    let mut split = old_leader;
    split.push(txn(
        1,
        3,
        (36, 40),
        &[("/leader", 5)],
        &[("/x", "4")],
        Some((true, 10)),
    ));
    assert!(matches!(
        only_anomaly(&[split, new_leader]),
        Anomaly::LostUpdate {
            revision: 10,
            expected: 5,
            actual: 8,
            ..
        }
    ));
}
