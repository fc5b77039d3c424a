//! RegisterTaskDefinition as pure logic: validation of the input as ECS validates it, the
//! defaults ECS fills in on registration, the computed `requiresAttributes` and
//! `compatibilities`, and the parsing of task definition references (`family`,
//! `family:revision`, ARN).

pub mod admission;
mod container;
mod launch;
mod reference;
mod validate;

pub use launch::{
    compatibilities, incompatibility, logging_driver_attribute, requires_attributes,
    CAPABILITY_ATTRIBUTES,
};
pub use reference::{parse_reference, parse_revision_reference, TaskDefinitionRef};
pub use validate::validate;

use crate::model::task_definition::{
    ContainerDefinition, RegisterTaskDefinitionRequest, TaskDefinition,
};
use crate::model::Tag;

/// Why a task definition request was refused; the variant is the ECS exception to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDefinitionError {
    /// ECS's `ClientException`: the definition is inconsistent or breaks a documented rule.
    #[error("{0}")]
    Client(String),
    /// ECS's `InvalidParameterException`: a value outside a member's allowed values.
    #[error("{0}")]
    InvalidParameter(String),
}

pub(crate) type Result<T, E = TaskDefinitionError> = std::result::Result<T, E>;

pub(crate) fn client(message: impl Into<String>) -> TaskDefinitionError {
    TaskDefinitionError::Client(message.into())
}

/// Values of `networkMode`.
pub const NETWORK_MODES: &[&str] = &["bridge", "host", "awsvpc", "none"];
/// Values of `requiresCompatibilities` and `compatibilities`.
pub const COMPATIBILITIES: &[&str] = &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"];
/// Values of `logConfiguration.logDriver`.
pub const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "awsfirelens",
];
/// Most containers one task definition may hold (an ECS quota).
pub const MAX_CONTAINERS: usize = 10;
/// Largest task definition ECS accepts, in bytes of JSON.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;
/// The smallest memory limit Docker accepts for a container, in MiB.
pub const MIN_CONTAINER_MEMORY: i32 = 6;

/// Checks that `value` is one of `allowed`, naming the member and the allowed values.
pub(crate) fn check_enum(member: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(TaskDefinitionError::InvalidParameter(format!(
            "Invalid value '{value}' for {member}: use one of {}.",
            allowed.join(", ")
        )))
    }
}

pub(crate) fn check_range(what: &str, value: i32, min: i32, max: i32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(client(format!(
            "Invalid {what}: {value} is outside the allowed range {min} to {max}."
        )))
    }
}

/// Parses a task-level `cpu`: CPU units (`1024`) or vCPUs (`1 vCPU`, `0.5 vcpu`); returns
/// the CPU units, which is what ECS stores. EC2 and external tasks accept 128 to 196608.
pub fn parse_task_cpu(text: &str) -> Result<u32> {
    let units = parse_scaled(text, "vcpu").ok_or_else(|| {
        client(format!(
            "Invalid 'cpu' setting for task: '{text}'. Use CPU units (for example 1024) or vCPUs (for example 1 vCPU)."
        ))
    })?;
    if !(128..=196_608).contains(&units) {
        return Err(client(format!(
            "Invalid 'cpu' setting for task: {units} CPU units is outside the supported range 128 (0.125 vCPU) to 196608 (192 vCPU)."
        )));
    }
    Ok(units)
}

/// Parses a task-level `memory`: MiB (`2048`) or GB (`2 GB`, `0.5GB`); returns the MiB,
/// which is what ECS stores.
pub fn parse_task_memory(text: &str) -> Result<u32> {
    let mib = parse_scaled(text, "gb").ok_or_else(|| {
        client(format!(
            "Invalid 'memory' setting for task: '{text}'. Use MiB (for example 2048) or GB (for example 2 GB)."
        ))
    })?;
    if mib < MIN_CONTAINER_MEMORY as u32 {
        return Err(client(format!(
            "Invalid 'memory' setting for task: {mib} MiB is below the minimum of {MIN_CONTAINER_MEMORY} MiB."
        )));
    }
    Ok(mib)
}

/// A whole number, or a decimal followed by `unit` (any case, optional space) scaled by 1024.
fn parse_scaled(text: &str, unit: &str) -> Option<u32> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let lower = text.to_ascii_lowercase();
    let number = lower.strip_suffix(unit)?.trim_end();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let scaled = number.parse::<f64>().ok()? * 1024.0;
    (scaled.is_finite() && scaled.fract() == 0.0 && scaled > 0.0 && scaled <= u32::MAX as f64)
        .then_some(scaled as u32)
}

