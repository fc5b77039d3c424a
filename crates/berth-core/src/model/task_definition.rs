//! The task definition shapes: `TaskDefinition`, `ContainerDefinition` and everything nested in
//! them, plus the RegisterTaskDefinition input, with exactly the members of the ECS model.
//! Enums are strings (checked by `crate::task_definition`); members the model marks required
//! are not `Option`, so a request that leaves one out is rejected while it is parsed.

use super::common::{Attribute, KeyValuePair, Tag, Timestamp};
use super::status::TaskDefinitionStatus;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

/// A string-to-string map (`dockerLabels`, log and driver options, volume labels).
pub type StringMap = BTreeMap<String, String>;

/// A registered task definition revision, as DescribeTaskDefinition returns it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub task_definition_arn: Option<String>,
    pub container_definitions: Option<Vec<ContainerDefinition>>,
    pub family: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub network_mode: Option<String>,
    pub revision: Option<i32>,
    pub volumes: Option<Vec<Volume>>,
    pub status: Option<TaskDefinitionStatus>,
    pub requires_attributes: Option<Vec<Attribute>>,
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    pub compatibilities: Option<Vec<String>>,
    pub runtime_platform: Option<RuntimePlatform>,
    pub requires_compatibilities: Option<Vec<String>>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub proxy_configuration: Option<ProxyConfiguration>,
    pub registered_at: Option<Timestamp>,
    pub deregistered_at: Option<Timestamp>,
    pub delete_requested_at: Option<Timestamp>,
    pub registered_by: Option<String>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub enable_fault_injection: Option<bool>,
    pub trusted_execution_configuration: Option<TrustedExecutionConfiguration>,
}

/// A task definition revision as stored: the ECS shape plus its tags, which ECS returns
/// beside the task definition rather than inside it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    #[serde(flatten)]
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The input of RegisterTaskDefinition.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionRequest {
    pub family: String,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub network_mode: Option<String>,
    pub container_definitions: Vec<ContainerDefinition>,
    pub volumes: Option<Vec<Volume>>,
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    pub requires_compatibilities: Option<Vec<String>>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub proxy_configuration: Option<ProxyConfiguration>,
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub runtime_platform: Option<RuntimePlatform>,
    pub enable_fault_injection: Option<bool>,
    pub trusted_execution_configuration: Option<TrustedExecutionConfiguration>,
}

/// One container of a task definition.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    pub name: Option<String>,
    pub image: Option<String>,
    pub repository_credentials: Option<RepositoryCredentials>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub links: Option<Vec<String>>,
    pub port_mappings: Option<Vec<PortMapping>>,
    pub essential: Option<bool>,
    pub restart_policy: Option<ContainerRestartPolicy>,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: Option<Vec<KeyValuePair>>,
    pub environment_files: Option<Vec<EnvironmentFile>>,
    pub mount_points: Option<Vec<MountPoint>>,
    pub volumes_from: Option<Vec<VolumeFrom>>,
    pub linux_parameters: Option<LinuxParameters>,
    pub secrets: Option<Vec<Secret>>,
    pub depends_on: Option<Vec<ContainerDependency>>,
    pub start_timeout: Option<i32>,
    pub stop_timeout: Option<i32>,
    pub version_consistency: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub working_directory: Option<String>,
    pub disable_networking: Option<bool>,
    pub privileged: Option<bool>,
    pub readonly_root_filesystem: Option<bool>,
    pub dns_servers: Option<Vec<String>>,
    pub dns_search_domains: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<HostEntry>>,
    pub docker_security_options: Option<Vec<String>>,
    pub interactive: Option<bool>,
    pub pseudo_terminal: Option<bool>,
    pub docker_labels: Option<StringMap>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub log_configuration: Option<LogConfiguration>,
    pub health_check: Option<HealthCheck>,
    pub system_controls: Option<Vec<SystemControl>>,
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    pub firelens_configuration: Option<FirelensConfiguration>,
    pub credential_specs: Option<Vec<String>>,
}

/// Credentials (a Secrets Manager secret) for pulling from a private registry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    pub credentials_parameter: String,
}

/// A container port published on the host or the task's network interface.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: Option<i32>,
    pub host_port: Option<i32>,
    /// `tcp` | `udp`
    pub protocol: Option<String>,
    pub name: Option<String>,
    /// `http` | `http2` | `grpc`
    pub app_protocol: Option<String>,
    /// `start-end`, for awsvpc and bridge tasks.
    pub container_port_range: Option<String>,
}

/// When ECS restarts a container in place instead of replacing the task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRestartPolicy {
    pub enabled: bool,
    pub ignored_exit_codes: Option<Vec<i32>>,
    pub restart_attempt_period: Option<i32>,
}

