//! Replicas over one etcd: one leads, another takes over when it goes, they hold the same
//! keys, an agent heard by one counts on all, and the controllers' writes are fenced.

use crate::app::ServerConfig;
use crate::http::Server;
use berth_store::etcd::local::LocalEtcd;
use std::path::Path;
use std::time::{Duration, Instant};

async fn replica(cluster: &LocalEtcd, name: &str, dir: &Path) -> Server {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(dir.join(name)),
        replica_name: Some(name.to_string()),
        ..ServerConfig::default()
    };
    let config = crate::test_support::on_etcd(cluster, "replicas", config);
    crate::serve(config).await.expect("serve")
}

async fn until(what: &str, within: Duration, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !holds() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replica `a`, once it leads (the first replica over an empty store always comes to).
async fn first_leader(cluster: &LocalEtcd, dir: &Path) -> Server {
    let a = replica(cluster, "a", dir).await;
    until("a leads", Duration::from_secs(10), || {
        a.app().leadership.leads()
    })
    .await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over_when_it_stops() {
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = first_leader(&cluster, dir.path()).await;
    let b = replica(&cluster, "b", dir.path()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!b.app().leadership.leads(), "one leader at a time");
    assert_eq!(
        crate::replicas::leader_line(b.app().as_ref()).await,
        "a leads",
        "b names the leader"
    );

    // The same keys on both: a key issued through one signs requests to the other.
    let read =
        |name: &str, file: &str| std::fs::read(dir.path().join(name).join(file)).expect(file);
    for file in [
        crate::auth::keys::MASTER_KEY_FILE,
        crate::vault::VAULT_KEY_FILE,
        crate::metrics::TOKEN_FILE,
        crate::auth::CREDENTIALS_FILE,
    ] {
        assert_eq!(read("a", file), read("b", file), "{file}");
    }

    // An agent heard by b counts on a (the leader) within a publish period or two.
    let arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/0123";
    b.app().agents.saw(arn);
    let leader = a.app().clone();
    until(
        "a hears of the agent b heard",
        crate::replicas::sightings::PUBLISH_EVERY * 3,
        || leader.agents.last_seen(arn).is_some(),
    )
    .await;

    // A clean stop hands over at once (the lease is revoked, not left to expire).
    let stopped = Instant::now();
    a.shutdown().await.expect("a stops");
    let follower = b.app().clone();
    until("b leads", Duration::from_secs(5), || {
        follower.leadership.leads()
    })
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    b.shutdown().await.expect("b stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_controller_writes_fail() {
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = first_leader(&cluster, dir.path()).await;
    let app = a.app().clone();
    // A write on a controller's runtime thread carries the term's fence.
    let fenced = std::thread::Builder::new()
        .name(super::LEADER_THREAD.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let held = app.leadership.fence_here().expect("a fence while leading");
                let txn = berth_store::Txn::new().put("/probe", b"1".to_vec());
                assert!(app.commit(txn).await.expect("commit").succeeded);
                // The leader key moves on (as when the lease expired and another took it):
                // the old term's fence fails the write.
                let taken = berth_store::Txn::new().put(berth_store::keys::LEADER, b"x".to_vec());
                assert!(app.store.txn(taken).await.expect("txn").succeeded);
                let stale = berth_store::Txn::new()
                    .when(held)
                    .put("/probe", b"2".to_vec());
                assert!(!app.store.txn(stale).await.expect("txn").succeeded);
                let txn = berth_store::Txn::new().put("/probe", b"3".to_vec());
                app.commit(txn).await.map(|r| r.succeeded)
            })
        })
        .expect("thread")
        .join()
        .expect("join");
    assert!(
        !matches!(fenced, Ok(true)),
        "a controller write after the term ended must not land: {fenced:?}"
    );
    let probe = a
        .app()
        .store
        .get("/probe")
        .await
        .expect("get")
        .expect("probe");
    assert_eq!(probe.value, b"1");
    a.shutdown().await.expect("a stops");
}

/// The leader's GC writes carry its fence: a batch of deletes leaves room for it in etcd's 128
/// guards, so more records than one transaction takes, due together, all go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_gc_deletes_more_records_than_one_etcd_transaction_takes() {
    use crate::test_support::ok;
    use serde_json::json;
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    // Long enough that no record falls due while a is still making them (200 RunTasks on a
    // loaded machine), short enough to wait out while no server runs.
    let retention = Duration::from_secs(8);
    let config = |name: &str| {
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: Some(dir.path().join(name)),
            replica_name: Some(name.to_string()),
            stopped_task_retention: retention,
            ..ServerConfig::default()
        };
        crate::test_support::on_etcd(&cluster, "gc", config)
    };
    let a = crate::serve(config("a")).await.expect("serve");
    let app = a.app().clone();
    until("a leads", Duration::from_secs(10), || {
        app.leadership.leads()
    })
    .await;
    ok(&app, "CreateCluster", json!({"clusterName": "gc"})).await;
    ok(
        &app,
        "RegisterContainerInstance",
        json!({"cluster": "gc", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 8192},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ]}),
    )
    .await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "tiny", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 6, "essential": true}
        ]}),
    )
    .await;
    // 200 RunTasks with a clientToken each: 200 token records. The server is down while
    // they fall due, so the next leader finds all of them due at once.
    for i in 0..200 {
        ok(
            &app,
            "RunTask",
            json!({"cluster": "gc", "taskDefinition": "tiny", "clientToken": format!("t{i}")}),
        )
        .await;
    }
    let store = app.store.clone();
    let tokens = || async {
        let (kvs, _) = store
            .list(berth_store::keys::CLIENT_TOKENS)
            .await
            .expect("list");
        kvs.len()
    };
    assert_eq!(tokens().await, 200);
    drop(app);
    a.shutdown().await.expect("a stops");
    tokio::time::sleep(retention + Duration::from_millis(500)).await;

    let b = crate::serve(config("b")).await.expect("serve");
    let app = b.app().clone();
    until("b leads", Duration::from_secs(10), || {
        app.leadership.leads()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokens().await > 0 {
        assert!(
            Instant::now() < deadline,
            "{} token records left past their retention",
            tokens().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(app);
    b.shutdown().await.expect("b stops");
}
