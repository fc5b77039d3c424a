//! The validation of a whole RegisterTaskDefinition input: family, tags, task-level
//! members, volumes, cross-container rules and the launch types it requires.

use super::container::validate_container;
use super::launch::incompatibility;
use super::{
    check_enum, check_range, client, parse_task_cpu, parse_task_memory, Result,
    TaskDefinitionError, COMPATIBILITIES, MAX_CONTAINERS, MAX_DEFINITION_BYTES, NETWORK_MODES,
};
use crate::model::task_definition::{
    ContainerDefinition, RegisterTaskDefinitionRequest, TaskDefinition, Volume,
};
use crate::model::validate_tags;
use crate::names::{invalid_name_message, is_valid_name};
use std::collections::{HashMap, HashSet};

const OS_FAMILIES: &[&str] = &[
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
    "LINUX",
];

/// What the checks of one container need to know about the rest of the task.
pub(super) struct TaskScope<'a> {
    pub network_mode: &'a str,
    pub containers: HashMap<&'a str, &'a ContainerDefinition>,
    pub volumes: HashSet<&'a str>,
    pub accelerators: HashSet<&'a str>,
}

/// Checks a RegisterTaskDefinition input against ECS's rules, naming what to fix.
pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<()> {
    if !is_valid_name(&req.family) {
        return Err(client(invalid_name_message("Family", &req.family)));
    }
    validate_tags(req.tags.as_deref().unwrap_or_default())
        .map_err(TaskDefinitionError::InvalidParameter)?;
    let network_mode = req.network_mode.as_deref().unwrap_or("bridge");
    check_enum("networkMode", network_mode, NETWORK_MODES)?;
    if let Some(mode) = &req.pid_mode {
        check_enum("pidMode", mode, &["host", "task"])?;
    }
    if let Some(mode) = &req.ipc_mode {
        check_enum("ipcMode", mode, &["host", "task", "none"])?;
    }
    if let Some(mode) = req
        .trusted_execution_configuration
        .as_ref()
        .and_then(|t| t.isolation_mode.as_deref())
    {
        check_enum(
            "trustedExecutionConfiguration.isolationMode",
            mode,
            &["SHARED", "ISOLATED_SANDBOX", "CONFIDENTIAL_SANDBOX"],
        )?;
    }
    for compatibility in req.requires_compatibilities.iter().flatten() {
        check_enum("requiresCompatibilities", compatibility, COMPATIBILITIES)?;
    }
    if let Some(platform) = &req.runtime_platform {
        if let Some(arch) = &platform.cpu_architecture {
            check_enum(
                "runtimePlatform.cpuArchitecture",
                arch,
                &["X86_64", "ARM64"],
            )?;
        }
        if let Some(os) = &platform.operating_system_family {
            check_enum("runtimePlatform.operatingSystemFamily", os, OS_FAMILIES)?;
        }
    }
    let task_cpu = req.cpu.as_deref().map(parse_task_cpu).transpose()?;
    let task_memory = req.memory.as_deref().map(parse_task_memory).transpose()?;
    if let Some(storage) = &req.ephemeral_storage {
        check_range("ephemeralStorage.sizeInGiB", storage.size_in_gib, 21, 200)?;
    }

    let containers = &req.container_definitions;
    if containers.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(client(format!(
            "Too many containers: a task definition can have at most {MAX_CONTAINERS}, this one has {}.",
            containers.len()
        )));
    }
    let mut scope = TaskScope {
        network_mode,
        containers: HashMap::new(),
        volumes: HashSet::new(),
        accelerators: HashSet::new(),
    };
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(client("Container.name should not be null or empty."));
        }
        if !is_valid_name(name) {
            return Err(client(invalid_name_message("Container name", name)));
        }
        if scope.containers.insert(name, c).is_some() {
            return Err(client(format!(
                "Container name '{name}' is used more than once: container names must be unique within a task definition."
            )));
        }
    }
    for accelerator in req.inference_accelerators.iter().flatten() {
        if accelerator.device_name.is_empty() || accelerator.device_type.is_empty() {
            return Err(client(
                "Each inference accelerator needs a deviceName and a deviceType.",
            ));
        }
        if !scope.accelerators.insert(&accelerator.device_name) {
            return Err(client(format!(
                "Inference accelerator '{}' is declared more than once.",
                accelerator.device_name
            )));
        }
    }
    for volume in req.volumes.iter().flatten() {
        let name = validate_volume(volume)?;
        if !scope.volumes.insert(name) {
            return Err(client(format!(
                "Volume name '{name}' is used more than once: volume names must be unique within a task definition."
            )));
        }
    }
    for c in containers {
        validate_container(c, &scope)?;
    }
    validate_task_wide(req, &scope)?;

    let memory_needed_per_container = task_memory.is_none()
        && req
            .requires_compatibilities
            .as_deref()
            .is_none_or(|list| list.is_empty() || list.iter().any(|c| c != "FARGATE"));
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        if memory_needed_per_container && c.memory.is_none() && c.memory_reservation.is_none() {
            return Err(client(format!(
                "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
            )));
        }
        if let Some(task_memory) = task_memory {
            if c.memory.is_some_and(|m| m as u32 > task_memory) {
                return Err(client(format!(
                    "Invalid 'memory' setting for container '{name}': it is greater than the task memory of {task_memory} MiB."
                )));
            }
        }
    }
    if let Some(task_memory) = task_memory {
        let reserved: i64 = containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0) as i64)
            .sum();
        if reserved > task_memory as i64 {
            return Err(client(format!(
                "The containers reserve {reserved} MiB of memory in total, more than the task memory of {task_memory} MiB."
            )));
        }
    }
    if let Some(task_cpu) = task_cpu {
        let total: i64 = containers.iter().map(|c| c.cpu.unwrap_or(0) as i64).sum();
        if total > task_cpu as i64 {
            return Err(client(format!(
                "The containers reserve {total} CPU units in total, more than the task cpu of {task_cpu}."
            )));
        }
    }

    let draft = TaskDefinition {
        container_definitions: Some(containers.clone()),
        network_mode: req.network_mode.clone(),
        volumes: req.volumes.clone(),
        placement_constraints: req.placement_constraints.clone(),
        cpu: task_cpu.map(|n| n.to_string()),
        memory: task_memory.map(|n| n.to_string()),
        pid_mode: req.pid_mode.clone(),
        ipc_mode: req.ipc_mode.clone(),
        proxy_configuration: req.proxy_configuration.clone(),
        inference_accelerators: req.inference_accelerators.clone(),
        ephemeral_storage: req.ephemeral_storage.clone(),
        ..TaskDefinition::default()
    };
    for launch_type in req.requires_compatibilities.iter().flatten() {
        if let Some(reason) = incompatibility(&draft, launch_type) {
            return Err(client(reason));
        }
    }
    let size = serde_json::to_vec(req).map_or(0, |json| json.len());
    if size > MAX_DEFINITION_BYTES {
        return Err(client(format!(
            "The task definition is {size} bytes long; the maximum is {MAX_DEFINITION_BYTES} bytes."
        )));
    }
    Ok(())
}

