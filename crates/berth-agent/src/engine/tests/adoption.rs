//! Re-adoption after an agent restart: the same containers, never a second copy; what changed
//! while the agent was away is reported; containers of tasks no longer assigned are retired.

use super::*;
use crate::runtime::fake::Behavior;

#[tokio::test(start_paused = true)]
async fn a_restarted_engine_adopts_running_containers_instead_of_creating_copies() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("db", json!({})),
        container(
            "app",
            json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let before = h.fake.containers();
    let mut h = h.restart().await;
    h.assign(&[new_task(&td, "t1")]);
    h.drain().await;
    assert_eq!(
        h.count(|c| matches!(c, Call::Create(_))),
        2,
        "only the first run created"
    );
    assert_eq!(h.fake.containers(), before);
    assert_eq!(h.task("t1").last_status, Some(TaskStatus::Running));
    assert!(
        h.received.is_empty(),
        "nothing new to report: {:?}",
        h.received
    );
    // The adopted containers are the ones stopped on StopTask.
    h.stop_task("t1", &["t1"]);
    h.until("t1", TaskStatus::Stopped).await;
    assert!(h.fake.containers().iter().all(|c| !c.running));
    assert_eq!(h.container("t1", "app").exit_code, Some(143));
}

#[tokio::test(start_paused = true)]
async fn an_essential_exit_while_the_agent_was_away_is_reported_after_restart() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    let engine = h.engine;
    drop(engine);
    h.fake.exit(&id, 2);
    let (sender, reports) = mpsc::unbounded_channel();
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(h.fake.clone());
    h.engine = Engine::start(runtime, config(), sender)
        .await
        .expect("engine");
    h.reports = reports;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(h.container("t1", "web").exit_code, Some(2));
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 1);
}

#[tokio::test(start_paused = true)]
async fn a_task_caught_between_create_and_start_is_started_from_its_existing_container() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "db",
        Behavior::running()
            .with_health(&[(Duration::from_secs(50), crate::runtime::Health::Healthy)]),
    );
    let td = task_definition(json!([
        container("db", json!({"healthCheck": {"command": ["CMD", "true"]}})),
        container(
            "app",
            json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Activating).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut h = h.restart().await;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 2);
    assert_eq!(h.fake.containers().len(), 2);
    assert!(h.fake.containers().iter().all(|c| c.running));
}

#[tokio::test(start_paused = true)]
async fn containers_of_tasks_no_longer_assigned_are_stopped_then_removed() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let mut h = h.restart().await;
    h.assign(&[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let containers = h.fake.containers();
    assert_eq!(containers.len(), 1);
    assert!(!containers[0].running, "stopped at once");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        h.fake.containers().is_empty(),
        "removed after the cleanup delay"
    );
}

#[tokio::test(start_paused = true)]
async fn containers_of_other_instances_are_left_alone() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let other_config = EngineConfig::new(CLUSTER, "ffffffffffffffffffffffffffffffff");
    let mut other = Harness::on(fake.clone(), other_config).await;
    let td = task_definition(json!([container("web", json!({}))]));
    other.assign(&[new_task(&td, "t9")]);
    other.until("t9", TaskStatus::Running).await;
    let mut h = Harness::on(fake, config()).await;
    h.assign(&[]);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let containers = h.fake.containers();
    assert_eq!(containers.len(), 1);
    assert!(containers[0].running);
}

#[tokio::test(start_paused = true)]
async fn containers_that_exited_long_ago_are_removed_without_a_new_full_delay() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(1), 0));
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    // The container exited (by the wall clock) longer ago than the cleanup delay.
    let exited = h.fake.containers()[0].clone();
    let old = crate::runtime::ContainerState {
        finished_at: exited.finished_at.map(|t| t - Duration::from_secs(601)),
        ..exited.clone()
    };
    assert_eq!(
        super::super::remaining_cleanup(&[old], Duration::from_secs(600)),
        Duration::ZERO
    );
    let fresh = super::super::remaining_cleanup(&[exited], Duration::from_secs(600));
    assert!(fresh > Duration::from_secs(590) && fresh <= Duration::from_secs(600));
    let mut running = h.fake.containers()[0].clone();
    running.running = true;
    assert_eq!(
        super::super::remaining_cleanup(&[running], Duration::from_secs(600)),
        Duration::from_secs(600)
    );
}
