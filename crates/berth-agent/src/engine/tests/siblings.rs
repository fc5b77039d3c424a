//! Containers that refer to each other: volumesFrom sources and link targets are created first,
//! link targets and the holder of shared namespaces start first, and a cycle of such needs
//! fails the task.

use super::*;

/// A task definition of family `web` revision 1 with these task members (pidMode, volumes,
/// ...) besides its container definitions.
pub(super) fn task_definition_with(members: Value, containers: Value) -> TaskDefinition {
    let mut value = json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "family": "web",
        "revision": 1,
        "containerDefinitions": containers,
    });
    if let (Some(value), Some(members)) = (value.as_object_mut(), members.as_object()) {
        for (k, v) in members {
            value.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(value).expect("task definition")
}

fn created(h: &Harness, container: &str) -> usize {
    let name = format!("berth-web-1-{container}-t1");
    h.position(|c| *c == Call::Create(name.clone()))
}

fn started(h: &Harness, id: &str, container: &str) -> usize {
    let runtime_id = h.runtime_id(id, container);
    h.position(|c| *c == Call::Start(runtime_id.clone()))
}

#[tokio::test(start_paused = true)]
async fn a_volumes_from_source_listed_later_is_created_first() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container(
            "app",
            json!({"volumesFrom": [{"sourceContainer": "data", "readOnly": true}]})
        ),
        container("data", json!({"essential": false}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert!(created(&h, "data") < created(&h, "app"));
    let app = h
        .fake
        .specs()
        .into_iter()
        .find(|s| s.name == "berth-web-1-app-t1")
        .expect("app spec");
    assert_eq!(app.volumes_from, vec!["berth-web-1-data-t1:ro".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn a_link_target_is_created_and_started_before_the_container_linking_to_it() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("app", json!({"links": ["db:database"]})),
        container("db", json!({}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert!(created(&h, "db") < created(&h, "app"));
    assert!(started(&h, "t1", "db") < started(&h, "t1", "app"));
    // And on the way down the linking container stops first.
    h.stop_task("t1", &["t1"]);
    h.until("t1", TaskStatus::Stopped).await;
    let app = h.runtime_id("t1", "app");
    let db = h.runtime_id("t1", "db");
    assert!(
        h.position(|c| matches!(c, Call::Stop { id, .. } if *id == app))
            < h.position(|c| matches!(c, Call::Stop { id, .. } if *id == db))
    );
}

#[tokio::test(start_paused = true)]
async fn task_pid_and_ipc_modes_start_the_namespace_holder_first() {
    let mut h = Harness::new().await;
    let td = task_definition_with(
        json!({"pidMode": "task", "ipcMode": "task"}),
        json!([
            container(
                "app",
                json!({"dependsOn": [{"containerName": "main", "condition": "START"}]})
            ),
            container("side", json!({"essential": false})),
            container("main", json!({}))
        ]),
    );
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert!(started(&h, "t1", "main") < started(&h, "t1", "side"));
    assert!(started(&h, "t1", "main") < started(&h, "t1", "app"));
    let specs = h.fake.specs();
    let side = specs
        .iter()
        .find(|s| s.name == "berth-web-1-side-t1")
        .expect("side");
    assert_eq!(
        side.pid_mode.as_deref(),
        Some("container:berth-web-1-main-t1")
    );
    assert_eq!(
        side.ipc_mode.as_deref(),
        Some("container:berth-web-1-main-t1")
    );
}

#[tokio::test(start_paused = true)]
async fn containers_that_need_each_other_created_first_fail_the_task() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([
        container("a", json!({"volumesFrom": [{"sourceContainer": "b"}]})),
        container("b", json!({"links": ["a"]}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().expect("reason");
    assert!(reason.starts_with("CannotCreateContainerError"), "{reason}");
    assert!(reason.contains("a -> b -> a"), "{reason}");
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn a_link_target_that_fails_to_start_fails_the_task_before_the_linking_container_starts() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "db",
        crate::runtime::fake::Behavior::start_fails("no such device"),
    );
    let td = task_definition(json!([
        container("app", json!({"links": ["db"]})),
        container("db", json!({}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(
        h.task("t1").stopped_reason.as_deref(),
        Some("CannotStartContainerError: no such device")
    );
    assert!(!h.fake.containers().iter().any(|c| c.started));
}
