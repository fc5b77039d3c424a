//! `linuxParameters` devices, shared memory and swap, `systemControls` and
//! `dockerSecurityOptions`.

use super::*;
use crate::runtime::DeviceSpec;

#[test]
fn devices_default_to_the_host_path_and_all_permissions() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({"linuxParameters": {
        "devices": [
            {"hostPath": "/dev/null"},
            {"hostPath": "/dev/fuse", "containerPath": "/dev/f", "permissions": ["write", "read"]},
            {"hostPath": "/dev/zero", "permissions": ["mknod"]},
        ]
    }}))]}))
    .expect("spec");
    let device = |host: &str, inside: &str, permissions: &str| DeviceSpec {
        host_path: host.into(),
        container_path: inside.into(),
        permissions: permissions.into(),
    };
    assert_eq!(
        spec.devices,
        vec![
            device("/dev/null", "/dev/null", "rwm"),
            device("/dev/fuse", "/dev/f", "rw"),
            device("/dev/zero", "/dev/zero", "m"),
        ]
    );
}

#[test]
fn a_device_without_host_path_or_with_an_unknown_permission_is_refused() {
    let err = spec_of(
        json!({"containerDefinitions": [container(json!({"linuxParameters": {
            "devices": [{"hostPath": "/dev/null", "permissions": ["all"]}]
        }}))]}),
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "container app: linuxParameters.devices: permission 'all' of /dev/null is not read, \
         write or mknod"
    );
    let err = spec_of(
        json!({"containerDefinitions": [container(json!({"linuxParameters": {
            "devices": [{"hostPath": ""}]
        }}))]}),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("hostPath"), "{err}");
}

#[test]
fn shared_memory_size_is_in_mib_and_must_be_positive() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "linuxParameters": {"sharedMemorySize": 256}
    }))]}))
    .expect("spec");
    assert_eq!(spec.shm_size_mib, Some(256));
    let err = spec_of(json!({"containerDefinitions": [container(json!({
        "linuxParameters": {"sharedMemorySize": 0}
    }))]}))
    .expect_err("refused");
    assert!(err.to_string().contains("sharedMemorySize"), "{err}");
}

#[test]
fn max_swap_adds_to_the_memory_limit_with_swappiness_sixty_by_default() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "memory": 128, "linuxParameters": {"maxSwap": 512}
    }))]}))
    .expect("spec");
    assert_eq!(spec.memory_swap_mib, Some(640));
    assert_eq!(spec.memory_swappiness, Some(DEFAULT_SWAPPINESS));
    let no_swap = spec_of(json!({"containerDefinitions": [container(json!({
        "memory": 128, "linuxParameters": {"maxSwap": 0, "swappiness": 5}
    }))]}))
    .expect("spec");
    assert_eq!(no_swap.memory_swap_mib, Some(128));
    assert_eq!(no_swap.memory_swappiness, Some(5));
}

#[test]
fn the_memory_override_counts_for_the_swap_limit() {
    let td = task_definition(json!({"containerDefinitions": [container(json!({
        "memory": 128, "linuxParameters": {"maxSwap": 100}
    }))]}));
    let overrides: TaskOverride = serde_json::from_value(json!({
        "containerOverrides": [{"name": "app", "memory": 256}]
    }))
    .expect("overrides");
    let def = td.container_definitions.clone().unwrap_or_default()[0].clone();
    let spec = container_spec(&context(&td, Some(&overrides)), &def).expect("spec");
    assert_eq!(spec.memory_swap_mib, Some(356));
}

#[test]
fn swappiness_without_max_swap_is_ignored_as_in_ecs() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "linuxParameters": {"swappiness": 10}
    }))]}))
    .expect("spec");
    assert_eq!(spec.memory_swap_mib, None);
    assert_eq!(spec.memory_swappiness, None);
}

#[test]
fn max_swap_needs_a_hard_memory_limit_and_sane_values() {
    let err = spec_of(json!({"containerDefinitions": [{
        "name": "app", "image": "busybox", "memoryReservation": 64,
        "linuxParameters": {"maxSwap": 100}
    }]}))
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "container app: linuxParameters.maxSwap: needs a hard memory limit (memory) to add the \
         swap to"
    );
    let err = spec_of(json!({"containerDefinitions": [container(json!({
        "linuxParameters": {"maxSwap": 100, "swappiness": 101}
    }))]}))
    .expect_err("refused");
    assert!(err.to_string().contains("swappiness"), "{err}");
    let err = spec_of(json!({"containerDefinitions": [container(json!({
        "linuxParameters": {"maxSwap": -1}
    }))]}))
    .expect_err("refused");
    assert!(err.to_string().contains("maxSwap"), "{err}");
}

#[test]
fn system_controls_become_sysctls() {
    let spec = spec_of(
        json!({"containerDefinitions": [container(json!({"systemControls": [
            {"namespace": "net.core.somaxconn", "value": "1024"},
            {"namespace": "kernel.msgmax", "value": "65536"},
        ]}))]}),
    )
    .expect("spec");
    assert_eq!(
        spec.sysctls,
        BTreeMap::from([
            ("kernel.msgmax".to_string(), "65536".to_string()),
            ("net.core.somaxconn".to_string(), "1024".to_string()),
        ])
    );
    let err = spec_of(
        json!({"containerDefinitions": [container(json!({"systemControls": [
            {"namespace": "net.core.somaxconn"}
        ]}))]}),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("net.core.somaxconn has no value"),
        "{err}"
    );
    let err = spec_of(
        json!({"containerDefinitions": [container(json!({"systemControls": [
            {"value": "1"}
        ]}))]}),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("systemControls.namespace"),
        "{err}"
    );
}

#[test]
fn docker_security_options_pass_through() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default"]
    }))]}))
    .expect("spec");
    assert_eq!(
        spec.security_opt,
        vec![
            "no-new-privileges".to_string(),
            "apparmor:docker-default".to_string()
        ]
    );
}
