use super::*;
use berth_core::model::task::Task;
use berth_core::model::{Connectivity, TaskStatus};
use berth_store::{keys, Event, EventKind, SqliteStore, Txn};
use std::collections::BTreeMap;

const INSTANCES: [&str; 3] = ["i1", "i2", "i3"];
const STATUSES: [TaskStatus; 5] = [
    TaskStatus::Provisioning,
    TaskStatus::Pending,
    TaskStatus::Running,
    TaskStatus::Stopping,
    TaskStatus::Stopped,
];

fn instance_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c1/{id}")
}

fn random_task(rng: &mut fastrand::Rng, id: &str) -> Task {
    let family = ["web", "db"][rng.usize(..2)];
    Task {
        task_arn: Some(format!("arn:aws:ecs:us-east-1:000000000000:task/c1/{id}")),
        task_definition_arn: Some(format!(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"
        )),
        container_instance_arn: (rng.usize(..5) > 0)
            .then(|| instance_arn(INSTANCES[rng.usize(..INSTANCES.len())])),
        last_status: Some(STATUSES[rng.usize(..STATUSES.len())]),
        desired_status: Some([TaskStatus::Running, TaskStatus::Stopped][rng.usize(..2)]),
        group: Some(["service:api", "family:web", "batch"][rng.usize(..3)].to_string()),
        started_by: [None, Some("ecs-svc/1".to_string()), Some("ci".to_string())][rng.usize(..3)]
            .clone(),
        stopped_at: [None, Some(1000.5), Some(2000.25)][rng.usize(..3)],
        connectivity: [
            None,
            Some(Connectivity::Connected),
            Some(Connectivity::Disconnected),
        ][rng.usize(..3)],
        ..Task::default()
    }
}

fn random_event(rng: &mut fastrand::Rng, revision: u64) -> Event {
    let roll = rng.usize(..11);
    let (key, value) = match roll {
        0..=5 => {
            let id = format!("t{}", rng.usize(..12));
            let task = random_task(rng, &id);
            (
                keys::task("c1", &id),
                serde_json::to_vec(&task).expect("json"),
            )
        }
        6 => {
            let id = INSTANCES[rng.usize(..INSTANCES.len())];
            let status = ["ACTIVE", "DRAINING", "INACTIVE"][rng.usize(..3)];
            let value = serde_json::json!({
                "containerInstanceArn": instance_arn(id), "status": status
            });
            (keys::instance("c1", id), value.to_string().into_bytes())
        }
        7 => {
            let name = ["api", "worker"][rng.usize(..2)];
            let status = ["ACTIVE", "DRAINING"][rng.usize(..2)];
            let value = serde_json::json!({"serviceName": name, "status": status});
            (keys::service("c1", name), value.to_string().into_bytes())
        }
        8 => {
            // A client token, written, rewritten or forgotten.
            let key = keys::client_token("c1", ["a", "b"][rng.usize(..2)]);
            if rng.bool() {
                return Event {
                    kind: EventKind::Delete,
                    key,
                    value: Vec::new(),
                    revision,
                };
            }
            let created_at = [1.5, 7.25][rng.usize(..2)];
            let value = serde_json::json!({ "createdAt": created_at });
            (key, value.to_string().into_bytes())
        }
        _ => {
            // A delete of some task (GC) or a garbage value that does not decode.
            let id = format!("t{}", rng.usize(..12));
            if rng.bool() {
                return Event {
                    kind: EventKind::Delete,
                    key: keys::task("c1", &id),
                    value: Vec::new(),
                    revision,
                };
            }
            (keys::task("c1", &id), b"{not json".to_vec())
        }
    };
    Event {
        kind: EventKind::Put,
        key,
        value,
        revision,
    }
}