/// Whether Fargate offers a task size of `cpu` units with `memory` MiB.
pub fn fargate_size_exists(cpu: u32, memory: u32) -> bool {
    let gib = |n: u32| n * 1024;
    let stepped =
        |lo: u32, hi: u32, step: u32| (lo..=hi).contains(&memory) && memory.is_multiple_of(step);
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => stepped(gib(1), gib(4), 1024),
        1024 => stepped(gib(2), gib(8), 1024),
        2048 => stepped(gib(4), gib(16), 1024),
        4096 => stepped(gib(8), gib(30), 1024),
        8192 => stepped(gib(16), gib(60), gib(4)),
        16384 => stepped(gib(32), gib(120), gib(8)),
        _ => false,
    }
}

/// Validates a RegisterTaskDefinition input and returns the task definition ECS would
/// register: defaults filled in, cpu/memory in integer form, `requiresAttributes` and
/// `compatibilities` computed; plus its tags. The caller adds ARN, revision, status and
/// registration time and identity.
pub fn prepare_registration(
    req: &RegisterTaskDefinitionRequest,
) -> Result<(TaskDefinition, Vec<Tag>)> {
    validate(req)?;
    let network_mode = req.network_mode.as_deref().unwrap_or("bridge");
    let mut td = TaskDefinition {
        container_definitions: Some(
            req.container_definitions
                .iter()
                .map(|c| with_container_defaults(c.clone(), network_mode))
                .collect(),
        ),
        family: Some(req.family.clone()),
        task_role_arn: req.task_role_arn.clone(),
        execution_role_arn: req.execution_role_arn.clone(),
        network_mode: req.network_mode.clone(),
        volumes: Some(req.volumes.clone().unwrap_or_default()),
        placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
        runtime_platform: req.runtime_platform.clone(),
        requires_compatibilities: req.requires_compatibilities.clone(),
        cpu: req
            .cpu
            .as_deref()
            .map(parse_task_cpu)
            .transpose()?
            .map(|n| n.to_string()),
        memory: req
            .memory
            .as_deref()
            .map(parse_task_memory)
            .transpose()?
            .map(|n| n.to_string()),
        inference_accelerators: req.inference_accelerators.clone(),
        pid_mode: req.pid_mode.clone(),
        ipc_mode: req.ipc_mode.clone(),
        proxy_configuration: req.proxy_configuration.clone(),
        ephemeral_storage: req.ephemeral_storage.clone(),
        enable_fault_injection: req.enable_fault_injection,
        trusted_execution_configuration: req.trusted_execution_configuration.clone(),
        ..TaskDefinition::default()
    };
    td.requires_attributes = Some(requires_attributes(&td));
    td.compatibilities = Some(compatibilities(&td));
    Ok((td, req.tags.clone().unwrap_or_default()))
}

/// A container definition as ECS returns it after registration: `cpu` 0, `essential` true,
/// empty lists for port mappings, environment, mount points, volumes-from and system
/// controls, port mappings completed with `protocol` tcp and (host and awsvpc modes) a host
/// port equal to the container port, and health check timings at their defaults.
pub fn with_container_defaults(
    mut c: ContainerDefinition,
    network_mode: &str,
) -> ContainerDefinition {
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    for mapping in c.port_mappings.get_or_insert_with(Vec::new) {
        mapping.protocol.get_or_insert_with(|| "tcp".to_string());
        if matches!(network_mode, "host" | "awsvpc") && mapping.host_port.is_none() {
            mapping.host_port = mapping.container_port;
        }
    }
    if let Some(check) = &mut c.health_check {
        check.interval.get_or_insert(30);
        check.timeout.get_or_insert(5);
        check.retries.get_or_insert(3);
    }
    c
}

