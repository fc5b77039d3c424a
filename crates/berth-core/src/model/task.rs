//! The task shapes: Task, Container, NetworkBinding, overrides, and the placement shapes that
//! RunTask and services accept.

use super::common::{Attachment, Attribute, Tag, Timestamp};
use super::status::{Connectivity, HealthStatus, TaskStatus};
use super::task_definition::{
    EnvironmentFile, EphemeralStorage, InferenceAccelerator, ResourceRequirement,
};
use super::KeyValuePair;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A task as DescribeTasks returns it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub attachments: Option<Vec<Attachment>>,
    pub attributes: Option<Vec<Attribute>>,
    pub availability_zone: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub cluster_arn: Option<String>,
    pub connectivity: Option<Connectivity>,
    pub connectivity_at: Option<Timestamp>,
    pub container_instance_arn: Option<String>,
    pub containers: Option<Vec<Container>>,
    pub cpu: Option<String>,
    pub created_at: Option<Timestamp>,
    pub desired_status: Option<TaskStatus>,
    pub enable_execute_command: Option<bool>,
    pub execution_stopped_at: Option<Timestamp>,
    pub group: Option<String>,
    pub health_status: Option<HealthStatus>,
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    pub last_status: Option<TaskStatus>,
    pub launch_type: Option<String>,
    pub memory: Option<String>,
    pub overrides: Option<TaskOverride>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub started_by: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_at: Option<Timestamp>,
    pub stopped_reason: Option<String>,
    pub stopping_at: Option<Timestamp>,
    pub tags: Option<Vec<Tag>>,
    pub task_arn: Option<String>,
    pub task_definition_arn: Option<String>,
    pub version: Option<i64>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Berth's record (not in ECS's Task shape, never shown by DescribeTasks): until when the
    /// task is protected from scale-in, as UpdateTaskProtection set it. Protection is on while
    /// now is before it; GetTaskProtection shows it as a [`ProtectedTask`].
    pub protection_expires_at: Option<Timestamp>,
    /// Berth's record (never shown by DescribeTasks): the network an awsvpc task's interface
    /// is on, for the agent that sets it up.
    pub task_network: Option<crate::awsvpc::TaskNetwork>,
}

/// A task's scale-in protection, as UpdateTaskProtection and GetTaskProtection return it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedTask {
    pub task_arn: Option<String>,
    pub protection_enabled: Option<bool>,
    pub expiration_date: Option<Timestamp>,
}

/// One container of a task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: Option<String>,
    pub task_arn: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub last_status: Option<TaskStatus>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub network_bindings: Option<Vec<NetworkBinding>>,
    pub network_interfaces: Option<Vec<NetworkInterface>>,
    pub health_status: Option<HealthStatus>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub gpu_ids: Option<Vec<String>>,
    /// The ECS managed agents of the container (`ExecuteCommandAgent` when the task runs
    /// with `enableExecuteCommand`); derived when the task is shown, never stored.
    pub managed_agents: Option<Vec<ManagedAgent>>,
}

/// An ECS managed agent of a container.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedAgent {
    pub last_started_at: Option<crate::model::common::Timestamp>,
    /// `ExecuteCommandAgent`
    pub name: Option<String>,
    pub reason: Option<String>,
    pub last_status: Option<String>,
}

/// A host port bound to a container port.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: Option<String>,
    pub container_port: Option<i32>,
    pub host_port: Option<i32>,
    pub protocol: Option<String>,
    pub container_port_range: Option<String>,
    pub host_port_range: Option<String>,
}

/// A network interface of a container (awsvpc mode).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub attachment_id: Option<String>,
    pub private_ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

/// What RunTask and StartTask may change of the task definition for one task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    pub container_overrides: Option<Vec<ContainerOverride>>,
    pub cpu: Option<String>,
    pub inference_accelerator_overrides: Option<Vec<InferenceAcceleratorOverride>>,
    pub execution_role_arn: Option<String>,
    pub memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub ephemeral_storage: Option<EphemeralStorage>,
}

/// Per-container overrides.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: Option<String>,
    pub command: Option<Vec<String>>,
    pub environment: Option<Vec<KeyValuePair>>,
    pub environment_files: Option<Vec<EnvironmentFile>>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// An inference accelerator override.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAcceleratorOverride {
    pub device_name: Option<String>,
    pub device_type: Option<String>,
}

/// A placement constraint of RunTask or a service (`distinctInstance` or `memberOf`).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub expression: Option<String>,
}

/// A placement strategy (`binpack`, `spread` or `random`, with its field).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub field: Option<String>,
}

/// One container's change of state, as an agent reports it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    pub container_name: Option<String>,
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub exit_code: Option<i32>,
    pub network_bindings: Option<Vec<NetworkBinding>>,
    pub reason: Option<String>,
    pub status: Option<String>,
    /// Berth extension (not in the ECS model): the container's health as the agent sees it.
    pub health_status: Option<String>,
}