#[test]
fn indexes_always_equal_a_rebuild_from_scratch_after_random_events() {
    for seed in 0..200 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut state = State::default();
        let mut objects: BTreeMap<String, (Vec<u8>, u64)> = BTreeMap::new();
        // Task definitions come before the tasks that use them (RunTask checks), and stay.
        let definitions = [("web", 256, 80), ("db", 512, 5432)].map(|(family, memory, port)| {
            let td = serde_json::json!({
                "taskDefinitionArn": format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"),
                "family": family, "revision": 1,
                "containerDefinitions": [{"name": "c", "image": "busybox", "memory": memory,
                    "portMappings": [{"containerPort": port, "hostPort": port}]}]
            });
            (keys::task_definition(family, 1), td.to_string().into_bytes())
        });
        for (revision, (key, value)) in (1u64..).zip(definitions) {
            objects.insert(key.clone(), (value.clone(), revision));
            let event = Event {
                kind: EventKind::Put,
                key,
                value,
                revision,
            };
            state.apply(event, &mut Touched::default());
        }
        for revision in 3..=60u64 {
            let event = random_event(&mut rng, revision);
            match event.kind {
                EventKind::Put => {
                    objects.insert(event.key.clone(), (event.value.clone(), revision));
                }
                EventKind::Delete => {
                    objects.remove(&event.key);
                }
                EventKind::Progress => {}
            }
            state.apply(event, &mut Touched::default());
            let items = objects
                .iter()
                .map(|(key, (value, rev))| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: *rev,
                    mod_revision: *rev,
                    version: 1,
                })
                .collect();
            let rebuilt = State::from_items(items, revision);
            assert_eq!(
                state.derived(),
                rebuilt.derived(),
                "seed {seed}, revision {revision}"
            );
            let held: i64 = state
                .all_tasks()
                .filter(|t| !t.is_stopped() && t.instance_arn.is_some())
                .map(|t| t.resources.as_ref().map_or(0, |r| r.memory))
                .sum();
            let counted: i64 = INSTANCES
                .iter()
                .filter_map(|id| state.load(&instance_arn(id)))
                .map(|l| l.reserved.memory)
                .sum();
            assert_eq!(held, counted, "seed {seed}: reservations add up");
        }
    }
}

