//! Instance health: an instance whose agent has not been heard from (heartbeat or
//! registration) for the configured grace becomes `agentConnected=false` — it receives no new
//! tasks, and its tasks show `connectivity: DISCONNECTED` rather than silently RUNNING. The
//! first heartbeat after that connects it again.
//!
//! Each instance has its own timer on a work queue: it is looked at when its agent's grace
//! would run out, and when its agent speaks for the first time or after a silence. Nothing
//! passes over every instance.

use super::queue::{spawn_workers, Action, WorkQueue};
use crate::app::App;
use crate::state::TaskIndex;
use berth_core::arn::Arn;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::{Connectivity, ContainerInstanceStatus};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Instances looked at in parallel.
const WORKERS: usize = 2;

/// Whether an agent last heard from at `last_seen` (or never since `baseline`, the server's
/// start) counts as connected at `now`.
pub fn is_connected(
    last_seen: Option<Instant>,
    baseline: Instant,
    now: Instant,
    grace: Duration,
) -> bool {
    let seen = last_seen.map_or(baseline, |s| s.max(baseline));
    now.saturating_duration_since(seen) < grace
}

/// Marks `instance` connected or not, with its tasks' `connectivity`. The tasks go first, in
/// transactions of what the store takes, and the instance last, with the last of its tasks:
/// until the instance's flag is written the controller looks at it again, and tasks already
/// marked are not written twice. An error names a lost race with another write, or a store
/// failure: the key is retried.
async fn set_connected(app: &App, key: &str, connected: bool) -> Result<(), String> {
    let current = match app.get::<ContainerInstance>(key) {
        Ok(Some(current)) => current,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let mut instance = current.value.without_derived();
    if instance.agent_connected == Some(connected)
        || instance.status == Some(ContainerInstanceStatus::Inactive)
    {
        return Ok(());
    }
    instance.agent_connected = Some(connected);
    let arn = instance.container_instance_arn.clone();
    let state = if connected {
        Connectivity::Connected
    } else {
        Connectivity::Disconnected
    };
    let now = app.now();
    let snapshot = app.snapshot();
    let tasks: Vec<_> = snapshot
        .tasks_by(
            TaskIndex::Instance,
            arn.as_deref().unwrap_or_default(),
            None,
        )
        .filter(|entry| entry.task.connectivity != Some(state))
        .collect();
    // Room beside each batch for the instance's guard and write, and a leader's fence.
    let per_txn = app.write_limits().task_batch();
    let mut txns: Vec<Txn> = tasks
        .chunks(per_txn)
        .map(|chunk| {
            chunk.iter().fold(Txn::new(), |txn, entry| {
                let mut task = entry.task.clone();
                task.connectivity = Some(state);
                task.connectivity_at = Some(now);
                txn.when(Compare::at(&*entry.key, entry.mod_revision))
                    .put(&*entry.key, encode(&task))
            })
        })
        .collect();
    drop(tasks);
    drop(snapshot);
    let last = txns
        .pop()
        .unwrap_or_default()
        .when(Compare::at(key, current.mod_revision))
        .put(key, encode(&instance));
    for txn in txns.into_iter().chain([last]) {
        match app.commit(txn).await {
            Ok(result) if result.succeeded => {}
            Ok(_) => return Err("another write to the instance or its tasks came first".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
    tracing::info!(instance = %arn.unwrap_or_default(), connected, "instance health: agent connectivity changed");
    Ok(())
}

/// Brings the instance at `key` in line with its agent's liveness; says when to look again.
async fn reconcile(app: &App, key: &str, baseline: Instant) -> Result<Action, String> {
    let snapshot = app.snapshot();
    let Some(stored) = snapshot.instance(key) else {
        return Ok(Action::AwaitChange);
    };
    let instance = &stored.value;
    let Some(arn) = instance.container_instance_arn.clone() else {
        return Ok(Action::AwaitChange);
    };
    if instance.status == Some(ContainerInstanceStatus::Inactive) {
        return Ok(Action::AwaitChange);
    }
    let stored_connected = instance.agent_connected;
    drop(snapshot);
    let now = Instant::now();
    let seen = app.agents.last_seen(&arn);
    let grace = app.config.agent_grace;
    let connected = is_connected(seen, baseline, now, grace);
    if stored_connected != Some(connected) {
        set_connected(app, key, connected).await?;
    }
    if connected {
        let heard = seen.map_or(baseline, |s| s.max(baseline));
        Ok(Action::RequeueAfter(
            (heard + grace).saturating_duration_since(now),
        ))
    } else if app.agents.hold_silent(&arn, seen) {
        // Its next word queues it again.
        Ok(Action::AwaitChange)
    } else {
        // It spoke while this looked: look again now.
        Ok(Action::RequeueAfter(Duration::ZERO))
    }
}

/// The store key of a container instance ARN.
fn key_of(arn: &str) -> Option<String> {
    match Arn::parse(arn)?.path.as_slice() {
        [cluster, id] => Some(keys::instance(cluster, id)),
        _ => None,
    }
}

/// Runs the controller for as long as the app lives: every stored instance is looked at once
/// now, then on its own timer and on its agent's news.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&app);
    let baseline = Instant::now();
    let mut news = app.agents.news();
    let queue: Arc<WorkQueue<String>> = Arc::default();
    {
        let queue = Arc::downgrade(&queue);
        app.metrics.register_queue(
            "instance_health",
            Box::new(move || queue.upgrade().map_or(0, |q| q.len())),
        );
    }
    for (key, _) in app.snapshot().all_instances() {
        queue.add(key.clone());
    }
    drop(app);
    let workers = spawn_workers(Arc::clone(&queue), WORKERS, move |key: String| {
        let weak = weak.clone();
        async move {
            let app = weak.upgrade()?;
            Some(reconcile(&app, &key, baseline).await)
        }
    });
    tokio::spawn(async move {
        // The registry, and so the news, goes with the app.
        while let Some(arn) = news.recv().await {
            if let Some(key) = key_of(&arn) {
                queue.add(key);
            }
        }
        for worker in workers {
            worker.abort();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ServerConfig;
    use crate::test_support::ok;
    use serde_json::json;

    async fn connected(app: &Arc<App>, arn: &str) -> Option<bool> {
        let out = ok(
            app,
            "DescribeContainerInstances",
            json!({"cluster": "health", "containerInstances": [arn]}),
        )
        .await;
        out["containerInstances"][0]["agentConnected"].as_bool()
    }

    async fn until(app: &Arc<App>, arn: &str, want: bool, within: Duration) -> Duration {
        let start = Instant::now();
        while connected(app, arn).await != Some(want) {
            assert!(
                start.elapsed() < within,
                "agentConnected did not become {want} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }

    #[tokio::test]
    async fn a_silent_agent_is_disconnected_on_its_own_timer_and_its_next_word_reconnects_it() {
        let grace = Duration::from_millis(400);
        let app = App::open(ServerConfig {
            agent_grace: grace,
            ..ServerConfig::default()
        })
        .await
        .expect("app");
        let _controller = spawn(Arc::clone(&app));
        ok(&app, "CreateCluster", json!({"clusterName": "health"})).await;
        let registered = ok(
            &app,
            "RegisterContainerInstance",
            json!({"cluster": "health", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
            ]}),
        )
        .await;
        let arn = registered["containerInstance"]["containerInstanceArn"]
            .as_str()
            .expect("arn")
            .to_string();
        assert_eq!(connected(&app, &arn).await, Some(true));
        // Registration was its last word: the grace runs out and its timer fires.
        let took = until(&app, &arn, false, grace * 5).await;
        assert!(
            took >= grace / 2,
            "disconnected after {took:?}, before the grace"
        );
        // A heartbeat is news: it is connected again at once, not at some later pass.
        app.agents.saw(&arn);
        until(&app, &arn, true, Duration::from_millis(500)).await;
        // Heard from regularly, it stays connected past several graces.
        for _ in 0..6 {
            tokio::time::sleep(grace / 4).await;
            app.agents.saw(&arn);
            assert_eq!(connected(&app, &arn).await, Some(true));
        }
    }

    /// The `connectivity` of every task in `arns`, with how many tasks have each.
    #[cfg(feature = "etcd")]
    async fn connectivities(app: &Arc<App>, arns: &[String]) -> Vec<(String, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for chunk in arns.chunks(100) {
            let out = ok(
                app,
                "DescribeTasks",
                json!({"cluster": "health", "tasks": chunk}),
            )
            .await;
            for task in out["tasks"].as_array().expect("tasks") {
                let state = task["connectivity"].as_str().unwrap_or("none").to_string();
                *counts.entry(state).or_insert(0) += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// On etcd, whose transactions take 128 guards: an instance with 150 tasks is marked
    /// disconnected, and connected again, with every one of its tasks.
    #[cfg(feature = "etcd")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_with_more_tasks_than_one_etcd_transaction_takes_changes_with_all_of_them()
    {
        let etcd = berth_store::etcd::local::LocalEtcd::start(1).expect("a local etcd");
        let grace = Duration::from_secs(3);
        let config = ServerConfig {
            agent_grace: grace,
            ..ServerConfig::default()
        };
        let config = crate::test_support::on_etcd(&etcd, "health", config);
        let app = App::open(config).await.expect("app");
        let _controller = spawn(Arc::clone(&app));
        ok(&app, "CreateCluster", json!({"clusterName": "health"})).await;
        let registered = ok(
            &app,
            "RegisterContainerInstance",
            json!({"cluster": "health", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 8192},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 20000}
            ]}),
        )
        .await;
        let arn = registered["containerInstance"]["containerInstanceArn"]
            .as_str()
            .expect("arn")
            .to_string();
        ok(
            &app,
            "RegisterTaskDefinition",
            json!({"family": "small", "containerDefinitions": [
                {"name": "app", "image": "busybox", "memory": 100, "essential": true}
            ]}),
        )
        .await;
        let mut tasks = Vec::new();
        for _ in 0..15 {
            let out = ok(
                &app,
                "RunTask",
                json!({"cluster": "health", "taskDefinition": "small", "count": 10}),
            )
            .await;
            for task in out["tasks"].as_array().expect("tasks") {
                tasks.push(task["taskArn"].as_str().expect("arn").to_string());
            }
        }
        assert_eq!(tasks.len(), 150);

        until(&app, &arn, false, grace * 5).await;
        assert_eq!(
            connectivities(&app, &tasks).await,
            vec![("DISCONNECTED".to_string(), 150)]
        );
        app.agents.saw(&arn);
        until(&app, &arn, true, Duration::from_secs(5)).await;
        assert_eq!(
            connectivities(&app, &tasks).await,
            vec![("CONNECTED".to_string(), 150)]
        );
    }

    #[test]
    fn an_agent_is_connected_until_the_grace_passes_without_word_from_it() {
        let start = Instant::now();
        let grace = Duration::from_secs(20);
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(is_connected(Some(at(0)), start, at(19), grace));
        assert!(!is_connected(Some(at(0)), start, at(20), grace));
        assert!(is_connected(Some(at(30)), start, at(40), grace));
    }

    #[test]
    fn after_a_server_restart_agents_get_a_full_grace_to_speak() {
        let start = Instant::now();
        let grace = Duration::from_secs(20);
        assert!(is_connected(
            None,
            start,
            start + Duration::from_secs(10),
            grace
        ));
        assert!(!is_connected(
            None,
            start,
            start + Duration::from_secs(25),
            grace
        ));
    }
}
