//! Unit tests of the container definition → `ContainerSpec` mapping.

use super::*;
use serde_json::json;

mod linux;
mod siblings;
mod unsupported;
mod volumes;

const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
const INSTANCE: &str = "fedcba9876543210fedcba9876543210";

fn task_definition(value: serde_json::Value) -> TaskDefinition {
    let mut base = json!({"family": "web", "revision": 3});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(base).expect("task definition parses")
}

fn context<'a>(td: &'a TaskDefinition, overrides: Option<&'a TaskOverride>) -> TaskContext<'a> {
    TaskContext {
        cluster: "default",
        container_instance: INSTANCE,
        task_arn: TASK_ARN,
        task_definition: td,
        overrides,
        agent_home: None,
        metadata: None,
    }
}

/// The spec of the first container of a task definition built from `value`.
fn spec_of(value: serde_json::Value) -> Result<ContainerSpec, SpecError> {
    let td = task_definition(value);
    let def = td
        .container_definitions
        .as_ref()
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or_default();
    container_spec(&context(&td, None), &def)
}

/// The specs of every container of a task definition built from `value`.
fn specs_of(value: serde_json::Value) -> Result<Vec<ContainerSpec>, SpecError> {
    let td = task_definition(value);
    task_container_specs(&context(&td, None))
}

fn container(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({"name": "app", "image": "busybox", "memory": 64});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    base
}

#[test]
fn a_minimal_container_gets_ecs_defaults_and_the_berth_name() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({}))]})).expect("spec");
    assert_eq!(spec.name, "berth-web-3-app-0123456789ab");
    assert_eq!(spec.image, "busybox");
    assert_eq!(spec.network_mode, "bridge");
    assert_eq!(spec.memory_mib, Some(64));
    assert_eq!(spec.memory_reservation_mib, None);
    assert_eq!(spec.cpu_shares, 0);
    assert_eq!(spec.stop_timeout, Some(Duration::from_secs(30)));
    assert!(!spec.privileged && !spec.readonly_rootfs && !spec.init);
    assert_eq!(spec.health_check, None);
    assert!(spec.ports.is_empty() && spec.mounts.is_empty() && spec.env.is_empty());
    assert_eq!(spec.command, None);
    assert_eq!(spec.log_driver, None);
}

#[test]
fn every_container_carries_berth_and_ecs_labels() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({}))]})).expect("spec");
    let expected: BTreeMap<String, String> = [
        ("com.berth.cluster", "default"),
        ("com.berth.container-instance", INSTANCE),
        ("com.berth.task-arn", TASK_ARN),
        ("com.berth.container-name", "app"),
        ("com.berth.task-definition", "web:3"),
        ("com.amazonaws.ecs.cluster", "default"),
        ("com.amazonaws.ecs.task-arn", TASK_ARN),
        ("com.amazonaws.ecs.container-name", "app"),
        ("com.amazonaws.ecs.task-definition-family", "web"),
        ("com.amazonaws.ecs.task-definition-version", "3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(spec.labels, expected);
}

#[test]
fn containers_carry_the_agent_home_when_the_agent_has_one() {
    let td = task_definition(json!({"containerDefinitions": [container(json!({
        "dockerLabels": {"com.berth.agent-home": "forged"}
    }))]}));
    let def = td
        .container_definitions
        .as_ref()
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or_default();
    let ctx = TaskContext {
        agent_home: Some("00112233aabbccdd"),
        ..context(&td, None)
    };
    let spec = container_spec(&ctx, &def).expect("spec");
    assert_eq!(
        spec.labels.get(LABEL_AGENT_HOME).map(String::as_str),
        Some("00112233aabbccdd")
    );
}

#[test]
fn docker_labels_are_added_but_cannot_hide_berth_labels() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "dockerLabels": {"team": "a", "com.berth.task-arn": "forged"}
    }))]}))
    .expect("spec");
    assert_eq!(spec.labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        spec.labels.get(LABEL_TASK_ARN).map(String::as_str),
        Some(TASK_ARN)
    );
}

#[test]
fn labels_read_back_the_task_and_container() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({}))]})).expect("spec");
    assert_eq!(
        task_container_of(&spec.labels),
        Some((TASK_ARN.to_string(), "app".to_string()))
    );
    assert_eq!(task_container_of(&BTreeMap::new()), None);
    let only_task = BTreeMap::from([(LABEL_TASK_ARN.to_string(), TASK_ARN.to_string())]);
    assert_eq!(task_container_of(&only_task), None);
}