/// Builds a request from JSON, for the tests of this module and its parts.
#[cfg(test)]
pub(crate) fn request(json: serde_json::Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(json).expect("test request parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_cpu_accepts_units_and_vcpus_and_stores_units() {
        assert_eq!(parse_task_cpu("1024"), Ok(1024));
        assert_eq!(parse_task_cpu("1 vCPU"), Ok(1024));
        assert_eq!(parse_task_cpu("0.25 vcpu"), Ok(256));
        assert_eq!(parse_task_cpu("2vCPU"), Ok(2048));
        assert!(parse_task_cpu("lots").is_err());
        assert!(parse_task_cpu("-1").is_err());
        assert!(parse_task_cpu("64").is_err(), "below 128 units");
        assert!(parse_task_cpu("1.0001 vCPU").is_err(), "not whole units");
    }

    #[test]
    fn task_memory_accepts_mib_and_gb_and_stores_mib() {
        assert_eq!(parse_task_memory("512"), Ok(512));
        assert_eq!(parse_task_memory("2 GB"), Ok(2048));
        assert_eq!(parse_task_memory("0.5GB"), Ok(512));
        assert_eq!(parse_task_memory("1 gb"), Ok(1024));
        assert!(parse_task_memory("2 TB").is_err());
        assert!(parse_task_memory("").is_err());
        assert!(parse_task_memory("4").is_err(), "below Docker's minimum");
    }

    #[test]
    fn fargate_sizes_follow_the_documented_table() {
        assert!(fargate_size_exists(256, 512));
        assert!(!fargate_size_exists(256, 4096));
        assert!(fargate_size_exists(512, 3072));
        assert!(fargate_size_exists(4096, 30720));
        assert!(fargate_size_exists(8192, 20480));
        assert!(!fargate_size_exists(8192, 17408), "8 vCPU steps by 4 GB");
        assert!(fargate_size_exists(16384, 122880));
        assert!(!fargate_size_exists(300, 1024));
    }

    #[test]
    fn registration_fills_in_the_defaults_ecs_returns() {
        let req = request(json!({
            "family": "web",
            "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128,
                "portMappings": [{"containerPort": 80}],
                "healthCheck": {"command": ["CMD", "true"]}}]
        }));
        let (td, tags) = prepare_registration(&req).expect("valid");
        assert!(tags.is_empty());
        let json = serde_json::to_value(&td).expect("serializes");
        let c = &json["containerDefinitions"][0];
        assert_eq!(c["cpu"], 0);
        assert_eq!(c["essential"], true);
        assert_eq!(c["environment"], json!([]));
        assert_eq!(c["mountPoints"], json!([]));
        assert_eq!(c["volumesFrom"], json!([]));
        assert_eq!(c["systemControls"], json!([]));
        assert_eq!(
            c["portMappings"],
            json!([{"containerPort": 80, "protocol": "tcp"}])
        );
        assert_eq!(
            c["healthCheck"],
            json!({"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3})
        );
        assert_eq!(json["volumes"], json!([]));
        assert_eq!(json["placementConstraints"], json!([]));
        assert_eq!(json["compatibilities"], json!(["EXTERNAL", "EC2"]));
        assert!(json.get("networkMode").is_none(), "bridge stays implicit");
        assert!(
            json.get("revision").is_none(),
            "the caller numbers revisions"
        );
    }

    #[test]
    fn host_and_awsvpc_modes_default_the_host_port_to_the_container_port() {
        for mode in ["host", "awsvpc"] {
            let req = request(json!({
                "family": "web", "networkMode": mode, "memory": "512",
                "containerDefinitions": [{"name": "web", "image": "nginx",
                    "portMappings": [{"containerPort": 8080, "protocol": "udp"}]}]
            }));
            let (td, _) = prepare_registration(&req).expect("valid");
            let mapping = &td.container_definitions.expect("containers")[0]
                .port_mappings
                .clone()
                .expect("mappings")[0];
            assert_eq!(mapping.host_port, Some(8080), "{mode}");
            assert_eq!(mapping.protocol.as_deref(), Some("udp"));
        }
    }

    #[test]
    fn unit_forms_of_task_cpu_and_memory_are_stored_as_integers() {
        let req = request(json!({
            "family": "app", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "0.5 vCPU", "memory": "1 GB",
            "containerDefinitions": [{"name": "app", "image": "busybox"}],
            "tags": [{"key": "team", "value": "a"}]
        }));
        let (td, tags) = prepare_registration(&req).expect("valid");
        assert_eq!(td.cpu.as_deref(), Some("512"));
        assert_eq!(td.memory.as_deref(), Some("1024"));
        assert_eq!(tags.len(), 1);
        assert_eq!(
            td.compatibilities,
            Some(vec!["EC2".to_string(), "FARGATE".to_string()])
        );
    }
}