/// A file of environment variables (in S3 on AWS).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    pub value: String,
    /// `s3`
    #[serde(rename = "type")]
    pub type_: String,
}

/// A task volume mounted into a container.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    pub source_volume: Option<String>,
    pub container_path: Option<String>,
    pub read_only: Option<bool>,
}

/// Mount all volumes of another container of the task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    pub source_container: Option<String>,
    pub read_only: Option<bool>,
}

/// Linux-specific options of a container.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    pub capabilities: Option<KernelCapabilities>,
    pub devices: Option<Vec<Device>>,
    pub init_process_enabled: Option<bool>,
    pub shared_memory_size: Option<i32>,
    pub tmpfs: Option<Vec<Tmpfs>>,
    pub max_swap: Option<i32>,
    pub swappiness: Option<i32>,
}

/// Kernel capabilities added to or dropped from Docker's default set.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    pub add: Option<Vec<String>>,
    pub drop: Option<Vec<String>>,
}

/// A host device exposed to the container.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub host_path: String,
    pub container_path: Option<String>,
    /// Each `read` | `write` | `mknod`.
    pub permissions: Option<Vec<String>>,
}

/// A tmpfs mount.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    pub container_path: String,
    /// Size in MiB.
    pub size: i32,
    pub mount_options: Option<Vec<String>>,
}

/// A secret exposed to the container as an environment variable (or log option).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub name: String,
    pub value_from: String,
}

/// A startup dependency on another container of the task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    pub container_name: String,
    /// `START` | `COMPLETE` | `SUCCESS` | `HEALTHY`
    pub condition: String,
}

/// An `/etc/hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    pub hostname: String,
    pub ip_address: String,
}

/// A resource limit (`nofile`, `nproc`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

/// Where the container's output goes.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    /// `json-file` | `syslog` | `journald` | `gelf` | `fluentd` | `awslogs` | `splunk` |
    /// `awsfirelens`
    pub log_driver: String,
    pub options: Option<StringMap>,
    pub secret_options: Option<Vec<Secret>>,
}

/// A container health check (Docker HEALTHCHECK); times in seconds.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval: Option<i32>,
    pub timeout: Option<i32>,
    pub retries: Option<i32>,
    pub start_period: Option<i32>,
}

/// A namespaced kernel parameter (sysctl).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemControl {
    pub namespace: Option<String>,
    pub value: Option<String>,
}

/// A special resource the container needs (GPUs, inference accelerators).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirement {
    pub value: String,
    /// `GPU` | `InferenceAccelerator`
    #[serde(rename = "type")]
    pub type_: String,
}

/// FireLens log router settings.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirelensConfiguration {
    /// `fluentd` | `fluentbit`
    #[serde(rename = "type")]
    pub type_: String,
    pub options: Option<StringMap>,
}

/// A data volume of a task; at most one of its configurations is set.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: Option<String>,
    pub host: Option<HostVolumeProperties>,
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
    pub fsx_windows_file_server_volume_configuration:
        Option<FSxWindowsFileServerVolumeConfiguration>,
    pub configured_at_launch: Option<bool>,
}

/// A bind mount from the host (or, without a path, a task-scoped scratch directory).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    pub source_path: Option<String>,
}

/// A Docker named volume.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    /// `task` | `shared`
    pub scope: Option<String>,
    pub autoprovision: Option<bool>,
    pub driver: Option<String>,
    pub driver_opts: Option<StringMap>,
    pub labels: Option<StringMap>,
}

/// An Amazon EFS file system volume.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    pub file_system_id: String,
    pub root_directory: Option<String>,
    /// `ENABLED` | `DISABLED`
    pub transit_encryption: Option<String>,
    pub transit_encryption_port: Option<i32>,
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

/// How an EFS volume is accessed.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    pub access_point_id: Option<String>,
    /// `ENABLED` | `DISABLED`
    pub iam: Option<String>,
}

/// An Amazon S3 Files volume.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3FilesVolumeConfiguration {
    pub file_system_arn: String,
    pub root_directory: Option<String>,
    pub transit_encryption_port: Option<i32>,
    pub access_point_arn: Option<String>,
}

/// An Amazon FSx for Windows File Server volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FSxWindowsFileServerVolumeConfiguration {
    pub file_system_id: String,
    pub root_directory: String,
    pub authorization_config: FSxWindowsFileServerAuthorizationConfig,
}

/// Credentials and domain of an FSx for Windows File Server volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FSxWindowsFileServerAuthorizationConfig {
    pub credentials_parameter: String,
    pub domain: String,
}

/// A placement constraint carried by the task definition (`memberOf` only).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionPlacementConstraint {
    /// `memberOf`
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub expression: Option<String>,
}