#[test]
fn instance_labels_select_the_agents_own_containers() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({}))]})).expect("spec");
    let selector = instance_labels("default", INSTANCE);
    assert_eq!(selector.len(), 2);
    assert!(selector.iter().all(|(k, v)| spec.labels.get(k) == Some(v)));
}

#[test]
fn names_use_family_revision_container_and_short_task_id() {
    assert_eq!(container_name("f", 1, "c", "abc"), "berth-f-1-c-abc");
    assert_eq!(
        container_name("f", 12, "c", "0123456789abcdef"),
        "berth-f-12-c-0123456789ab"
    );
    assert_eq!(
        task_volume_name("f", 2, "data", "0123456789abcdef"),
        "berth-f-2-data-0123456789ab"
    );
    assert_eq!(task_id_of(TASK_ARN), "0123456789abcdef0123456789abcdef");
    assert_eq!(task_id_of("bare-id"), "bare-id");
}

#[test]
fn family_and_revision_come_from_the_arn_when_the_members_are_absent() {
    let td: TaskDefinition = serde_json::from_value(json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/api:7",
        "containerDefinitions": [container(json!({}))]
    }))
    .expect("parses");
    let def = td
        .container_definitions
        .as_ref()
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or_default();
    let spec = container_spec(&context(&td, None), &def).expect("spec");
    assert_eq!(spec.name, "berth-api-7-app-0123456789ab");
    let empty = TaskDefinition::default();
    assert!(matches!(
        container_spec(&context(&empty, None), &def),
        Err(SpecError::NoFamilyRevision(_))
    ));
}

#[test]
fn a_container_without_name_or_image_is_refused() {
    let err =
        spec_of(json!({"containerDefinitions": [{"image": "busybox"}]})).expect_err("refused");
    assert!(matches!(err, SpecError::Missing { field: "name", .. }));
    let err = spec_of(json!({"containerDefinitions": [{"name": "app"}]})).expect_err("refused");
    assert_eq!(err.to_string(), "container app: image is required");
}

#[test]
fn definition_fields_map_one_to_one() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "cpu": 256, "memoryReservation": 32,
        "entryPoint": ["/bin/sh", "-c"], "command": ["echo hi"],
        "workingDirectory": "/tmp", "user": "nobody", "hostname": "box",
        "readonlyRootFilesystem": true, "privileged": true,
        "dnsServers": ["1.1.1.1"], "dnsSearchDomains": ["example.com"],
        "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.2"}],
        "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
        "interactive": true, "pseudoTerminal": true, "disableNetworking": false,
        "stopTimeout": 7,
        "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
        "linuxParameters": {
            "initProcessEnabled": true,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
            "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["noexec"]}]
        }
    }))]}))
    .expect("spec");
    assert_eq!(spec.cpu_shares, 256);
    assert_eq!(spec.memory_reservation_mib, Some(32));
    assert_eq!(
        spec.entrypoint,
        Some(vec!["/bin/sh".to_string(), "-c".to_string()])
    );
    assert_eq!(spec.command, Some(vec!["echo hi".to_string()]));
    assert_eq!(spec.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(spec.user.as_deref(), Some("nobody"));
    assert_eq!(spec.hostname.as_deref(), Some("box"));
    assert!(spec.readonly_rootfs && spec.privileged && spec.init);
    assert_eq!(spec.dns_servers, vec!["1.1.1.1"]);
    assert_eq!(spec.dns_search, vec!["example.com"]);
    assert_eq!(spec.extra_hosts, vec!["db:10.0.0.2"]);
    assert_eq!(
        spec.ulimits,
        vec![UlimitSpec {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048
        }]
    );
    assert!(spec.interactive && spec.tty && !spec.disable_networking);
    assert_eq!(spec.stop_timeout, Some(Duration::from_secs(7)));
    assert_eq!(spec.log_driver.as_deref(), Some("json-file"));
    assert_eq!(
        spec.log_options.get("max-size").map(String::as_str),
        Some("1m")
    );
    assert_eq!(spec.cap_add, vec!["NET_ADMIN"]);
    assert_eq!(spec.cap_drop, vec!["MKNOD"]);
    assert_eq!(
        spec.mounts,
        vec![MountSpec::Tmpfs {
            container_path: "/run".into(),
            size_mib: 16,
            options: vec!["noexec".into()]
        }]
    );
}

