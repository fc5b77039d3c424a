//! Container restart policies: a container that exits is started again in place (same
//! container, task still RUNNING) when its policy allows; never for an ignored exit code, an
//! exit sooner than the attempt period, or once the task is being stopped; an agent restart
//! neither loses nor repeats a restart.

use super::*;
use crate::runtime::fake::Behavior;

fn with_policy(policy: Value) -> TaskDefinition {
    task_definition(json!([container("web", json!({"restartPolicy": policy}))]))
}

fn starts(h: &Harness) -> usize {
    h.count(|c| matches!(c, Call::Start(_)))
}

/// Receives reports until container `web` of task `id` has been restarted `n` times.
async fn until_restarts(h: &mut Harness, id: &str, n: u32) {
    let wanted = format!("(restart {n})");
    while !h
        .container(id, "web")
        .reason
        .is_some_and(|r| r.ends_with(&wanted))
    {
        assert!(
            h.next().await.is_some(),
            "no restart {n}; container: {:?}",
            h.container(id, "web")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_container_exiting_after_the_attempt_period_is_restarted_in_place_each_time() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(61), 3));
    let td = with_policy(json!({"enabled": true, "restartAttemptPeriod": 60}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    until_restarts(&mut h, "t1", 3).await;
    assert_eq!(h.task("t1").last_status, Some(TaskStatus::Running));
    let web = h.container("t1", "web");
    assert_eq!(web.last_status, Some(TaskStatus::Running));
    assert_eq!(web.exit_code, Some(3), "the last exit is visible");
    assert_eq!(
        web.reason.as_deref(),
        Some("Restarted by its restartPolicy after exiting with code 3 (restart 3)")
    );
    assert_eq!(
        web.runtime_id.as_deref(),
        Some(id.as_str()),
        "the same container"
    );
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 1);
    assert_eq!(starts(&h), 4);
    // No report ever said the task or the container stopped.
    assert_eq!(h.statuses("t1"), ["PENDING", "ACTIVATING", "RUNNING"]);
    // A stop is not undone by the policy.
    h.stop_task("t1", &["t1"]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(h.container("t1", "web").exit_code, Some(143));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(starts(&h), 4);
}

#[tokio::test(start_paused = true)]
async fn a_container_exiting_within_the_attempt_period_is_not_restarted() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(30), 3));
    let td = with_policy(json!({"enabled": true, "restartAttemptPeriod": 60}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(starts(&h), 1);
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(h.container("t1", "web").exit_code, Some(3));
}

#[tokio::test(start_paused = true)]
async fn the_default_attempt_period_is_five_minutes() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(299), 1));
    let td = with_policy(json!({"enabled": true}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(starts(&h), 1);

    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(300), 1));
    h.assign(&[new_task(&td, "t2")]);
    until_restarts(&mut h, "t2", 1).await;
    assert_eq!(starts(&h), 2);
}

#[tokio::test(start_paused = true)]
async fn an_exit_within_the_period_after_a_restart_is_final() {
    let mut h = Harness::new().await;
    let td = with_policy(json!({"enabled": true, "restartAttemptPeriod": 60}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    tokio::time::sleep(Duration::from_secs(90)).await;
    h.fake.exit(&id, 3);
    until_restarts(&mut h, "t1", 1).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    h.fake.exit(&id, 4);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(starts(&h), 2);
    assert_eq!(h.container("t1", "web").exit_code, Some(4));
}

#[tokio::test(start_paused = true)]
async fn an_ignored_exit_code_stops_the_task() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(61), 0));
    let td = with_policy(json!({
        "enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60
    }));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(starts(&h), 1);
    assert_eq!(h.container("t1", "web").exit_code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_policy_restarts_nothing() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(400), 3));
    let td = with_policy(json!({"enabled": false}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(starts(&h), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_essential_container_is_restarted_while_the_task_runs_on() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("sidecar", Behavior::exits(Duration::from_secs(70), 2));
    let td = task_definition(json!([
        container("web", json!({})),
        container(
            "sidecar",
            json!({
                "essential": false,
                "restartPolicy": {"enabled": true, "restartAttemptPeriod": 60}
            })
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    while h.container("t1", "sidecar").reason.is_none() {
        assert!(h.next().await.is_some());
    }
    let sidecar = h.container("t1", "sidecar");
    assert_eq!(sidecar.last_status, Some(TaskStatus::Running));
    assert_eq!(sidecar.exit_code, Some(2));
    assert_eq!(h.task("t1").last_status, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn an_exit_while_the_agent_was_away_is_restarted_once_by_the_next_agent() {
    let mut h = Harness::new().await;
    let td = with_policy(json!({"enabled": true, "restartAttemptPeriod": 60}));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    tokio::time::sleep(Duration::from_secs(120)).await;
    let Harness {
        fake,
        engine,
        tasks,
        ..
    } = h;
    drop(engine);
    fake.exit(&id, 3);
    let mut h = Harness::on(fake, config()).await;
    h.tasks = tasks;
    h.assign(&[new_task(&td, "t1")]);
    until_restarts(&mut h, "t1", 1).await;
    assert_eq!(starts(&h), 2);
    assert_eq!(h.task("t1").last_status, Some(TaskStatus::Running));

    // A second agent restart finds it running: nothing to restart, and the count carries on.
    tokio::time::sleep(Duration::from_secs(100)).await;
    let mut h = h.restart().await;
    h.assign(&[new_task(&td, "t1")]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(starts(&h), 2, "no second start for the same exit");
    fake_exit_and_expect_restart(&mut h, &id, 2).await;
    assert_eq!(starts(&h), 3);
}

async fn fake_exit_and_expect_restart(h: &mut Harness, id: &str, n: u32) {
    h.fake.exit(id, 5);
    until_restarts(h, "t1", n).await;
    assert_eq!(h.container("t1", "web").exit_code, Some(5));
}