/// The operating system and CPU architecture the task needs.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    /// `X86_64` | `ARM64`
    pub cpu_architecture: Option<String>,
    /// `LINUX` | `WINDOWS_SERVER_...`
    pub operating_system_family: Option<String>,
}

/// An Elastic Inference accelerator of the task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAccelerator {
    pub device_name: String,
    pub device_type: String,
}

/// App Mesh proxy settings of the task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfiguration {
    /// `APPMESH`
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub container_name: String,
    pub properties: Option<Vec<KeyValuePair>>,
}

/// Task ephemeral storage (Fargate): 21–200 GiB.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_definition_reads_every_nested_shape_with_ecs_names() {
        let json = serde_json::json!({
            "name": "web", "image": "nginx", "cpu": 10, "memory": 128,
            "memoryReservation": 64, "links": ["db"], "essential": true,
            "repositoryCredentials": {"credentialsParameter": "arn:secret"},
            "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp",
                              "name": "http", "appProtocol": "http"}],
            "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
            "environment": [{"name": "A", "value": "1"}],
            "environmentFiles": [{"value": "arn:aws:s3:::b/f.env", "type": "s3"}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/d", "readOnly": true}],
            "volumesFrom": [{"sourceContainer": "db", "readOnly": false}],
            "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                                "devices": [{"hostPath": "/dev/fuse", "permissions": ["read"]}],
                                "initProcessEnabled": true, "sharedMemorySize": 64,
                                "tmpfs": [{"containerPath": "/tmp", "size": 32}],
                                "maxSwap": 0, "swappiness": 10},
            "secrets": [{"name": "S", "valueFrom": "arn:ssm"}],
            "dependsOn": [{"containerName": "db", "condition": "START"}],
            "extraHosts": [{"hostname": "h", "ipAddress": "10.0.0.1"}],
            "dockerLabels": {"b": "2", "a": "1"},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
            "healthCheck": {"command": ["CMD", "true"], "interval": 10},
            "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
            "resourceRequirements": [{"type": "GPU", "value": "1"}],
            "firelensConfiguration": {"type": "fluentbit"},
            "credentialSpecs": ["credentialspec:x"]
        });
        let container: ContainerDefinition = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(container.memory_reservation, Some(64));
        assert_eq!(
            container
                .linux_parameters
                .as_ref()
                .and_then(|l| l.tmpfs.as_ref())
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(serde_json::to_value(&container).expect("serializes"), json);
    }

    #[test]
    fn a_missing_required_nested_member_is_rejected() {
        let bad =
            serde_json::json!({"name": "web", "ulimits": [{"name": "nofile", "softLimit": 1}]});
        assert!(serde_json::from_value::<ContainerDefinition>(bad).is_err());
        let bad = serde_json::json!({"healthCheck": {"interval": 5}});
        assert!(serde_json::from_value::<ContainerDefinition>(bad).is_err());
    }

    #[test]
    fn stored_record_keeps_tags_beside_the_task_definition_fields() {
        let record = TaskDefinitionRecord {
            task_definition: TaskDefinition {
                family: Some("web".into()),
                revision: Some(3),
                registered_at: Some(1.5),
                ..TaskDefinition::default()
            },
            tags: vec![Tag {
                key: Some("team".into()),
                value: Some("a".into()),
            }],
        };
        let json = serde_json::to_value(&record).expect("serializes");
        assert_eq!(json["family"], "web");
        assert_eq!(json["revision"], 3);
        assert_eq!(json["tags"][0]["key"], "team");
        let back: TaskDefinitionRecord = serde_json::from_value(json).expect("parses");
        assert_eq!(back, record);
    }

    #[test]
    fn volumes_and_ephemeral_storage_use_ecs_member_names() {
        let json = serde_json::json!({
            "name": "v",
            "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryption": "ENABLED",
                                       "authorizationConfig": {"iam": "ENABLED"}},
            "s3filesVolumeConfiguration": {"fileSystemArn": "arn:x"},
            "fsxWindowsFileServerVolumeConfiguration": {
                "fileSystemId": "fs-2", "rootDirectory": "\\",
                "authorizationConfig": {"credentialsParameter": "arn:c", "domain": "d"}},
            "configuredAtLaunch": false
        });
        let volume: Volume = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(serde_json::to_value(&volume).expect("serializes"), json);
        let storage: EphemeralStorage =
            serde_json::from_value(serde_json::json!({"sizeInGiB": 30})).expect("parses");
        assert_eq!(storage.size_in_gib, 30);
    }
}

/// How the task is isolated from other workloads on its host (`isolationMode`: SHARED,
/// ISOLATED_SANDBOX or CONFIDENTIAL_SANDBOX) and the attestation policy it is held to.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedExecutionConfiguration {
    pub isolation_mode: Option<String>,
    pub attestation_policy: Option<String>,
}