#[test]
fn other_log_drivers_pass_through_with_their_options() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "logConfiguration": {"logDriver": "syslog", "options": {"tag": "web"}}
    }))]}))
    .expect("spec");
    assert_eq!(spec.log_driver.as_deref(), Some("syslog"));
    assert_eq!(spec.log_options.get("tag").map(String::as_str), Some("web"));
}

#[test]
fn overrides_replace_command_resources_and_win_on_environment() {
    let td = task_definition(json!({"containerDefinitions": [
        container(json!({"command": ["a"], "cpu": 10, "memoryReservation": 16,
                         "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]})),
        {"name": "other", "image": "busybox", "command": ["untouched"]}
    ]}));
    let overrides: TaskOverride = serde_json::from_value(json!({"containerOverrides": [{
        "name": "app", "command": ["b", "c"], "cpu": 20, "memory": 128, "memoryReservation": 96,
        "environment": [{"name": "B", "value": "override"}, {"name": "C", "value": "3"}]
    }]}))
    .expect("overrides parse");
    let specs = task_container_specs(&context(&td, Some(&overrides))).expect("specs");
    let app = &specs[0];
    assert_eq!(app.command, Some(vec!["b".to_string(), "c".to_string()]));
    assert_eq!(app.cpu_shares, 20);
    assert_eq!(app.memory_mib, Some(128));
    assert_eq!(app.memory_reservation_mib, Some(96));
    let env: Vec<(&str, &str)> = app
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, vec![("A", "1"), ("B", "override"), ("C", "3")]);
    assert_eq!(specs[1].command, Some(vec!["untouched".to_string()]));
    assert_eq!(specs[1].name, "berth-web-3-other-0123456789ab");
}

#[test]
fn an_override_without_command_keeps_the_definitions_command() {
    let td =
        task_definition(json!({"containerDefinitions": [container(json!({"command": ["a"]}))]}));
    let overrides: TaskOverride =
        serde_json::from_value(json!({"containerOverrides": [{"name": "app", "memory": 32}]}))
            .expect("parses");
    let specs = task_container_specs(&context(&td, Some(&overrides))).expect("specs");
    assert_eq!(specs[0].command, Some(vec!["a".to_string()]));
    assert_eq!(specs[0].memory_mib, Some(32));
}

#[test]
fn bridge_ports_without_host_port_or_zero_are_ephemeral() {
    let spec = spec_of(
        json!({"containerDefinitions": [container(json!({"portMappings": [
            {"containerPort": 80},
            {"containerPort": 81, "hostPort": 0},
            {"containerPort": 82, "hostPort": 8082, "protocol": "udp"}
        ]}))]}),
    )
    .expect("spec");
    assert_eq!(
        spec.ports,
        vec![
            PortSpec {
                container_port: 80,
                host_port: None,
                protocol: "tcp".into()
            },
            PortSpec {
                container_port: 81,
                host_port: None,
                protocol: "tcp".into()
            },
            PortSpec {
                container_port: 82,
                host_port: Some(8082),
                protocol: "udp".into()
            },
        ]
    );
}

#[test]
fn host_mode_binds_each_port_to_itself_and_drops_the_hostname() {
    let spec = spec_of(
        json!({"networkMode": "host", "containerDefinitions": [container(json!({
            "hostname": "ignored", "portMappings": [{"containerPort": 8080}]
        }))]}),
    )
    .expect("spec");
    assert_eq!(spec.network_mode, "host");
    assert_eq!(
        spec.ports,
        vec![PortSpec {
            container_port: 8080,
            host_port: Some(8080),
            protocol: "tcp".into()
        }]
    );
    assert_eq!(spec.hostname, None);
}

#[test]
fn network_mode_none_has_no_ports_and_awsvpc_joins_its_task_namespace_without_ports() {
    let mappings = json!([{"containerPort": 80, "hostPort": 80}]);
    let none = spec_of(json!({"networkMode": "none",
        "containerDefinitions": [container(json!({"portMappings": mappings}))]}))
    .expect("spec");
    assert_eq!(none.network_mode, "none");
    assert!(none.ports.is_empty());
    let awsvpc = spec_of(json!({"networkMode": "awsvpc",
        "containerDefinitions": [container(json!({"portMappings": mappings}))]}))
    .expect("spec");
    // Until its task's namespace exists it has no network; then it joins the namespace.
    assert_eq!(awsvpc.network_mode, "none");
    assert!(awsvpc.ports.is_empty());
    let mut joined = awsvpc.clone();
    joined.dns_servers = vec!["10.0.0.2".into()];
    crate::spec::join_namespace(&mut joined, "abc123");
    assert_eq!(joined.network_mode, "container:abc123");
    assert!(joined.ports.is_empty() && joined.dns_servers.is_empty() && joined.hostname.is_none());
}

#[test]
fn a_container_port_range_expands_to_ephemeral_ports() {
    let spec = spec_of(
        json!({"containerDefinitions": [container(json!({"portMappings": [
            {"containerPortRange": "9000-9002", "protocol": "udp"}
        ]}))]}),
    )
    .expect("spec");
    let ports: Vec<(u16, Option<u16>)> = spec
        .ports
        .iter()
        .map(|p| (p.container_port, p.host_port))
        .collect();
    assert_eq!(ports, vec![(9000, None), (9001, None), (9002, None)]);
    assert!(spec.ports.iter().all(|p| p.protocol == "udp"));
}

#[test]
fn bad_ports_are_refused_with_the_field_named() {
    for mapping in [
        json!({"containerPort": 0}),
        json!({"containerPort": 70000}),
        json!({"containerPort": 80, "hostPort": -1}),
        json!({"containerPortRange": "9-1"}),
        json!({"protocol": "tcp"}),
    ] {
        let err = spec_of(
            json!({"containerDefinitions": [container(json!({"portMappings": [mapping]}))]}),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("portMappings"), "{err}");
    }
}

#[test]
fn mount_points_resolve_host_paths_and_docker_volumes() {
    let spec = spec_of(json!({
        "volumes": [
            {"name": "logs", "host": {"sourcePath": "/var/log/app"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}},
            {"name": "scratch"},
            {"name": "empty-host", "host": {}}
        ],
        "containerDefinitions": [container(json!({"mountPoints": [
            {"sourceVolume": "logs", "containerPath": "/logs", "readOnly": true},
            {"sourceVolume": "cache", "containerPath": "/cache"},
            {"sourceVolume": "shared", "containerPath": "/shared"},
            {"sourceVolume": "scratch", "containerPath": "/scratch"},
            {"sourceVolume": "empty-host", "containerPath": "/e"}
        ]}))]
    }))
    .expect("spec");
    assert_eq!(
        spec.mounts,
        vec![
            MountSpec::Bind {
                host_path: "/var/log/app".into(),
                container_path: "/logs".into(),
                read_only: true
            },
            MountSpec::Volume {
                name: "berth-web-3-cache-0123456789ab".into(),
                container_path: "/cache".into(),
                read_only: false,
                driver: Some("local".into()),
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new()
            },
            MountSpec::Volume {
                name: "shared".into(),
                container_path: "/shared".into(),
                read_only: false,
                driver: None,
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new()
            },
            MountSpec::Volume {
                name: "berth-web-3-scratch-0123456789ab".into(),
                container_path: "/scratch".into(),
                read_only: false,
                driver: None,
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new()
            },
            MountSpec::Volume {
                name: "berth-web-3-empty-host-0123456789ab".into(),
                container_path: "/e".into(),
                read_only: false,
                driver: None,
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new()
            },
        ]
    );
}

#[test]
fn a_mount_of_an_undeclared_or_unsupported_volume_is_refused() {
    let err = spec_of(
        json!({"containerDefinitions": [container(json!({"mountPoints": [
            {"sourceVolume": "nope", "containerPath": "/x"}
        ]}))]}),
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "container app: mount point names unknown volume nope"
    );
    let err = spec_of(json!({
        "volumes": [{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
        "containerDefinitions": [container(json!({"mountPoints": [
            {"sourceVolume": "efs", "containerPath": "/x"}
        ]}))]
    }))
    .expect_err("refused");
    assert!(matches!(
        err,
        SpecError::UnsupportedVolume { kind: "EFS", .. }
    ));
    let err = spec_of(json!({"volumes": [{"name": "v"}],
        "containerDefinitions": [container(json!({"mountPoints": [{"sourceVolume": "v"}]}))]}))
    .expect_err("refused");
    assert!(matches!(
        err,
        SpecError::Missing {
            field: "mountPoints.containerPath",
            ..
        }
    ));
}

#[test]
fn health_checks_get_ecs_defaults_for_absent_times() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "healthCheck": {"command": ["CMD-SHELL", "true"]}
    }))]}))
    .expect("spec");
    assert_eq!(
        spec.health_check,
        Some(HealthCheckSpec {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        })
    );
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "healthCheck": {"command": ["CMD", "/bin/true"], "interval": 5, "timeout": 2,
                        "retries": 1, "startPeriod": 10}
    }))]}))
    .expect("spec");
    let check = spec.health_check.expect("a health check");
    assert_eq!(check.interval, Duration::from_secs(5));
    assert_eq!(check.timeout, Duration::from_secs(2));
    assert_eq!(check.retries, 1);
    assert_eq!(check.start_period, Duration::from_secs(10));
}

