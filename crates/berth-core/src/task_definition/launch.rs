//! Launch types and instance requirements of a task definition: whether it fits EC2,
//! external instances or Fargate (`compatibilities`), and the container instance attributes
//! it needs (`requiresAttributes`).

use super::fargate_size_exists;
use crate::model::task_definition::{ContainerDefinition, TaskDefinition};
use crate::model::Attribute;
use std::collections::BTreeSet;

/// Why `td` cannot run on `launch_type`, in ECS's words; `None` when it can.
pub fn incompatibility(td: &TaskDefinition, launch_type: &str) -> Option<String> {
    let containers = td.container_definitions.as_deref().unwrap_or_default();
    let volumes = td.volumes.as_deref().unwrap_or_default();
    let network_mode = td.network_mode.as_deref().unwrap_or("bridge");
    match launch_type {
        "FARGATE" => {
            if network_mode != "awsvpc" {
                return Some("Fargate only supports network mode 'awsvpc'.".into());
            }
            let cpu = td.cpu.as_deref().and_then(|c| c.parse::<u32>().ok());
            let memory = td.memory.as_deref().and_then(|m| m.parse::<u32>().ok());
            let (Some(cpu), Some(memory)) = (cpu, memory) else {
                return Some(if cpu.is_none() {
                    "Fargate requires that 'cpu' be defined at the task level.".into()
                } else {
                    "Fargate requires that 'memory' be defined at the task level.".into()
                });
            };
            if !fargate_size_exists(cpu, memory) {
                return Some(format!(
                    "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Task size section of the ECS Developer Guide for the supported pairs."
                ));
            }
            if td
                .placement_constraints
                .as_ref()
                .is_some_and(|p| !p.is_empty())
            {
                return Some("Fargate does not support task placement constraints.".into());
            }
            if td.pid_mode.as_deref() == Some("host") || td.ipc_mode.is_some() {
                return Some("Fargate does not support ipcMode, or pidMode host.".into());
            }
            if td
                .inference_accelerators
                .as_ref()
                .is_some_and(|a| !a.is_empty())
            {
                return Some("Fargate does not support inference accelerators.".into());
            }
            if volumes
                .iter()
                .any(|v| v.docker_volume_configuration.is_some())
            {
                return Some("Fargate does not support dockerVolumeConfiguration volumes.".into());
            }
            if volumes
                .iter()
                .any(|v| v.host.as_ref().is_some_and(|h| h.source_path.is_some()))
            {
                return Some("Fargate does not support host volumes with a sourcePath.".into());
            }
            containers.iter().find_map(fargate_container_problem)
        }
        "EXTERNAL" => {
            if network_mode == "awsvpc" {
                return Some(
                    "External instances (ECS Anywhere) do not support network mode 'awsvpc'."
                        .into(),
                );
            }
            if volumes.iter().any(|v| {
                v.efs_volume_configuration.is_some()
                    || v.fsx_windows_file_server_volume_configuration.is_some()
                    || v.s3files_volume_configuration.is_some()
            }) {
                return Some("External instances (ECS Anywhere) do not support EFS, S3 Files or FSx volumes.".into());
            }
            if td.proxy_configuration.is_some()
                || td
                    .inference_accelerators
                    .as_ref()
                    .is_some_and(|a| !a.is_empty())
            {
                return Some("External instances (ECS Anywhere) do not support App Mesh proxies or inference accelerators.".into());
            }
            None
        }
        _ => None,
    }
}

