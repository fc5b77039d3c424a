//! The checks of one container definition: image, resources, links, ports, mounts,
//! dependencies, health check, log and FireLens settings, Linux parameters.

use super::validate::TaskScope;
use super::{check_enum, check_range, client, Result, LOG_DRIVERS, MIN_CONTAINER_MEMORY};
use crate::model::task_definition::{ContainerDefinition, PortMapping};
use std::collections::HashSet;

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Checks one container against ECS's rules and the rest of the task.
pub(super) fn validate_container(c: &ContainerDefinition, scope: &TaskScope) -> Result<()> {
    let name = c.name.as_deref().unwrap_or("");
    let bad = |what: String| client(format!("Invalid setting for container '{name}'. {what}"));
    let image = c.image.as_deref().unwrap_or("");
    if image.trim().is_empty() {
        return Err(client("Container.image should not be null or empty."));
    }
    if image
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(bad(format!("Image '{image}' contains whitespace.")));
    }
    if c.cpu.is_some_and(|cpu| cpu < 0) {
        return Err(bad("'cpu' cannot be negative.".into()));
    }
    for (member, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if value.is_some_and(|v| v < MIN_CONTAINER_MEMORY) {
            return Err(bad(format!(
                "'{member}' must be at least {MIN_CONTAINER_MEMORY} MiB."
            )));
        }
    }
    if let (Some(memory), Some(reservation)) = (c.memory, c.memory_reservation) {
        if reservation > memory {
            return Err(bad(format!(
                "'memoryReservation' ({reservation}) must be less than or equal to 'memory' ({memory})."
            )));
        }
    }
    for timeout in [
        ("startTimeout", c.start_timeout),
        ("stopTimeout", c.stop_timeout),
    ] {
        if timeout.1.is_some_and(|t| t < 0) {
            return Err(bad(format!("'{}' cannot be negative.", timeout.0)));
        }
    }
    if let Some(mode) = &c.version_consistency {
        check_enum("versionConsistency", mode, &["enabled", "disabled"])?;
    }
    let mode = scope.network_mode;
    if c.links.as_ref().is_some_and(|l| !l.is_empty()) && mode != "bridge" {
        return Err(bad(format!(
            "links are only supported with networkMode bridge, not {mode}."
        )));
    }
    for link in c.links.iter().flatten() {
        let target = link
            .split_once(':')
            .map_or(link.as_str(), |(target, _)| target);
        if target == name || !scope.containers.contains_key(target) {
            return Err(bad(format!(
                "Link '{link}' does not name another container of the task."
            )));
        }
    }
    if mode == "awsvpc" {
        if c.hostname.is_some() {
            return Err(bad(
                "hostname is not supported with networkMode awsvpc.".into()
            ));
        }
        if c.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(bad(
                "extraHosts is not supported with networkMode awsvpc.".into()
            ));
        }
    }
    for mapping in c.port_mappings.iter().flatten() {
        validate_port_mapping(mapping, mode).map_err(|e| bad(e.to_string()))?;
    }
    for from in c.volumes_from.iter().flatten() {
        let source = from.source_container.as_deref().unwrap_or("");
        if source == name || !scope.containers.contains_key(source) {
            return Err(bad(format!("volumesFrom sourceContainer '{source}' does not name another container of the task.")));
        }
    }
    for mount in c.mount_points.iter().flatten() {
        let volume = mount.source_volume.as_deref().unwrap_or("");
        if !scope.volumes.contains(volume) {
            return Err(bad(format!(
                "mountPoints sourceVolume '{volume}' is not a volume of the task definition."
            )));
        }
        if mount.container_path.as_deref().unwrap_or("").is_empty() {
            return Err(bad(format!(
                "The mount point of volume '{volume}' needs a containerPath."
            )));
        }
    }
    for dependency in c.depends_on.iter().flatten() {
        let target = dependency.container_name.as_str();
        check_enum(
            "dependsOn.condition",
            &dependency.condition,
            &["START", "COMPLETE", "SUCCESS", "HEALTHY"],
        )?;
        let Some(other) = scope.containers.get(target).filter(|_| target != name) else {
            return Err(bad(format!(
                "dependsOn containerName '{target}' does not name another container of the task."
            )));
        };
        match dependency.condition.as_str() {
            "HEALTHY" if other.health_check.is_none() => {
                return Err(bad(format!(
                    "It depends on '{target}' being HEALTHY, but '{target}' has no healthCheck."
                )));
            }
            "COMPLETE" | "SUCCESS" if other.essential != Some(false) => {
                return Err(bad(format!(
                    "It depends on '{target}' with condition {}, which cannot be set on an essential container: mark '{target}' essential false.",
                    dependency.condition
                )));
            }
            _ => {}
        }
    }
    if let Some(check) = &c.health_check {
        if check.command.is_empty() {
            return Err(bad("healthCheck.command cannot be empty.".into()));
        }
        let ranges = [
            ("healthCheck.interval", check.interval, 5, 300),
            ("healthCheck.timeout", check.timeout, 2, 60),
            ("healthCheck.retries", check.retries, 1, 10),
            ("healthCheck.startPeriod", check.start_period, 0, 300),
        ];
        for (what, value, min, max) in ranges {
            if let Some(value) = value {
                check_range(what, value, min, max).map_err(|e| bad(e.to_string()))?;
            }
        }
    }
    for ulimit in c.ulimits.iter().flatten() {
        check_enum("ulimits.name", &ulimit.name, ULIMIT_NAMES)?;
        if ulimit.hard_limit >= 0 && ulimit.soft_limit > ulimit.hard_limit {
            return Err(bad(format!(
                "The softLimit of ulimit '{}' is greater than its hardLimit.",
                ulimit.name
            )));
        }
    }
    if let Some(log) = &c.log_configuration {
        check_enum("logConfiguration.logDriver", &log.log_driver, LOG_DRIVERS)?;
        if log.log_driver == "awsfirelens"
            && !scope
                .containers
                .values()
                .any(|o| o.firelens_configuration.is_some())
        {
            return Err(bad("The awsfirelens log driver needs a container with a firelensConfiguration in the task.".into()));
        }
    }
    if let Some(firelens) = &c.firelens_configuration {
        check_enum(
            "firelensConfiguration.type",
            &firelens.type_,
            &["fluentd", "fluentbit"],
        )?;
    }
    for file in c.environment_files.iter().flatten() {
        check_enum("environmentFiles.type", &file.type_, &["s3"])?;
    }
    for secret in c.secrets.iter().flatten() {
        if secret.name.is_empty() || secret.value_from.is_empty() {
            return Err(bad("Each secret needs a name and a valueFrom.".into()));
        }
    }
    let mut requirement_types = HashSet::new();
    for requirement in c.resource_requirements.iter().flatten() {
        check_enum(
            "resourceRequirements.type",
            &requirement.type_,
            &["GPU", "InferenceAccelerator"],
        )?;
        if !requirement_types.insert(requirement.type_.as_str()) {
            return Err(bad(format!(
                "resourceRequirements lists {} more than once.",
                requirement.type_
            )));
        }
        let valid = match requirement.type_.as_str() {
            "GPU" => requirement.value.parse::<u32>().is_ok_and(|n| n > 0),
            _ => scope.accelerators.contains(requirement.value.as_str()),
        };
        if !valid {
            return Err(bad(format!(
                "resourceRequirements value '{}' is not valid for type {}: use a positive number of GPUs or the deviceName of a task inference accelerator.",
                requirement.value, requirement.type_
            )));
        }
    }
    if let Some(policy) = &c.restart_policy {
        if let Some(period) = policy.restart_attempt_period {
            check_range("restartPolicy.restartAttemptPeriod", period, 60, 1800)
                .map_err(|e| bad(e.to_string()))?;
        }
        if policy
            .ignored_exit_codes
            .as_ref()
            .is_some_and(|codes| codes.len() > 50)
        {
            return Err(bad(
                "restartPolicy.ignoredExitCodes can list at most 50 exit codes.".into(),
            ));
        }
    }
    if let Some(linux) = &c.linux_parameters {
        for device in linux.devices.iter().flatten() {
            if device.host_path.is_empty() {
                return Err(bad("Each device needs a hostPath.".into()));
            }
            for permission in device.permissions.iter().flatten() {
                check_enum(
                    "devices.permissions",
                    permission,
                    &["read", "write", "mknod"],
                )?;
            }
        }
        for tmpfs in linux.tmpfs.iter().flatten() {
            if tmpfs.container_path.is_empty() || tmpfs.size <= 0 {
                return Err(bad(
                    "Each tmpfs mount needs a containerPath and a size above 0 MiB.".into(),
                ));
            }
        }
        if let Some(swappiness) = linux.swappiness {
            check_range("linuxParameters.swappiness", swappiness, 0, 100)
                .map_err(|e| bad(e.to_string()))?;
        }
        if linux.max_swap.is_some_and(|s| s < 0) || linux.shared_memory_size.is_some_and(|s| s <= 0)
        {
            return Err(bad(
                "linuxParameters.maxSwap cannot be negative and sharedMemorySize must be above 0."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Checks one port mapping for the task's network mode.
fn validate_port_mapping(m: &PortMapping, mode: &str) -> Result<()> {
    if mode == "none" {
        return Err(client(
            "Port mappings are not supported with networkMode none.",
        ));
    }
    if let Some(protocol) = &m.protocol {
        check_enum("portMappings.protocol", protocol, &["tcp", "udp"])?;
    }
    if let Some(app) = &m.app_protocol {
        check_enum("portMappings.appProtocol", app, &["http", "http2", "grpc"])?;
    }
    if let Some(range) = &m.container_port_range {
        let parsed = range.split_once('-').and_then(|(a, b)| {
            Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
        });
        if !parsed.is_some_and(|(a, b)| 1 <= a && a < b && b <= 65535) {
            return Err(client(format!(
                "containerPortRange '{range}' is invalid: use 'start-end' with 1 <= start < end <= 65535."
            )));
        }
        if m.container_port.is_some() || m.host_port.is_some() {
            return Err(client(
                "With a containerPortRange, leave containerPort and hostPort out.",
            ));
        }
        if !matches!(mode, "awsvpc" | "bridge") {
            return Err(client(
                "containerPortRange needs networkMode awsvpc or bridge.",
            ));
        }
        return Ok(());
    }
    let Some(port) = m.container_port else {
        return Err(client(
            "Each port mapping needs a containerPort or a containerPortRange.",
        ));
    };
    check_range("containerPort", port, 1, 65535)?;
    if let Some(host) = m.host_port {
        check_range("hostPort", host, 0, 65535)?;
        if matches!(mode, "host" | "awsvpc") && host != port && host != 0 {
            return Err(client(format!(
                "When networkMode={mode}, the host ports and container ports in port mappings must match."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::task_definition::{request, validate, TaskDefinitionError};
    use serde_json::{json, Value};

    fn with(extra: Value, network_mode: &str) -> Result<(), TaskDefinitionError> {
        let mut container = json!({"name": "web", "image": "nginx", "memory": 128});
        if let (Some(c), Some(extra)) = (container.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        validate(&request(json!({"family": "f", "networkMode": network_mode,
            "containerDefinitions": [container, {"name": "fl", "image": "fluent", "memory": 64,
                "essential": false, "firelensConfiguration": {"type": "fluentbit"}}]})))
    }

    fn message(result: Result<(), TaskDefinitionError>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn port_mappings_are_checked_for_range_protocol_and_network_mode() {
        assert_eq!(
            with(
                json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]}),
                "bridge"
            ),
            Ok(())
        );
        assert!(message(with(
            json!({"portMappings": [{"containerPort": 70000}]}),
            "bridge"
        ))
        .contains("containerPort"));
        assert!(message(with(
            json!({"portMappings": [{"containerPort": 80, "hostPort": -1}]}),
            "bridge"
        ))
        .contains("hostPort"));
        assert!(message(with(
            json!({"portMappings": [{"containerPort": 80, "protocol": "sctp"}]}),
            "bridge"
        ))
        .contains("tcp, udp"));
        assert!(message(with(
            json!({"portMappings": [{"containerPort": 80, "hostPort": 81}]}),
            "awsvpc"
        ))
        .contains("must match"));
        assert!(message(with(
            json!({"portMappings": [{"containerPort": 80}]}),
            "none"
        ))
        .contains("none"));
        assert!(
            message(with(json!({"portMappings": [{"hostPort": 80}]}), "bridge"))
                .contains("containerPort")
        );
        assert_eq!(
            with(
                json!({"portMappings": [{"containerPortRange": "8000-8010"}]}),
                "awsvpc"
            ),
            Ok(())
        );
        assert!(message(with(
            json!({"portMappings": [{"containerPortRange": "9-3"}]}),
            "awsvpc"
        ))
        .contains("9-3"));
    }

    #[test]
    fn health_check_timings_must_be_in_range() {
        let hc = |field: &str, value: i32| {
            with(
                json!({"healthCheck": {"command": ["CMD", "true"], field: value}}),
                "bridge",
            )
        };
        assert_eq!(hc("interval", 5), Ok(()));
        assert!(message(hc("interval", 4)).contains("interval"));
        assert!(message(hc("interval", 301)).contains("5 to 300"));
        assert!(message(hc("timeout", 61)).contains("timeout"));
        assert!(message(hc("retries", 0)).contains("retries"));
        assert!(message(hc("startPeriod", 301)).contains("startPeriod"));
        assert_eq!(hc("startPeriod", 0), Ok(()));
        assert!(
            message(with(json!({"healthCheck": {"command": []}}), "bridge")).contains("command")
        );
    }

    #[test]
    fn links_only_work_in_bridge_mode() {
        let result = with(json!({"links": ["fl"]}), "awsvpc");
        assert!(message(result).contains("bridge"));
    }

    #[test]
    fn nested_settings_are_checked() {
        assert!(message(with(
            json!({"ulimits": [{"name": "nofile", "softLimit": 10, "hardLimit": 5}]}),
            "bridge"
        ))
        .contains("softLimit"));
        assert!(message(with(
            json!({"ulimits": [{"name": "files", "softLimit": 1, "hardLimit": 5}]}),
            "bridge"
        ))
        .contains("nofile"));
        assert!(message(with(
            json!({"resourceRequirements": [{"type": "GPU", "value": "zero"}]}),
            "bridge"
        ))
        .contains("GPU"));
        assert!(message(with(
            json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 10}}),
            "bridge"
        ))
        .contains("60 to 1800"));
        assert!(message(with(
            json!({"linuxParameters": {"swappiness": 101}}),
            "bridge"
        ))
        .contains("swappiness"));
        assert!(message(with(json!({"linuxParameters": {"devices": [{"hostPath": "/dev/x", "permissions": ["all"]}]}}), "bridge")).contains("mknod"));
        assert!(message(with(json!({"image": "two words"}), "bridge")).contains("whitespace"));
        assert!(message(with(json!({"hostname": "h"}), "awsvpc")).contains("hostname"));
        assert_eq!(
            with(
                json!({"logConfiguration": {"logDriver": "awsfirelens"}}),
                "bridge"
            ),
            Ok(())
        );
    }
}