#[test]
fn a_health_check_must_say_cmd_or_cmd_shell_and_none_disables_it() {
    let err = spec_of(json!({"containerDefinitions": [container(json!({
        "healthCheck": {"command": ["curl", "localhost"]}
    }))]}))
    .expect_err("refused");
    assert!(err.to_string().contains("healthCheck"), "{err}");
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "healthCheck": {"command": ["NONE"]}
    }))]}))
    .expect("spec");
    assert_eq!(spec.health_check, None);
}

#[test]
fn negative_resources_are_refused_not_wrapped() {
    for extra in [
        json!({"cpu": -1}),
        json!({"memory": -5}),
        json!({"memoryReservation": -5}),
        json!({"stopTimeout": -1}),
    ] {
        assert!(matches!(
            spec_of(json!({"containerDefinitions": [container(extra)]})),
            Err(SpecError::Invalid { .. })
        ));
    }
}

#[test]
fn containers_are_told_their_metadata_uris_unless_they_set_them() {
    let td = task_definition(json!({"containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 32},
        {"name": "own", "image": "busybox", "memory": 32,
         "environment": [{"name": "ECS_CONTAINER_METADATA_URI_V4", "value": "mine"}]}
    ]}));
    let endpoint =
        crate::metadata::MetadataEndpoint::new("172.17.0.1:51679".parse().expect("addr"), [7; 32]);
    let ctx = TaskContext {
        metadata: Some(&endpoint),
        ..context(&td, None)
    };
    let specs = task_container_specs(&ctx).expect("specs");
    let env = |i: usize, name: &str| {
        specs[i]
            .env
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let token = endpoint.token(TASK_ARN, "web");
    assert_eq!(
        env(0, "ECS_CONTAINER_METADATA_URI_V4"),
        [format!("http://172.17.0.1:51679/v4/{token}")]
    );
    assert_eq!(
        env(0, "ECS_CONTAINER_METADATA_URI"),
        [format!("http://172.17.0.1:51679/v3/{token}")]
    );
    assert_eq!(env(1, "ECS_CONTAINER_METADATA_URI_V4"), ["mine"]);
    assert_ne!(endpoint.token(TASK_ARN, "own"), token);
    // Without an endpoint, nothing is added.
    let plain = task_container_specs(&context(&td, None)).expect("specs");
    assert!(plain[0]
        .env
        .iter()
        .all(|(n, _)| !n.starts_with("ECS_CONTAINER_METADATA")));
}

