//! Task-scoped Docker volumes go with the task's containers after the cleanup delay; shared
//! volumes stay.

use super::siblings::task_definition_with;
use super::*;

fn with_volumes() -> TaskDefinition {
    task_definition_with(
        json!({"volumes": [
            {"name": "scratch"},
            {"name": "cache", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local", "driverOpts": {"type": "tmpfs"},
                "labels": {"team": "a"}}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}}
        ]}),
        json!([
            container(
                "web",
                json!({"mountPoints": [
                    {"sourceVolume": "scratch", "containerPath": "/scratch"},
                    {"sourceVolume": "cache", "containerPath": "/cache"},
                    {"sourceVolume": "shared", "containerPath": "/shared"}
                ]})
            ),
            container(
                "reader",
                json!({"volumesFrom": [{"sourceContainer": "web"}]})
            )
        ]),
    )
}

fn volume_names(h: &Harness) -> Vec<String> {
    h.fake.volumes().into_keys().collect()
}

const TASK_VOLUMES: [&str; 2] = ["berth-web-1-cache-t1", "berth-web-1-scratch-t1"];

#[tokio::test(start_paused = true)]
async fn task_volumes_are_removed_with_the_containers_and_shared_ones_stay() {
    let mut h = Harness::new().await;
    h.assign(&[new_task(&with_volumes(), "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let volumes = h.fake.volumes();
    assert_eq!(
        volume_names(&h),
        vec![TASK_VOLUMES[0], TASK_VOLUMES[1], "shared"]
    );
    assert_eq!(volumes[TASK_VOLUMES[0]].driver_opts["type"], "tmpfs");
    assert_eq!(volumes[TASK_VOLUMES[0]].labels["team"], "a");
    h.stop_task("t1", &["t1"]);
    h.until("t1", TaskStatus::Stopped).await;
    tokio::time::sleep(Duration::from_secs(599)).await;
    assert_eq!(volume_names(&h).len(), 3, "kept during the cleanup delay");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.fake.containers().is_empty());
    assert_eq!(volume_names(&h), vec!["shared"]);
    let last_container_removal = h
        .fake
        .calls()
        .iter()
        .rposition(|c| matches!(c, Call::Remove(_)))
        .expect("containers removed");
    for name in TASK_VOLUMES {
        assert!(h.position(|c| *c == Call::RemoveVolume(name.into())) > last_container_removal);
    }
    assert_eq!(h.count(|c| matches!(c, Call::RemoveVolume(_))), 2);
}

#[tokio::test(start_paused = true)]
async fn task_volumes_of_a_task_no_longer_assigned_are_removed_with_its_containers() {
    let mut h = Harness::new().await;
    h.assign(&[new_task(&with_volumes(), "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let mut h = h.restart().await;
    h.assign(&[]);
    tokio::time::sleep(Duration::from_secs(601)).await;
    assert!(h.fake.containers().is_empty());
    assert_eq!(volume_names(&h), vec!["shared"]);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_failed_before_creating_anything_removes_no_volume() {
    let mut h = Harness::new().await;
    h.fake.fail_pull("nope:latest", "manifest unknown");
    let mut td = with_volumes();
    if let Some(defs) = td.container_definitions.as_mut() {
        defs[0].image = Some("nope:latest".into());
    }
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.count(|c| matches!(c, Call::RemoveVolume(_))), 0);
}