/// Why a container cannot run on Fargate, if it cannot.
fn fargate_container_problem(c: &ContainerDefinition) -> Option<String> {
    let name = c.name.as_deref().unwrap_or("");
    let problem = if c.privileged == Some(true) {
        "privileged"
    } else if c.links.as_ref().is_some_and(|l| !l.is_empty()) {
        "links"
    } else if c.stop_timeout.is_some_and(|t| t > 120) || c.start_timeout.is_some_and(|t| t > 120) {
        "startTimeout or stopTimeout above 120 seconds"
    } else if c
        .resource_requirements
        .iter()
        .flatten()
        .any(|r| r.type_ == "GPU")
    {
        "GPU resource requirements"
    } else if c
        .log_configuration
        .as_ref()
        .is_some_and(|l| !["awslogs", "splunk", "awsfirelens"].contains(&l.log_driver.as_str()))
    {
        "log drivers other than awslogs, splunk and awsfirelens"
    } else if c.linux_parameters.as_ref().is_some_and(|l| {
        l.devices.as_ref().is_some_and(|d| !d.is_empty())
            || l.tmpfs.as_ref().is_some_and(|t| !t.is_empty())
            || l.shared_memory_size.is_some()
            || l.max_swap.is_some()
            || l.swappiness.is_some()
            || l.capabilities
                .as_ref()
                .is_some_and(|k| k.add.iter().flatten().any(|cap| cap != "SYS_PTRACE"))
    }) {
        "devices, tmpfs, sharedMemorySize, swap settings or added capabilities other than SYS_PTRACE"
    } else {
        return None;
    };
    Some(format!(
        "Invalid setting for container '{name}'. Fargate does not support {problem}."
    ))
}

/// The launch types a task definition is compatible with, as ECS computes them on
/// registration: EXTERNAL and EC2 for definitions external instances can run, FARGATE when
/// it fits Fargate (awsvpc, a Fargate task size), MANAGED_INSTANCES when it was required.
pub fn compatibilities(td: &TaskDefinition) -> Vec<String> {
    let required = td.requires_compatibilities.as_deref().unwrap_or_default();
    ["EXTERNAL", "EC2", "FARGATE", "MANAGED_INSTANCES"]
        .into_iter()
        .filter(|launch_type| match *launch_type {
            "MANAGED_INSTANCES" => required.iter().any(|r| r == launch_type),
            other => incompatibility(td, other).is_none(),
        })
        .map(String::from)
        .collect()
}

const DOCKER_API: &str = "com.amazonaws.ecs.capability.docker-remote-api.";

/// Every fixed attribute name `requires_attributes` can produce; besides these it produces
/// `com.amazonaws.ecs.capability.logging-driver.<driver>` for each log driver in use.
pub const CAPABILITY_ATTRIBUTES: &[&str] = &[
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "com.amazonaws.ecs.capability.docker-remote-api.1.19",
    "com.amazonaws.ecs.capability.docker-remote-api.1.21",
    "com.amazonaws.ecs.capability.docker-remote-api.1.24",
    "com.amazonaws.ecs.capability.docker-remote-api.1.25",
    "com.amazonaws.ecs.capability.ecr-auth",
    "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
    "com.amazonaws.ecs.capability.task-iam-role",
    "com.amazonaws.ecs.capability.task-iam-role-network-host",
    "ecs.capability.aws-appmesh",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
    "ecs.capability.container-port-range",
    "ecs.capability.efs",
    "ecs.capability.efsAuth",
    "ecs.capability.env-files.s3",
    "ecs.capability.execution-role-awslogs",
    "ecs.capability.execution-role-ecr-pull",
    "ecs.capability.firelens.fluentbit",
    "ecs.capability.firelens.fluentd",
    "ecs.capability.fsxWindowsFileServer",
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.secrets.ssm.environment-variables",
    "ecs.capability.task-eni",
];

/// The attribute an instance carries to run containers logging through `driver`.
pub fn logging_driver_attribute(driver: &str) -> String {
    format!("com.amazonaws.ecs.capability.logging-driver.{driver}")
}

