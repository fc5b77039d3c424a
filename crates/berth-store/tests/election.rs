//! Leader election on etcd: one leader at a time, handed over at once on resignation and
//! within the lease's life when the leader dies, with the fence failing the old leader's
//! writes.
#![cfg(feature = "etcd")]

use berth_store::etcd::{local::LocalEtcd, EtcdConfig, EtcdStore};
use berth_store::{Elect, Store, Txn};
use std::time::{Duration, Instant};

async fn connect(cluster: &LocalEtcd) -> EtcdStore {
    let config = EtcdConfig::from_url(&cluster.url("election")).expect("url");
    EtcdStore::connect(&config).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_resignation_hands_over_at_once() {
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let a = connect(&cluster).await;
    let b = connect(&cluster).await;
    let mut first = a.campaign("a").await.expect("a leads");
    assert_eq!(a.leader().await.expect("leader").as_deref(), Some("a"));
    let waiting = tokio::spawn(async move { b.campaign("b").await.map(|term| (b, term)) });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "b must wait while a leads");
    // The leader's fenced write holds.
    let fenced = Txn::new()
        .when(first.fence.clone())
        .put("/k", b"a".to_vec());
    assert!(a.txn(fenced).await.expect("txn").succeeded);

    let resigned = Instant::now();
    drop(first.resign.take());
    let (b, second) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("b leads soon after a resigns")
        .expect("join")
        .expect("campaign");
    assert!(
        resigned.elapsed() < Duration::from_secs(2),
        "{:?}",
        resigned.elapsed()
    );
    assert!(*first.lost.borrow(), "a knows its term ended");
    assert_eq!(b.leader().await.expect("leader").as_deref(), Some("b"));
    // The deposed leader's fence fails; the new one's holds.
    let stale = Txn::new()
        .when(first.fence.clone())
        .put("/k", b"stale".to_vec());
    assert!(!a.txn(stale).await.expect("txn").succeeded);
    let fresh = Txn::new()
        .when(second.fence.clone())
        .put("/k", b"b".to_vec());
    assert!(b.txn(fresh).await.expect("txn").succeeded);
    assert_eq!(b.get("/k").await.expect("get").expect("k").value, b"b");
}

#[test]
fn a_dead_leader_is_replaced_when_its_lease_expires() {
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    // The leader lives on a runtime of its own, dropped without resigning: as a kill -9
    // would, it stops renewing and revokes nothing.
    let leader_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fence = leader_runtime.block_on(async {
        let a = connect(&cluster).await;
        let term = a.campaign("a").await.expect("a leads");
        let fence = term.fence.clone();
        std::mem::forget(term);
        fence
    });
    leader_runtime.shutdown_background();
    let died = Instant::now();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let b = connect(&cluster).await;
            let term = tokio::time::timeout(Duration::from_secs(10), b.campaign("b"))
                .await
                .expect("b leads within the lease's life")
                .expect("campaign");
            let gap = died.elapsed();
            assert!(gap < Duration::from_secs(5), "leadership gap {gap:?}");
            let stale = Txn::new().when(fence).put("/k", b"stale".to_vec());
            assert!(!b.txn(stale).await.expect("txn").succeeded);
            assert!(!*term.lost.borrow());
        });
}
