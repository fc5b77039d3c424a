//! Docker volume options, task-scoped volumes and how they are recognised later.

use super::*;

#[test]
fn docker_volume_driver_options_and_labels_reach_the_mount() {
    let spec = spec_of(json!({
        "volumes": [{"name": "cache", "dockerVolumeConfiguration": {
            "scope": "task", "driver": "local",
            "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
            "labels": {"team": "a"}
        }}],
        "containerDefinitions": [container(json!({"mountPoints": [
            {"sourceVolume": "cache", "containerPath": "/cache"}
        ]}))]
    }))
    .expect("spec");
    assert_eq!(
        spec.mounts,
        vec![MountSpec::Volume {
            name: "berth-web-3-cache-0123456789ab".into(),
            container_path: "/cache".into(),
            read_only: false,
            driver: Some("local".into()),
            driver_opts: BTreeMap::from([
                ("device".to_string(), "tmpfs".to_string()),
                ("type".to_string(), "tmpfs".to_string()),
            ]),
            labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
        }]
    );
}

#[test]
fn task_volume_names_list_task_scoped_volumes_but_not_shared_or_host_ones() {
    let td = task_definition(json!({
        "volumes": [
            {"name": "scratch"},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "default-scope", "dockerVolumeConfiguration": {"driver": "local"}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared"}},
            {"name": "logs", "host": {"sourcePath": "/var/log"}},
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}
        ],
        "containerDefinitions": [container(json!({}))]
    }));
    assert_eq!(
        task_volume_names(&context(&td, None)),
        vec![
            "berth-web-3-scratch-0123456789ab".to_string(),
            "berth-web-3-cache-0123456789ab".to_string(),
            "berth-web-3-default-scope-0123456789ab".to_string(),
        ]
    );
}

#[test]
fn a_task_volume_is_recognised_from_the_labels_of_a_container_that_mounts_it() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({}))]})).expect("spec");
    assert!(is_task_volume_of(
        "berth-web-3-scratch-0123456789ab",
        &spec.labels
    ));
    for other in [
        "shared",
        "berth-web-3--0123456789ab",
        "berth-web-4-scratch-0123456789ab",
        "berth-web-3-scratch-aaaaaaaaaaaa",
    ] {
        assert!(!is_task_volume_of(other, &spec.labels), "{other}");
    }
    assert!(!is_task_volume_of(
        "berth-web-3-scratch-0123456789ab",
        &BTreeMap::new()
    ));
}