/// The container instance attributes a task definition requires, as ECS derives them from
/// the features it uses (Docker Remote API versions, agent capabilities, log drivers, task
/// IAM roles, ...), sorted by name. Instances must carry every one to run its tasks.
pub fn requires_attributes(td: &TaskDefinition) -> Vec<Attribute> {
    let mut names = BTreeSet::new();
    let mut add = |name: String| {
        names.insert(name);
    };
    let network_mode = td.network_mode.as_deref().unwrap_or("bridge");
    if td.task_role_arn.is_some() {
        add("com.amazonaws.ecs.capability.task-iam-role".into());
        if network_mode == "host" {
            add("com.amazonaws.ecs.capability.task-iam-role-network-host".into());
        }
    }
    if network_mode == "awsvpc" {
        add("ecs.capability.task-eni".into());
    }
    if td.proxy_configuration.is_some() {
        add("ecs.capability.aws-appmesh".into());
    }
    for volume in td.volumes.iter().flatten() {
        if let Some(efs) = &volume.efs_volume_configuration {
            add("ecs.capability.efs".into());
            if efs.authorization_config.is_some()
                || efs.transit_encryption.as_deref() == Some("ENABLED")
            {
                add("ecs.capability.efsAuth".into());
            }
        }
        if volume
            .fsx_windows_file_server_volume_configuration
            .is_some()
        {
            add("ecs.capability.fsxWindowsFileServer".into());
        }
        if volume.docker_volume_configuration.is_some() {
            add(format!("{DOCKER_API}1.25"));
        }
    }
    let execution_role = td.execution_role_arn.is_some();
    for c in td.container_definitions.iter().flatten() {
        if c.docker_labels.is_some() || c.ulimits.is_some() {
            add(format!("{DOCKER_API}1.18"));
        }
        if c.memory_reservation.is_some() {
            add(format!("{DOCKER_API}1.21"));
        }
        if let Some(log) = &c.log_configuration {
            add(format!("{DOCKER_API}1.18"));
            if log.options.as_ref().is_some_and(|o| !o.is_empty()) {
                add(format!("{DOCKER_API}1.19"));
            }
            add(logging_driver_attribute(&log.log_driver));
            if log.log_driver == "awslogs" && execution_role {
                add("ecs.capability.execution-role-awslogs".into());
            }
        }
        if c.health_check.is_some() {
            add(format!("{DOCKER_API}1.24"));
            add("ecs.capability.container-health-check".into());
        }
        if c.linux_parameters
            .as_ref()
            .is_some_and(|l| l.init_process_enabled == Some(true))
        {
            add(format!("{DOCKER_API}1.25"));
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            add("ecs.capability.container-ordering".into());
        }
        if c.repository_credentials.is_some() {
            add(
                "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"
                    .into(),
            );
        }
        if c.image
            .as_deref()
            .is_some_and(|i| i.contains(".dkr.ecr.") && i.contains(".amazonaws.com"))
        {
            add("com.amazonaws.ecs.capability.ecr-auth".into());
            if execution_role {
                add("ecs.capability.execution-role-ecr-pull".into());
            }
        }
        for secret in c.secrets.iter().flatten() {
            if secret.value_from.contains(":secretsmanager:") {
                add("ecs.capability.secrets.asm.environment-variables".into());
            } else {
                add("ecs.capability.secrets.ssm.environment-variables".into());
            }
        }
        if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            add("ecs.capability.env-files.s3".into());
        }
        if let Some(firelens) = &c.firelens_configuration {
            add(format!("ecs.capability.firelens.{}", firelens.type_));
        }
        if c.port_mappings
            .iter()
            .flatten()
            .any(|m| m.container_port_range.is_some())
        {
            add("ecs.capability.container-port-range".into());
        }
    }
    names
        .into_iter()
        .map(|name| Attribute {
            name,
            value: None,
            target_type: None,
            target_id: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_definition::{prepare_registration, request};
    use serde_json::{json, Value};

    fn registered(json: Value) -> TaskDefinition {
        prepare_registration(&request(json)).expect("valid").0
    }

    fn names(td: &TaskDefinition) -> Vec<String> {
        td.requires_attributes
            .iter()
            .flatten()
            .map(|a| a.name.clone())
            .collect()
    }

    #[test]
    fn a_plain_bridge_definition_runs_on_ec2_and_external_instances_only() {
        let td = registered(json!({"family": "f",
            "containerDefinitions": [{"name": "a", "image": "nginx", "memory": 64}]}));
        assert_eq!(compatibilities(&td), vec!["EXTERNAL", "EC2"]);
        assert!(names(&td).is_empty());
    }

    #[test]
    fn fargate_is_compatible_only_with_awsvpc_and_a_fargate_size() {
        let td = registered(
            json!({"family": "f", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "a", "image": "nginx"}]}),
        );
        assert_eq!(compatibilities(&td), vec!["EC2", "FARGATE"]);
        let odd_size = registered(
            json!({"family": "f", "networkMode": "awsvpc", "cpu": "300", "memory": "512",
            "containerDefinitions": [{"name": "a", "image": "nginx"}]}),
        );
        assert_eq!(compatibilities(&odd_size), vec!["EC2"]);
        let privileged = registered(
            json!({"family": "f", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "a", "image": "nginx", "privileged": true}]}),
        );
        assert_eq!(compatibilities(&privileged), vec!["EC2"]);
        assert!(incompatibility(&privileged, "FARGATE").is_some_and(|r| r.contains("privileged")));
    }

    #[test]
    fn managed_instances_appear_only_when_required() {
        let td = registered(
            json!({"family": "f", "networkMode": "awsvpc", "memory": "512",
            "requiresCompatibilities": ["MANAGED_INSTANCES"],
            "containerDefinitions": [{"name": "a", "image": "nginx"}]}),
        );
        assert_eq!(compatibilities(&td), vec!["EC2", "MANAGED_INSTANCES"]);
    }

    #[test]
    fn required_attributes_follow_the_features_used() {
        let td = registered(json!({
            "family": "f", "networkMode": "awsvpc", "taskRoleArn": "arn:aws:iam::1:role/t",
            "executionRoleArn": "arn:aws:iam::1:role/e",
            "containerDefinitions": [
                {"name": "a", "image": "1.dkr.ecr.us-east-1.amazonaws.com/a:1", "memoryReservation": 64,
                 "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
                 "healthCheck": {"command": ["CMD", "true"]},
                 "dependsOn": [{"containerName": "b", "condition": "START"}],
                 "secrets": [{"name": "S", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:s"}]},
                {"name": "b", "image": "busybox", "memory": 64, "dockerLabels": {"k": "v"},
                 "linuxParameters": {"initProcessEnabled": true}}]
        }));
        let expected = [
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            "com.amazonaws.ecs.capability.docker-remote-api.1.21",
            "com.amazonaws.ecs.capability.docker-remote-api.1.24",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "com.amazonaws.ecs.capability.ecr-auth",
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "com.amazonaws.ecs.capability.task-iam-role",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
            "ecs.capability.execution-role-awslogs",
            "ecs.capability.execution-role-ecr-pull",
            "ecs.capability.secrets.asm.environment-variables",
            "ecs.capability.task-eni",
        ];
        assert_eq!(names(&td), expected);
        assert!(td
            .requires_attributes
            .iter()
            .flatten()
            .all(|a| a.value.is_none()));
    }

    #[test]
    fn host_mode_task_roles_need_the_host_network_capability() {
        let td = registered(
            json!({"family": "f", "networkMode": "host", "taskRoleArn": "arn:aws:iam::1:role/t",
            "containerDefinitions": [{"name": "a", "image": "nginx", "memory": 64}]}),
        );
        assert_eq!(
            names(&td),
            vec![
                "com.amazonaws.ecs.capability.task-iam-role",
                "com.amazonaws.ecs.capability.task-iam-role-network-host"
            ]
        );
    }

    #[test]
    fn every_attribute_produced_is_a_documented_capability_name() {
        let td = registered(json!({
            "family": "f", "networkMode": "awsvpc", "taskRoleArn": "t", "executionRoleArn": "e",
            "proxyConfiguration": {"type": "APPMESH", "containerName": "a"},
            "volumes": [
                {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryption": "ENABLED"}},
                {"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-2",
                    "rootDirectory": "x", "authorizationConfig": {"credentialsParameter": "c", "domain": "d"}}},
                {"name": "dv", "dockerVolumeConfiguration": {"scope": "task"}}],
            "containerDefinitions": [
                {"name": "a", "image": "1.dkr.ecr.us-east-1.amazonaws.com/a", "memory": 64,
                 "repositoryCredentials": {"credentialsParameter": "p"},
                 "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::b/f"}],
                 "secrets": [{"name": "A", "valueFrom": "param"}],
                 "portMappings": [{"containerPortRange": "9000-9001"}],
                 "logConfiguration": {"logDriver": "awsfirelens"}},
                {"name": "b", "image": "fluent-bit", "memory": 64, "essential": false,
                 "firelensConfiguration": {"type": "fluentbit"}}]
        }));
        let produced = names(&td);
        assert!(produced.len() > 10, "{produced:?}");
        for name in produced {
            assert!(
                CAPABILITY_ATTRIBUTES.contains(&name.as_str())
                    || name == logging_driver_attribute("awsfirelens"),
                "{name}"
            );
        }
    }
}
