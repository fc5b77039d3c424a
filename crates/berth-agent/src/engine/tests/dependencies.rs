//! `dependsOn`: START, COMPLETE, SUCCESS and HEALTHY, met and unmet, cycles and startTimeout.

use super::*;
use crate::runtime::fake::Behavior;
use crate::runtime::Health;

fn depends(on: &str, condition: &str) -> Value {
    json!({"dependsOn": [{"containerName": on, "condition": condition}]})
}

fn start_of(h: &Harness, name: &str) -> usize {
    let id = h.runtime_id("t1", name);
    h.position(|c| matches!(c, Call::Start(i) if *i == id))
}

/// When (since the harness began) container `name` was reported RUNNING.
fn running_at(h: &Harness, name: &str) -> Duration {
    h.received
        .iter()
        .find(|r| {
            r.report.containers.iter().flatten().any(|c| {
                c.container_name.as_deref() == Some(name) && c.status.as_deref() == Some("RUNNING")
            })
        })
        .map(|r| r.at)
        .expect("container reported RUNNING")
}

#[tokio::test(start_paused = true)]
async fn start_dependencies_start_first_whatever_the_definition_order() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("app", depends("db", "START")),
        container("db", json!({}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert!(start_of(&h, "db") < start_of(&h, "app"));
}

#[tokio::test(start_paused = true)]
async fn complete_waits_for_the_dependency_to_exit_with_any_code() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("init", Behavior::exits(Duration::from_secs(10), 1));
    let td = task_definition(json!([
        container("init", json!({"essential": false})),
        container("app", depends("init", "COMPLETE"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    let at = h.until("t1", TaskStatus::Running).await;
    assert!(
        at >= Duration::from_secs(10),
        "RUNNING only once app started"
    );
    assert!(running_at(&h, "app") >= Duration::from_secs(10));
    assert_eq!(h.container("t1", "init").exit_code, Some(1));
    assert_eq!(
        h.container("t1", "app").last_status,
        Some(TaskStatus::Running)
    );
}

#[tokio::test(start_paused = true)]
async fn success_starts_the_dependent_after_a_zero_exit() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("init", Behavior::exits(Duration::from_secs(3), 0));
    let td = task_definition(json!([
        container("init", json!({"essential": false})),
        container("app", depends("init", "SUCCESS"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert!(running_at(&h, "app") >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn success_with_a_non_zero_exit_fails_the_task() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("init", Behavior::exits(Duration::from_secs(3), 4));
    let td = task_definition(json!([
        container("init", json!({"essential": false})),
        container("app", depends("init", "SUCCESS"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().expect("reason");
    assert!(
        reason.contains("'init'") && reason.contains("code 4"),
        "{reason}"
    );
    assert_eq!(h.container("t1", "app").reason, Some(reason));
    assert_eq!(
        h.count(|c| matches!(c, Call::Start(_))),
        1,
        "app never started"
    );
}

#[tokio::test(start_paused = true)]
async fn healthy_holds_the_dependent_until_the_health_check_passes() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "db",
        Behavior::running().with_health(&[(Duration::from_secs(20), Health::Healthy)]),
    );
    let td = task_definition(json!([
        container(
            "db",
            json!({"healthCheck": {"command": ["CMD-SHELL", "true"]}})
        ),
        container("app", depends("db", "HEALTHY"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    let at = h.until("t1", TaskStatus::Running).await;
    assert!(running_at(&h, "db") < Duration::from_secs(1));
    assert!(running_at(&h, "app") >= Duration::from_secs(20));
    assert!(at >= Duration::from_secs(20));
    assert_eq!(
        h.container("t1", "db").health_status,
        Some(HealthStatus::Healthy)
    );
}

#[tokio::test(start_paused = true)]
async fn healthy_fails_the_task_when_the_dependency_turns_unhealthy() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "db",
        Behavior::running().with_health(&[(Duration::from_secs(40), Health::Unhealthy)]),
    );
    let td = task_definition(json!([
        container(
            "db",
            json!({"healthCheck": {"command": ["CMD-SHELL", "false"]}})
        ),
        container("app", depends("db", "HEALTHY"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert!(task
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.contains("UNHEALTHY")));
    assert_eq!(
        h.container("t1", "db").exit_code,
        Some(143),
        "db was stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dependency_on_a_container_that_is_not_in_the_task_fails_it() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("app", depends("ghost", "START"))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert!(h
        .task("t1")
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.contains("'ghost'")));
}

#[tokio::test(start_paused = true)]
async fn a_dependency_cycle_fails_the_task_before_anything_is_created() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("a", depends("b", "START")),
        container("b", depends("a", "START"))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(reason.contains("a -> b -> a"), "{reason}");
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn a_start_timeout_gives_up_on_dependencies_that_take_too_long() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "db",
        Behavior::running().with_health(&[(Duration::from_secs(300), Health::Healthy)]),
    );
    let mut app = container("app", depends("db", "HEALTHY"));
    app["startTimeout"] = json!(60);
    let td = task_definition(json!([
        container(
            "db",
            json!({"healthCheck": {"command": ["CMD-SHELL", "true"]}})
        ),
        app
    ]));
    h.assign(&[new_task(&td, "t1")]);
    let at = h.until("t1", TaskStatus::Stopped).await;
    assert!(
        at >= Duration::from_secs(60) && at < Duration::from_secs(120),
        "{at:?}"
    );
    assert!(h
        .task("t1")
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.contains("startTimeout")));
}
