//! Tasks that fail to start or lose an essential container: reasons, exit codes, stop codes
//! and the path through DEACTIVATING to STOPPED.

use super::*;
use crate::runtime::fake::Behavior;

#[tokio::test(start_paused = true)]
async fn a_pull_failure_stops_the_task_with_a_reason_naming_the_image() {
    let mut h = Harness::new().await;
    h.fake.fail_pull("nope:latest", "manifest unknown");
    let td = task_definition(json!([
        container("web", json!({"image": "nope:latest"})),
        container("sidecar", json!({"essential": false}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(h.statuses("t1"), path(&["PENDING"]));
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().expect("reason");
    assert!(reason.starts_with("CannotPullContainerError"), "{reason}");
    assert!(reason.contains("nope:latest"), "{reason}");
    let web = h.container("t1", "web");
    assert_eq!(web.last_status, Some(TaskStatus::Stopped));
    assert!(web
        .reason
        .expect("container reason")
        .contains("nope:latest"));
    assert!(task.pull_stopped_at.is_some());
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn a_create_failure_stops_the_task_as_failed_to_start() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::create_fails("invalid mount config"));
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(h.statuses("t1"), path(&["PENDING", "ACTIVATING"]));
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert_eq!(
        task.stopped_reason.as_deref(),
        Some("CannotCreateContainerError: invalid mount config")
    );
    assert_eq!(
        h.container("t1", "web").reason.as_deref(),
        Some("CannotCreateContainerError: invalid mount config")
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_failure_stops_the_containers_that_had_started() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("app", Behavior::start_fails("port is already allocated"));
    let td = task_definition(json!([
        container("db", json!({})),
        container(
            "app",
            json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(h.statuses("t1"), path(&["PENDING", "ACTIVATING"]));
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert_eq!(
        task.stopped_reason.as_deref(),
        Some("CannotStartContainerError: port is already allocated")
    );
    let db = h.container("t1", "db");
    assert_eq!(db.last_status, Some(TaskStatus::Stopped));
    assert_eq!(db.exit_code, Some(143), "db got SIGTERM");
    let db_id = h.runtime_id("t1", "db");
    assert_eq!(
        h.count(|c| matches!(c, Call::Stop { id, .. } if *id == db_id)),
        1
    );
    assert!(h.fake.containers().iter().all(|c| !c.running));
}

#[tokio::test(start_paused = true)]
async fn an_essential_container_exit_stops_the_task_with_its_exit_code() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::exits(Duration::from_secs(5), 3));
    let td = task_definition(json!([
        container("web", json!({})),
        container("sidecar", json!({"essential": false}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(
        h.statuses("t1"),
        path(&["PENDING", "ACTIVATING", "RUNNING"])
    );
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(
        task.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert!(task.execution_stopped_at.is_some());
    assert_eq!(h.container("t1", "web").exit_code, Some(3));
    let sidecar = h.container("t1", "sidecar");
    assert_eq!(sidecar.last_status, Some(TaskStatus::Stopped));
    assert_eq!(sidecar.exit_code, Some(143));
    // The exit is reported before the others are stopped.
    let exit_report = h
        .received
        .iter()
        .position(|r| {
            r.report
                .containers
                .iter()
                .flatten()
                .any(|c| c.container_name.as_deref() == Some("web") && c.exit_code == Some(3))
        })
        .expect("exit reported");
    let deactivating = h
        .received
        .iter()
        .position(|r| r.report.status.as_deref() == Some("DEACTIVATING"))
        .expect("deactivating");
    assert!(exit_report <= deactivating);
}

#[tokio::test(start_paused = true)]
async fn an_essential_container_that_exits_while_others_wait_stops_the_task_as_exited() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("db", Behavior::exits(Duration::from_secs(1), 2));
    let td = task_definition(json!([
        container("db", json!({"healthCheck": {"command": ["CMD", "true"]}})),
        container(
            "app",
            json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    // It ran and exited: EssentialContainerExited, as ECS says, though the task never ran.
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(h.container("t1", "db").exit_code, Some(2));
    assert_eq!(
        h.container("t1", "app").last_status,
        Some(TaskStatus::Stopped)
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_definition_the_runtime_cannot_use_fails_the_task() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({"stopTimeout": -5}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(reason.starts_with("CannotCreateContainerError"), "{reason}");
    assert!(reason.contains("stopTimeout"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_field_berth_cannot_honour_fails_the_task_naming_container_and_field() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("web", json!({})),
        container(
            "app",
            json!({"environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}]})
        )
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().expect("reason");
    assert_eq!(
        reason,
        "CannotCreateContainerError: container app: environmentFiles is not supported by Berth \
         yet (it reads environment files from Amazon S3)"
    );
    let app = h.container("t1", "app");
    assert_eq!(app.last_status, Some(TaskStatus::Stopped));
    assert_eq!(app.reason.as_deref(), Some(reason.as_str()));
    assert_eq!(h.statuses("t1"), path(&["PENDING"]));
    assert_eq!(h.count(|c| matches!(c, Call::Pull(_) | Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn secrets_without_a_server_link_fail_the_task_with_ecs_wording_before_any_pull() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container(
        "app",
        json!({"secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/db"}]})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth"),
        "{reason}"
    );
    assert_eq!(h.count(|c| matches!(c, Call::Pull(_) | Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn awslogs_options_docker_would_refuse_keep_the_container_from_starting() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container(
        "web",
        json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "colour": "red"}}})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().expect("reason");
    assert!(
        reason.contains(
            "CannotStartContainerError: failed to initialize logging driver: unknown log opt 'colour' for awslogs log driver"
        ),
        "{reason}"
    );
    assert_eq!(h.count(|c| matches!(c, Call::Start(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn an_awslogs_container_is_created_with_the_runtime_driver_the_agent_reads() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container(
        "web",
        json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let created = h.fake.specs();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].log_driver.as_deref(), Some("json-file"));
    assert_eq!(
        created[0].log_options.get("max-file").map(String::as_str),
        Some("4")
    );
    // This harness's agent has no server link, so the stream cannot be opened.
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(reason.contains("this agent ships no logs"), "{reason}");
}
