//! The recorder and the checker on real stores: concurrent guarded increments, deletes,
//! reads and abandoned writes, recorded by two recorders (two history files, as two server
//! processes would write) and checked for anomalies — on SQLite always, and on a local etcd
//! with the `etcd` feature.

use berth_store::history::{self, Recorder, Summary};
use berth_store::{Compare, Store, Txn};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

const KEYS: usize = 3;
const WORKERS: usize = 4;
const ROUNDS: usize = 40;

fn key(n: usize) -> String {
    format!("/h/counter/{}", n % KEYS)
}

/// Reads `key` and writes the next count guarded on the version read; with `abandon`, drops
/// the write unanswered after that time (as a process killed mid-call would).
async fn increment(store: &dyn Store, key: String, abandon: Option<Duration>) {
    let Ok(current) = store.get(&key).await else {
        return;
    };
    let (guard, count) = match current {
        Some(kv) => {
            let count: u64 = String::from_utf8_lossy(&kv.value).parse().unwrap_or(0);
            (Compare::at(&key, kv.mod_revision), count)
        }
        None => (Compare::absent(&key), 0),
    };
    let txn = Txn::new()
        .when(guard)
        .put(&key, (count + 1).to_string().into_bytes());
    let Some(after) = abandon else {
        let _ = store.txn(txn).await;
        return;
    };
    // Polled once (the recorder writes the invoke line, the store gets the call as far as
    // it goes without waiting), then given `after` more at most.
    let mut call = std::pin::pin!(store.txn(txn));
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    if first.is_pending() && !after.is_zero() {
        let _ = tokio::time::timeout(after, call).await;
    }
}

/// One worker's rounds on `store`: mostly increments, with gets, lists, guarded deletes, and
/// increments abandoned while in flight (as a process killed mid-call leaves them).
async fn worker(store: Arc<dyn Store>, worker: usize) {
    for round in 0..ROUNDS {
        let k = key(worker + round);
        match round % 11 {
            3 => {
                let _ = store.list("/h/").await;
            }
            5 => {
                let _ = store.get(&key(round + 1)).await;
            }
            7 => {
                // Dropped at once or after up to 2 ms: the write may or may not reach the
                // store.
                let after = match worker % 2 {
                    0 => Duration::ZERO,
                    _ => Duration::from_micros((worker * 397 + round * 131) as u64 % 2000),
                };
                increment(&*store, k, Some(after)).await;
            }
            10 => {
                if let Ok(Some(kv)) = store.get(&k).await {
                    let txn = Txn::new().when(Compare::at(&k, kv.mod_revision)).delete(&k);
                    let _ = store.txn(txn).await;
                }
            }
            _ => increment(&*store, k, None).await,
        }
    }
}

/// Runs the workers over two recorders of `a` and `b` (two connections to one store, or
/// one store twice) and checks the two histories.
async fn run_and_check(a: Arc<dyn Store>, b: Arc<dyn Store>) -> Summary {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<PathBuf> = ["a.jsonl", "b.jsonl"]
        .iter()
        .map(|name| dir.path().join(name))
        .collect();
    let recorders = [
        Recorder::wrap(a, &paths[0]).expect("recorder a"),
        Recorder::wrap(b, &paths[1]).expect("recorder b"),
    ];
    let mut workers = Vec::new();
    for w in 0..WORKERS * recorders.len() {
        let store = recorders[w % recorders.len()].clone();
        workers.push(tokio::spawn(worker(store, w)));
    }
    for w in workers {
        w.await.expect("worker");
    }
    // Let abandoned writes land, then end the run with a revision every history knows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for recorder in &recorders {
        recorder.revision().await.expect("revision");
    }
    let summary = match history::check(&paths) {
        Ok(summary) => summary,
        Err(anomalies) => {
            let listed: Vec<String> = anomalies.iter().map(ToString::to_string).collect();
            panic!("anomalies:\n{}", listed.join("\n"));
        }
    };
    eprintln!("{summary:?}");
    assert!(summary.writes > 0 && summary.reads > 0, "{summary:?}");
    assert!(
        summary.indeterminate > 0,
        "some increments were abandoned: {summary:?}"
    );
    assert!(
        summary.unexplained_revisions.is_empty(),
        "every writer was recorded: {summary:?}"
    );
    assert_eq!(summary.torn_lines, 0);
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_on_sqlite_are_linearizable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(berth_store::SqliteStore::open(&dir.path().join("store.db")).expect("open"));
    run_and_check(store.clone(), store).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_on_etcd_are_linearizable() {
    use berth_store::etcd::{local::LocalEtcd, EtcdConfig, EtcdStore};
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let config = EtcdConfig::from_url(&cluster.url("history")).expect("url");
    let a = EtcdStore::connect(&config).await.expect("connect a");
    let b = EtcdStore::connect(&config).await.expect("connect b");
    run_and_check(Arc::new(a), Arc::new(b)).await;
}
