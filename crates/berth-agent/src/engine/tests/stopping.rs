//! Stopping: StopTask with stopTimeout and SIGKILL, reverse dependency order, tasks that leave
//! the desired set, stops during a pull, and removal after the cleanup delay.

use super::*;
use crate::runtime::fake::{Behavior, SIGKILL_EXIT_CODE};

#[tokio::test(start_paused = true)]
async fn stop_task_kills_a_container_that_ignores_sigterm_after_its_stop_timeout() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::running().ignoring_sigterm());
    let td = task_definition(json!([container("web", json!({"stopTimeout": 10}))]));
    h.assign(&[new_task(&td, "t1")]);
    let running_at = h.until("t1", TaskStatus::Running).await;
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(stopped_at - running_at, Duration::from_secs(10));
    assert_eq!(
        h.statuses("t1"),
        path(&["PENDING", "ACTIVATING", "RUNNING"])
    );
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("UserInitiated"));
    assert_eq!(task.stopped_reason.as_deref(), Some("Task stopped by user"));
    assert!(task.execution_stopped_at.is_some());
    assert_eq!(
        h.container("t1", "web").exit_code,
        Some(SIGKILL_EXIT_CODE as i32)
    );
    let id = h.runtime_id("t1", "web");
    assert_eq!(
        h.count(|c| matches!(c, Call::Stop { id: i, timeout } if *i == id && *timeout == Duration::from_secs(10))),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_without_stop_timeout_gets_thirty_seconds() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::running().ignoring_sigterm());
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    let running_at = h.until("t1", TaskStatus::Running).await;
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(stopped_at - running_at, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_container_that_honours_sigterm_stops_at_once_with_its_exit_code() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    let running_at = h.until("t1", TaskStatus::Running).await;
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(stopped_at, running_at);
    assert_eq!(h.container("t1", "web").exit_code, Some(143));
}

#[tokio::test(start_paused = true)]
async fn dependents_are_stopped_before_the_containers_they_depend_on() {
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
    h.stop_task("t1", &["t1"]);
    h.until("t1", TaskStatus::Stopped).await;
    let (db, app) = (h.runtime_id("t1", "db"), h.runtime_id("t1", "app"));
    let stop_app = h.position(|c| matches!(c, Call::Stop { id, .. } if *id == app));
    let stop_db = h.position(|c| matches!(c, Call::Stop { id, .. } if *id == db));
    assert!(stop_app < stop_db);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_leaves_the_desired_set_is_stopped() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1"), new_task(&td, "t2")]);
    h.until("t1", TaskStatus::Running).await;
    h.until("t2", TaskStatus::Running).await;
    h.assign(&[new_task(&td, "t2")]);
    h.until("t1", TaskStatus::Stopped).await;
    h.drain().await;
    assert_eq!(h.task("t2").last_status, Some(TaskStatus::Running));
    assert_eq!(h.engine.active_tasks(), vec![task_arn("t2")]);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_the_pull_ends_the_task_without_creating_containers() {
    let fake = FakeRuntime::new();
    fake.set_pull_delay(Duration::from_secs(120));
    let mut h = Harness::on(fake, config()).await;
    let td = task_definition(json!([container("web", json!({"image": "big:1"}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Pending).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    h.stop_task("t1", &["t1"]);
    let at = h.until("t1", TaskStatus::Stopped).await;
    assert!(at < Duration::from_secs(120));
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
    assert_eq!(h.task("t1").stop_code.as_deref(), Some("UserInitiated"));
}

#[tokio::test(start_paused = true)]
async fn a_task_stopped_before_it_came_here_is_reported_stopped_without_containers() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    let mut task = new_task(&td, "t1");
    task_state::request_stop(
        Arc::make_mut(&mut task.task),
        task_state::stop_code::USER_INITIATED,
        None,
        1.0,
    );
    h.assign(&[task]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn stopped_containers_are_removed_after_the_cleanup_delay() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(1), 0));
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    // The server drops the stopped task from the desired set.
    h.assign(&[]);
    assert_eq!(
        h.fake.containers().len(),
        1,
        "kept during the cleanup delay"
    );
    tokio::time::sleep(Duration::from_secs(599)).await;
    assert_eq!(h.fake.containers().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        h.fake.containers().is_empty(),
        "removed after {:?}",
        h.began.elapsed() - stopped_at
    );
    assert!(h.engine.active_tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stale_desired_state_does_not_restart_a_finished_task() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(1), 0));
    let td = task_definition(json!([container("web", json!({}))]));
    let original = new_task(&td, "t1");
    h.assign(std::slice::from_ref(&original));
    h.until("t1", TaskStatus::Stopped).await;
    h.send_desired(vec![original]);
    h.drain().await;
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 1);
}