/// Checks one volume; returns its name.
fn validate_volume(volume: &Volume) -> Result<&str> {
    let name = volume.name.as_deref().unwrap_or("");
    if !is_valid_name(name) {
        return Err(client(invalid_name_message("Volume name", name)));
    }
    let configured = [
        volume.host.is_some(),
        volume.docker_volume_configuration.is_some(),
        volume.efs_volume_configuration.is_some(),
        volume.s3files_volume_configuration.is_some(),
        volume
            .fsx_windows_file_server_volume_configuration
            .is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if configured > 1 {
        return Err(client(format!(
            "Volume '{name}' sets more than one of host, dockerVolumeConfiguration, efsVolumeConfiguration, s3filesVolumeConfiguration and fsxWindowsFileServerVolumeConfiguration: keep one."
        )));
    }
    if volume.configured_at_launch == Some(true) && configured > 0 {
        return Err(client(format!(
            "Volume '{name}' is configuredAtLaunch: leave its other configuration out."
        )));
    }
    if let Some(docker) = &volume.docker_volume_configuration {
        if let Some(scope) = &docker.scope {
            check_enum(
                "dockerVolumeConfiguration.scope",
                scope,
                &["task", "shared"],
            )?;
        }
        if docker.autoprovision == Some(true) && docker.scope.as_deref() != Some("shared") {
            return Err(client(format!(
                "Volume '{name}': autoprovision can only be set when the scope is 'shared'."
            )));
        }
    }
    if let Some(efs) = &volume.efs_volume_configuration {
        if efs.file_system_id.is_empty() {
            return Err(client(format!(
                "Volume '{name}' needs an EFS fileSystemId."
            )));
        }
        if let Some(mode) = &efs.transit_encryption {
            check_enum(
                "efsVolumeConfiguration.transitEncryption",
                mode,
                &["ENABLED", "DISABLED"],
            )?;
        }
        if let Some(port) = efs.transit_encryption_port {
            check_range(
                "efsVolumeConfiguration.transitEncryptionPort",
                port,
                0,
                65535,
            )?;
        }
        let encrypted = efs.transit_encryption.as_deref() == Some("ENABLED");
        if let Some(auth) = &efs.authorization_config {
            if let Some(iam) = &auth.iam {
                check_enum(
                    "efsVolumeConfiguration.authorizationConfig.iam",
                    iam,
                    &["ENABLED", "DISABLED"],
                )?;
            }
            let needs_encryption =
                auth.iam.as_deref() == Some("ENABLED") || auth.access_point_id.is_some();
            if needs_encryption && !encrypted {
                return Err(client(format!(
                    "Volume '{name}': IAM authorization and access points need transitEncryption ENABLED."
                )));
            }
            if auth.access_point_id.is_some()
                && efs.root_directory.as_deref().is_some_and(|d| d != "/")
            {
                return Err(client(format!(
                    "Volume '{name}': with an access point, leave rootDirectory out or set it to '/'."
                )));
            }
        }
    }
    Ok(name)
}

/// Checks the rules that span containers: an essential container, acyclic dependencies,
/// unique host ports and port names, one FireLens router, and the task-level members.
fn validate_task_wide(req: &RegisterTaskDefinitionRequest, scope: &TaskScope) -> Result<()> {
    let containers = &req.container_definitions;
    if containers.iter().all(|c| c.essential == Some(false)) {
        return Err(client(
            "A task definition must have at least one essential container: set essential to true on one.",
        ));
    }
    if let Some(cycle) = dependency_cycle(containers) {
        return Err(client(format!(
            "The containers' dependsOn form a cycle: {}.",
            cycle.join(" -> ")
        )));
    }
    if containers
        .iter()
        .filter(|c| c.firelens_configuration.is_some())
        .count()
        > 1
    {
        return Err(client(
            "Only one container of a task can have a firelensConfiguration.",
        ));
    }
    let mut host_ports = HashSet::new();
    let mut port_names = HashSet::new();
    for mapping in containers
        .iter()
        .flat_map(|c| c.port_mappings.iter().flatten())
    {
        let host = mapping.host_port.or(if scope.network_mode == "bridge" {
            None
        } else {
            mapping.container_port
        });
        let protocol = mapping.protocol.as_deref().unwrap_or("tcp");
        if let Some(host) = host.filter(|p| *p != 0) {
            if !host_ports.insert((host, protocol)) {
                return Err(client(format!(
                    "Host port {host}/{protocol} is mapped more than once in the task definition."
                )));
            }
        }
        if let Some(name) = &mapping.name {
            if !port_names.insert(name.as_str()) {
                return Err(client(format!(
                    "Port mapping name '{name}' is used more than once."
                )));
            }
        }
    }
    let constraints = req.placement_constraints.as_deref().unwrap_or_default();
    if constraints.len() > 10 {
        return Err(client(
            "A task definition can have at most 10 placement constraints.",
        ));
    }
    for constraint in constraints {
        check_enum(
            "placementConstraints.type",
            constraint.type_.as_deref().unwrap_or(""),
            &["memberOf"],
        )?;
        let expression = constraint.expression.as_deref().unwrap_or("");
        if expression.trim().is_empty() || expression.len() > 2000 {
            return Err(client(
                "A memberOf placement constraint needs an expression of 1 to 2000 characters.",
            ));
        }
    }
    if let Some(proxy) = &req.proxy_configuration {
        if let Some(kind) = &proxy.type_ {
            check_enum("proxyConfiguration.type", kind, &["APPMESH"])?;
        }
        if !scope.containers.contains_key(proxy.container_name.as_str()) {
            return Err(client(format!(
                "proxyConfiguration containerName '{}' does not name a container of the task.",
                proxy.container_name
            )));
        }
    }
    Ok(())
}

/// A dependsOn cycle among the containers, as the names along it, if there is one.
fn dependency_cycle(containers: &[ContainerDefinition]) -> Option<Vec<String>> {
    let edges: HashMap<&str, Vec<&str>> = containers
        .iter()
        .map(|c| {
            let deps = c
                .depends_on
                .iter()
                .flatten()
                .map(|d| d.container_name.as_str())
                .collect();
            (c.name.as_deref().unwrap_or(""), deps)
        })
        .collect();
    fn visit<'a>(
        node: &'a str,
        edges: &HashMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = HashSet::new();
    containers.iter().find_map(|c| {
        visit(
            c.name.as_deref().unwrap_or(""),
            &edges,
            &mut Vec::new(),
            &mut done,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_definition::request;
    use serde_json::{json, Value};

    fn web(extra: Value) -> Value {
        let mut container = json!({"name": "web", "image": "nginx", "memory": 128});
        if let (Some(c), Some(extra)) = (container.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        container
    }

    fn check(json: Value) -> Result<()> {
        validate(&request(json))
    }

    fn client_message(json: Value) -> String {
        match check(json) {
            Err(TaskDefinitionError::Client(message)) => message,
            other => panic!("expected a ClientException, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_definition_is_valid() {
        assert_eq!(
            check(json!({"family": "web", "containerDefinitions": [web(json!({}))]})),
            Ok(())
        );
    }

    #[test]
    fn family_must_match_the_name_pattern() {
        let message = client_message(
            json!({"family": "bad family", "containerDefinitions": [web(json!({}))]}),
        );
        assert!(message.contains("bad family"), "{message}");
    }

    #[test]
    fn an_empty_container_list_is_refused_with_ecs_wording() {
        assert_eq!(
            client_message(json!({"family": "web", "containerDefinitions": []})),
            "Container list cannot be empty."
        );
    }

    #[test]
    fn containers_need_a_unique_valid_name_and_an_image() {
        let no_name =
            json!({"family": "f", "containerDefinitions": [{"image": "nginx", "memory": 64}]});
        assert_eq!(
            client_message(no_name),
            "Container.name should not be null or empty."
        );
        let no_image =
            json!({"family": "f", "containerDefinitions": [{"name": "a", "memory": 64}]});
        assert_eq!(
            client_message(no_image),
            "Container.image should not be null or empty."
        );
        let twice =
            json!({"family": "f", "containerDefinitions": [web(json!({})), web(json!({}))]});
        assert!(client_message(twice).contains("more than once"));
        let bad = json!({"family": "f", "containerDefinitions": [web(json!({"name": "a.b"}))]});
        assert!(client_message(bad).contains("a.b"));
    }

    #[test]
    fn more_than_ten_containers_are_refused() {
        let containers: Vec<Value> = (0..11)
            .map(|i| web(json!({"name": format!("c{i}")})))
            .collect();
        assert!(
            client_message(json!({"family": "f", "containerDefinitions": containers}))
                .contains("at most 10")
        );
    }

    #[test]
    fn without_task_memory_each_container_needs_memory_or_a_reservation() {
        let message = client_message(json!({"family": "f",
            "containerDefinitions": [{"name": "app", "image": "nginx"}]}));
        assert_eq!(
            message,
            "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."
        );
        let reservation = json!({"family": "f",
            "containerDefinitions": [{"name": "app", "image": "nginx", "memoryReservation": 64}]});
        assert_eq!(check(reservation), Ok(()));
        let task_level = json!({"family": "f", "memory": "512",
            "containerDefinitions": [{"name": "app", "image": "nginx"}]});
        assert_eq!(check(task_level), Ok(()));
    }

    #[test]
    fn memory_reservation_may_not_exceed_memory_nor_containers_the_task() {
        let over = json!({"family": "f", "containerDefinitions": [web(json!({"memoryReservation": 256}))]});
        assert!(client_message(over).contains("memoryReservation"));
        let tiny = json!({"family": "f", "containerDefinitions": [web(json!({"memory": 2}))]});
        assert!(client_message(tiny).contains("at least 6"));
        let bigger_than_task =
            json!({"family": "f", "memory": "64", "containerDefinitions": [web(json!({}))]});
        assert!(client_message(bigger_than_task).contains("task memory"));
        let cpu = json!({"family": "f", "cpu": "256", "containerDefinitions": [web(json!({"cpu": 512}))]});
        assert!(client_message(cpu).contains("task cpu"));
    }

    #[test]
    fn at_least_one_container_must_be_essential() {
        let none =
            json!({"family": "f", "containerDefinitions": [web(json!({"essential": false}))]});
        assert!(client_message(none).contains("essential"));
    }

    #[test]
    fn references_between_containers_must_name_existing_containers() {
        let depends = json!({"family": "f", "containerDefinitions": [web(json!({
            "dependsOn": [{"containerName": "db", "condition": "START"}]}))]});
        assert!(client_message(depends).contains("'db'"));
        let links = json!({"family": "f", "containerDefinitions": [web(json!({"links": ["db:database"]}))]});
        assert!(client_message(links).contains("db:database"));
        let from = json!({"family": "f", "containerDefinitions": [web(json!({
            "volumesFrom": [{"sourceContainer": "web"}]}))]});
        assert!(client_message(from).contains("sourceContainer 'web'"));
        let ok = json!({"family": "f", "containerDefinitions": [
            web(json!({"links": ["db:database"], "volumesFrom": [{"sourceContainer": "db"}],
                       "dependsOn": [{"containerName": "db", "condition": "START"}]})),
            web(json!({"name": "db"}))]});
        assert_eq!(check(ok), Ok(()));
    }

    #[test]
    fn dependency_cycles_and_impossible_conditions_are_refused() {
        let cycle = json!({"family": "f", "containerDefinitions": [
            web(json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})),
            web(json!({"name": "db", "dependsOn": [{"containerName": "web", "condition": "START"}]}))]});
        assert!(client_message(cycle).contains("cycle"));
        let healthy = json!({"family": "f", "containerDefinitions": [
            web(json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})),
            web(json!({"name": "db"}))]});
        assert!(client_message(healthy).contains("healthCheck"));
        let complete = json!({"family": "f", "containerDefinitions": [
            web(json!({"dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]})),
            web(json!({"name": "init"}))]});
        assert!(client_message(complete).contains("essential"));
        let bad_condition = json!({"family": "f", "containerDefinitions": [
            web(json!({"dependsOn": [{"containerName": "db", "condition": "READY"}]})),
            web(json!({"name": "db"}))]});
        assert!(
            matches!(check(bad_condition), Err(TaskDefinitionError::InvalidParameter(m)) if m.contains("START, COMPLETE, SUCCESS, HEALTHY"))
        );
    }

    #[test]
    fn mount_points_must_name_declared_volumes() {
        let missing = json!({"family": "f", "containerDefinitions": [web(json!({
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}))]});
        assert!(client_message(missing).contains("'data'"));
        let declared = json!({"family": "f", "volumes": [{"name": "data", "host": {"sourcePath": "/srv"}}],
            "containerDefinitions": [web(json!({
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}))]});
        assert_eq!(check(declared), Ok(()));
        let twice = json!({"family": "f", "volumes": [{"name": "v"}, {"name": "v"}],
            "containerDefinitions": [web(json!({}))]});
        assert!(client_message(twice).contains("more than once"));
        let both = json!({"family": "f", "volumes": [{"name": "v", "host": {},
            "dockerVolumeConfiguration": {"scope": "task"}}], "containerDefinitions": [web(json!({}))]});
        assert!(client_message(both).contains("keep one"));
    }

    #[test]
    fn enums_are_checked_against_the_model_values() {
        let mode = json!({"family": "f", "networkMode": "overlay", "containerDefinitions": [web(json!({}))]});
        match check(mode) {
            Err(TaskDefinitionError::InvalidParameter(m)) => {
                assert!(m.contains("bridge, host, awsvpc, none"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let compat = json!({"family": "f", "requiresCompatibilities": ["LAMBDA"], "containerDefinitions": [web(json!({}))]});
        assert!(matches!(
            check(compat),
            Err(TaskDefinitionError::InvalidParameter(_))
        ));
        let log = json!({"family": "f", "containerDefinitions": [web(json!({"logConfiguration": {"logDriver": "file"}}))]});
        assert!(matches!(
            check(log),
            Err(TaskDefinitionError::InvalidParameter(_))
        ));
    }

    #[test]
    fn fargate_requires_awsvpc_and_a_fargate_task_size() {
        let base = |extra: Value| {
            let mut req = json!({"family": "f", "requiresCompatibilities": ["FARGATE"],
                "containerDefinitions": [{"name": "app", "image": "busybox"}]});
            if let (Some(r), Some(extra)) = (req.as_object_mut(), extra.as_object()) {
                r.extend(extra.clone());
            }
            req
        };
        assert!(client_message(base(json!({"cpu": "256", "memory": "512"}))).contains("awsvpc"));
        assert!(
            client_message(base(json!({"networkMode": "awsvpc", "memory": "512"})))
                .contains("'cpu'")
        );
        assert!(
            client_message(base(json!({"networkMode": "awsvpc", "cpu": "256"})))
                .contains("'memory'")
        );
        assert!(client_message(base(
            json!({"networkMode": "awsvpc", "cpu": "256", "memory": "4096"})
        ))
        .contains("No Fargate configuration"));
        assert_eq!(
            check(base(
                json!({"networkMode": "awsvpc", "cpu": "256", "memory": "512"})
            )),
            Ok(())
        );
    }

    #[test]
    fn external_instances_cannot_be_required_for_awsvpc_tasks() {
        let req = json!({"family": "f", "networkMode": "awsvpc", "requiresCompatibilities": ["EXTERNAL"],
            "containerDefinitions": [web(json!({}))]});
        assert!(client_message(req).contains("awsvpc"));
    }

    #[test]
    fn invalid_tags_are_invalid_parameters() {
        let req = json!({"family": "f", "containerDefinitions": [web(json!({}))],
            "tags": [{"key": "aws:reserved", "value": "x"}]});
        assert!(matches!(
            check(req),
            Err(TaskDefinitionError::InvalidParameter(_))
        ));
    }

    #[test]
    fn duplicate_host_ports_and_placement_constraints_are_checked() {
        let ports = json!({"family": "f", "networkMode": "host", "containerDefinitions": [
            web(json!({"portMappings": [{"containerPort": 80}]})),
            web(json!({"name": "b", "portMappings": [{"containerPort": 80}]}))]});
        assert!(client_message(ports).contains("80/tcp"));
        let constraint = json!({"family": "f", "containerDefinitions": [web(json!({}))],
            "placementConstraints": [{"type": "memberOf"}]});
        assert!(client_message(constraint).contains("expression"));
    }

    #[test]
    fn oversized_definitions_are_refused() {
        let big = "x".repeat(70_000);
        let req = json!({"family": "f", "containerDefinitions": [web(json!({
            "environment": [{"name": "BIG", "value": big}]}))]});
        assert!(client_message(req).contains("maximum"));
    }
}