#[test]
fn a_task_level_cpu_is_shared_out_as_hard_limits() {
    let td = task_definition(json!({"cpu": "512", "containerDefinitions": [
        container(json!({"cpu": 256})),
        {"name": "sidecar", "image": "busybox"}
    ]}));
    let specs = task_container_specs(&context(&td, None)).expect("specs");
    // 512 units = half a CPU, in proportion 256 : 2; the sidecar's part is raised to Docker's
    // least, 0.01 CPU.
    assert_eq!(specs[0].nano_cpus, Some(496_124_031));
    assert_eq!(specs[1].nano_cpus, Some(10_000_000));

    // No task-level cpu: no limit.
    let free = task_definition(json!({"containerDefinitions": [container(json!({"cpu": 256}))]}));
    assert_eq!(
        task_container_specs(&context(&free, None)).expect("specs")[0].nano_cpus,
        None
    );

    // A limit never exceeds the host's CPUs.
    assert_eq!(crate::spec::cpu_limit(8192, 0, 2, 2), 2_000_000_000);
    // A task override of cpu wins.
    let overrides: TaskOverride =
        serde_json::from_value(json!({"cpu": "1024"})).expect("overrides parse");
    let single =
        task_definition(json!({"cpu": "256", "containerDefinitions": [container(json!({}))]}));
    let specs = task_container_specs(&context(&single, Some(&overrides))).expect("specs");
    assert_eq!(specs[0].nano_cpus, Some(1_000_000_000.min(host_nanos())));
}

fn host_nanos() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64) * 1_000_000_000
}
