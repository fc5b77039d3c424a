use super::*;
use berth_store::typed::Versioned;
use std::collections::BTreeSet;

fn key(i: usize) -> String {
    format!("/test/group/{i:04}")
}

/// `writes` puts at once, each of `(key, revision, value)`; their answers in order.
async fn at_once(app: &Arc<App>, writes: Vec<(String, u64, String)>) -> Vec<bool> {
    let calls: Vec<_> = writes
        .into_iter()
        .map(|(key, revision, value)| {
            let app = Arc::clone(app);
            tokio::spawn(async move { put(&app, key, revision, value.into_bytes()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("join").expect("no store error"));
    }
    answers
}

fn stored(app: &App, key: &str) -> Option<Versioned<String>> {
    app.get::<String>(key).expect("read")
}

/// Many writes at once: each lands, a write whose guard is stale fails alone, and (when
/// `shared`: the store's commit takes long enough for writes to queue) in fewer
/// transactions than writes.
async fn writes_at_once_share_transactions_and_fail_alone(app: Arc<App>, shared: bool) {
    let stale = key(9999);
    assert!(put(&app, stale.clone(), 0, b"\"first\"".to_vec())
        .await
        .expect("first write"));
    let mut writes: Vec<(String, u64, String)> =
        (0..300).map(|i| (key(i), 0, format!("\"v{i}\""))).collect();
    // Absent: but it exists now.
    writes.insert(150, (stale.clone(), 0, "\"second\"".to_string()));
    let answers = at_once(&app, writes).await;
    assert!(!answers[150], "a stale guard fails");
    assert_eq!(answers.iter().filter(|a| **a).count(), 300);
    assert_eq!(stored(&app, &stale).expect("kept").value, "first");
    let mut revisions = BTreeSet::new();
    for i in 0..300 {
        let found = stored(&app, &key(i)).expect("written");
        assert_eq!(found.value, format!("v{i}"));
        revisions.insert(found.mod_revision);
    }
    assert!(
        !shared || revisions.len() < 300,
        "300 writes at once took {} transactions",
        revisions.len()
    );
    assert_eq!(app.task_writes.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_writes_at_once_share_transactions_and_fail_alone() {
    writes_at_once_share_transactions_and_fail_alone(crate::test_support::app().await, false).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_etcd_writes_at_once_share_transactions_and_fail_alone() {
    let etcd = berth_store::etcd::local::LocalEtcd::start(1).expect("a local etcd");
    let app = crate::test_support::app_on_etcd(&etcd).await;
    writes_at_once_share_transactions_and_fail_alone(app, true).await;
}

/// Two writes of one key at one revision, at once: one wins, whichever it is, and the value
/// is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writes_of_one_key_have_one_winner() {
    let app = crate::test_support::app().await;
    for round in 0..20 {
        let k = key(round);
        let answers = at_once(
            &app,
            vec![
                (k.clone(), 0, "\"a\"".to_string()),
                (k.clone(), 0, "\"b\"".to_string()),
            ],
        )
        .await;
        assert_eq!(answers.iter().filter(|a| **a).count(), 1, "{answers:?}");
        let winner = if answers[0] { "a" } else { "b" };
        assert_eq!(stored(&app, &k).expect("written").value, winner);
    }
}

fn write(key: &str, bytes: usize) -> (Write, oneshot::Receiver<Result<bool, ApiError>>) {
    let (reply, answer) = oneshot::channel();
    let write = Write {
        key: key.to_string(),
        revision: 0,
        value: vec![b'x'; bytes],
        reply,
    };
    (write, answer)
}

#[test]
fn a_group_holds_one_write_per_key_within_the_limits() {
    // Each write below counts 2 + its value + 64 bytes.
    let limits = WriteLimits {
        max_ops: 3,
        max_bytes: 300,
    };
    let mut waiting: VecDeque<Write> = VecDeque::new();
    let mut answers = Vec::new();
    for (k, bytes) in [("a", 10), ("a", 10), ("b", 10), ("c", 10), ("d", 10)] {
        let (w, answer) = write(k, bytes);
        waiting.push_back(w);
        answers.push(answer);
    }
    let keys = |group: &[Write]| group.iter().map(|w| w.key.clone()).collect::<Vec<_>>();
    // The second `a` waits; three writes at most.
    assert_eq!(keys(&take(&mut waiting, limits)), ["a", "b", "c"]);
    assert_eq!(keys(&take(&mut waiting, limits)), ["a", "d"]);
    assert!(take(&mut waiting, limits).is_empty());

    // Bytes: a write that would pass them waits, but the first goes in any case.
    for (k, bytes) in [("e", 300), ("f", 10), ("g", 150), ("h", 150)] {
        waiting.push_back(write(k, bytes).0);
    }
    assert_eq!(keys(&take(&mut waiting, limits)), ["e"]);
    assert_eq!(keys(&take(&mut waiting, limits)), ["f", "g"]);
    assert_eq!(keys(&take(&mut waiting, limits)), ["h"]);
}