#[test]
fn a_task_report_that_changes_nothing_for_the_agent_routes_nowhere() {
    let mut state = State::default();
    let mut task = Task {
        task_arn: Some("arn:aws:ecs:us-east-1:000000000000:task/c1/t1".into()),
        container_instance_arn: Some(instance_arn("i1")),
        last_status: Some(TaskStatus::Pending),
        desired_status: Some(TaskStatus::Running),
        ..Task::default()
    };
    let put = |task: &Task, revision| Event {
        kind: EventKind::Put,
        key: keys::task("c1", "t1"),
        value: serde_json::to_vec(task).expect("json"),
        revision,
    };
    let mut touched = Touched::default();
    state.apply(put(&task, 1), &mut touched);
    assert_eq!(touched.instances.len(), 1, "a new task wakes its instance");

    task.last_status = Some(TaskStatus::Running);
    let mut touched = Touched::default();
    state.apply(put(&task, 2), &mut touched);
    assert!(touched.instances.is_empty(), "its own report wakes nobody");
    assert_eq!(
        state
            .task(&keys::task("c1", "t1"))
            .expect("task")
            .desired_revision,
        1
    );

    task.desired_status = Some(TaskStatus::Stopped);
    let mut touched = Touched::default();
    state.apply(put(&task, 3), &mut touched);
    assert!(
        touched.instances.contains(&instance_arn("i1")),
        "a stop request wakes it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrelated_write_wakes_no_other_instance_stream() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
    let cache = StateCache::start(store.clone()).await.expect("start");
    let mut on_i1 = cache.instance_changes(&instance_arn("i1"));
    let mut on_i2 = cache.instance_changes(&instance_arn("i2"));
    on_i1.mark_unchanged();
    on_i2.mark_unchanged();
    let task = Task {
        task_arn: Some("arn:aws:ecs:us-east-1:000000000000:task/c1/t1".into()),
        container_instance_arn: Some(instance_arn("i1")),
        last_status: Some(TaskStatus::Pending),
        desired_status: Some(TaskStatus::Running),
        ..Task::default()
    };
    let put = store
        .txn(Txn::new().put(
            keys::task("c1", "t1"),
            serde_json::to_vec(&task).expect("json"),
        ))
        .await
        .expect("txn");
    let other = store
        .txn(Txn::new().put(keys::cluster("c2"), b"{}".to_vec()))
        .await
        .expect("txn");
    cache.wait_for(other.revision).await;
    assert!(on_i1.has_changed().expect("open"), "its own task wakes i1");
    assert!(*on_i1.borrow_and_update() >= put.revision);
    assert!(!on_i2.has_changed().expect("open"), "i2 is not woken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_puts_and_deletes_in_the_store() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
    store
        .txn(Txn::new().put("/a/1", b"x".to_vec()))
        .await
        .expect("txn");
    let cache = StateCache::start(store.clone()).await.expect("start");
    assert_eq!(cache.get("/a/1").expect("listed").value, b"x");
    let put = store
        .txn(Txn::new().put("/a/2", b"y".to_vec()))
        .await
        .expect("txn");
    cache.wait_for(put.revision).await;
    assert_eq!(cache.list("/a/").len(), 2);
    let del = store.txn(Txn::new().delete("/a/1")).await.expect("txn");
    cache.wait_for(del.revision).await;
    assert!(cache.get("/a/1").is_none());
    let kv = cache.get("/a/2").expect("kv");
    assert_eq!(kv.mod_revision, put.revision);
    assert_eq!(kv.version, 1);
}

#[test]
fn a_services_tasks_merge_its_hot_and_stopped_indexes_in_key_order_from_any_point() {
    let items: Vec<KeyValue> = (0..8)
        .map(|i| {
            let id = format!("t{i}");
            let stopped = i % 3 == 0;
            let task = Task {
                task_arn: Some(format!("arn:aws:ecs:us-east-1:000000000000:task/c1/{id}")),
                last_status: Some(if stopped {
                    TaskStatus::Stopped
                } else {
                    TaskStatus::Running
                }),
                group: Some("service:api".into()),
                started_by: Some("ecs-svc/1".into()),
                ..Task::default()
            };
            KeyValue {
                key: keys::task("c1", &id),
                value: serde_json::to_vec(&task).expect("json"),
                create_revision: 1,
                mod_revision: 1,
                version: 1,
            }
        })
        .collect();
    let state = State::from_items(items, 1);
    let value = scoped("c1", "api");
    let ids = |after: Option<&str>| -> Vec<String> {
        state
            .service_tasks(&value, after)
            .map(|t| t.id().to_string())
            .collect()
    };
    let all: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    assert_eq!(ids(None), all);
    assert_eq!(ids(Some(&keys::task("c1", "t3"))), all[4..].to_vec());
    // The hot index holds only the tasks that have not stopped.
    assert_eq!(state.count_tasks(TaskIndex::Service, &value), 5);
    assert_eq!(state.count_tasks(TaskIndex::ServiceStopped, &value), 3);
}

/// Two installations on one etcd (prefixes `a` and `b`): b's writes move the store's revision
/// with no event under a's prefix. A's transaction that fails answers that revision, and a
/// read of the head returns it: a's cache reaches both through the watch's progress
/// notifications, instead of waiting for a's next write.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_reaches_revisions_another_installation_made() {
    use crate::app::App;
    use crate::test_support::on_etcd;
    use berth_store::Compare;
    let etcd = berth_store::etcd::local::LocalEtcd::start(1).expect("a local etcd");
    let a = App::open(on_etcd(&etcd, "a", crate::ServerConfig::default()))
        .await
        .expect("a");
    let b = App::open(on_etcd(&etcd, "b", crate::ServerConfig::default()))
        .await
        .expect("b");
    for i in 0..5 {
        let key = format!("/test/b/{i}");
        assert!(
            b.commit(Txn::new().put(&key, b"1".to_vec()))
                .await
                .expect("b writes")
                .succeeded
        );
    }
    let within = std::time::Duration::from_secs(5);
    let failing = Txn::new()
        .when(Compare::at("/test/a/x", 7))
        .put("/test/a/x", b"1".to_vec());
    let failed = tokio::time::timeout(within, a.commit(failing))
        .await
        .expect("a's failed transaction answers without waiting for a's next write")
        .expect("no store error");
    assert!(!failed.succeeded);
    assert!(a.state.revision() >= failed.revision);
    assert!(
        b.commit(Txn::new().put("/test/b/9", b"1".to_vec()))
            .await
            .expect("b")
            .succeeded
    );
    let head = a.store.revision().await.expect("head");
    tokio::time::timeout(within, a.state.wait_for(head))
        .await
        .expect("a's cache reaches the store's head");
}
