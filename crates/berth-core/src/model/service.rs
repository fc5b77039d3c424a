//! The service shapes: Service, its deployments and events, the deployment configuration, and
//! the service deployment and service revision history (ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions), as the botocore ECS model names them.
//!
//! Members whose shapes belong to features Berth does not run (Service Connect, VPC Lattice,
//! managed EBS volumes, lifecycle hooks, ECS-managed resources) are kept as raw
//! JSON values: requests naming them are refused before anything is stored, so they never
//! need a typed form here.

use super::cluster::CapacityProviderStrategyItem;
use super::common::{Tag, Timestamp};
use super::status::{
    DeploymentRolloutState, DeploymentStatus, RollbackMonitorsStatus, ServiceDeploymentStatus,
    ServiceStatus,
};
use super::task::{PlacementConstraint, PlacementStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

/// A service as DescribeServices returns it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: Option<String>,
    pub service_name: Option<String>,
    pub cluster_arn: Option<String>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub status: Option<ServiceStatus>,
    pub desired_count: Option<i32>,
    /// Not stored: counted from the tasks when the service is shown.
    pub running_count: Option<i32>,
    /// Not stored: counted from the tasks when the service is shown.
    pub pending_count: Option<i32>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub task_definition: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub task_sets: Option<Vec<TaskSet>>,
    pub deployments: Option<Vec<Deployment>>,
    pub role_arn: Option<String>,
    pub events: Option<Vec<ServiceEvent>>,
    pub created_at: Option<Timestamp>,
    pub current_service_deployment: Option<String>,
    pub current_service_revisions: Option<Vec<ServiceCurrentRevisionSummary>>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i32>,
    /// REPLICA or DAEMON.
    pub scheduling_strategy: Option<String>,
    pub deployment_controller: Option<DeploymentController>,
    pub tags: Option<Vec<Tag>>,
    pub created_by: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    /// TASK_DEFINITION, SERVICE or NONE.
    pub propagate_tags: Option<String>,
    pub enable_execute_command: Option<bool>,
    pub availability_zone_rebalancing: Option<String>,
    pub resource_management_type: Option<String>,
}

/// A load balancer a service registers its tasks with.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub target_group_arn: Option<String>,
    pub load_balancer_name: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<i32>,
    pub advanced_configuration: Option<AdvancedConfiguration>,
}

/// Blue/green settings of a load balancer.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfiguration {
    pub alternate_target_group_arn: Option<String>,
    pub production_listener_rule: Option<String>,
    pub test_listener_rule: Option<String>,
    pub role_arn: Option<String>,
}

/// A Cloud Map registry a service registers its tasks with.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    pub registry_arn: Option<String>,
    pub port: Option<i32>,
    pub container_name: Option<String>,
    pub container_port: Option<i32>,
}

/// How a deployment moves tasks: the bounds of a rolling update and the circuit breaker.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    pub maximum_percent: Option<i32>,
    pub minimum_healthy_percent: Option<i32>,
    pub alarms: Option<DeploymentAlarms>,
    /// ROLLING, BLUE_GREEN, LINEAR or CANARY.
    pub strategy: Option<String>,
    pub bake_time_in_minutes: Option<i32>,
    pub lifecycle_hooks: Option<Vec<Value>>,
    pub linear_configuration: Option<LinearConfiguration>,
    pub canary_configuration: Option<CanaryConfiguration>,
}

/// The deployment circuit breaker: fail a deployment whose tasks keep failing, and optionally
/// roll back to the last completed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// CloudWatch alarms that fail a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    pub alarm_names: Vec<String>,
    pub rollback: bool,
    pub enable: bool,
}

/// Steps of a LINEAR deployment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearConfiguration {
    pub step_percent: Option<f64>,
    pub step_bake_time_in_minutes: Option<i32>,
}

/// The canary step of a CANARY deployment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfiguration {
    pub canary_percent: Option<f64>,
    pub canary_bake_time_in_minutes: Option<i32>,
}

/// Who runs deployments: ECS (rolling updates), CODE_DEPLOY or EXTERNAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentController {
    #[serde(rename = "type")]
    pub type_: String,
}

/// The awsvpc network configuration of a service or task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// Subnets and security groups of awsvpc tasks.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<String>,
}

/// A task set of a service with the EXTERNAL (or CODE_DEPLOY) deployment controller: a task
/// definition and its configuration, run at a percentage (`scale`) of the service's desired
/// count. Stored inside the service record, as deployments are.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSet {
    /// `ecs-svc/` and 19 digits, like a deployment id.
    pub id: Option<String>,
    pub task_set_arn: Option<String>,
    pub service_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub started_by: Option<String>,
    pub external_id: Option<String>,
    /// PRIMARY, ACTIVE or DRAINING.
    pub status: Option<String>,
    pub task_definition: Option<String>,
    pub computed_desired_count: Option<i32>,
    /// Not stored: counted from the tasks when the task set is shown.
    pub pending_count: Option<i32>,
    /// Not stored: counted from the tasks when the task set is shown.
    pub running_count: Option<i32>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub scale: Option<Scale>,
    /// STEADY_STATE or STABILIZING.
    pub stability_status: Option<String>,
    pub stability_status_at: Option<Timestamp>,
    pub tags: Option<Vec<Tag>>,
    pub fargate_ephemeral_storage: Option<DeploymentEphemeralStorage>,
    /// Berth's record (never shown): the `clientToken` CreateTaskSet was given, so a retry
    /// answers this set instead of making another.
    pub client_token: Option<String>,
}

/// The share of a service's desired count a task set runs.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    /// 0 to 100.
    pub value: Option<f64>,
    /// PERCENT.
    pub unit: Option<String>,
}

/// One deployment of a service: a task definition and how many of its tasks run.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits.
    pub id: Option<String>,
    pub status: Option<DeploymentStatus>,
    pub task_definition: Option<String>,
    pub desired_count: Option<i32>,
    /// Not stored: counted from the tasks when the service is shown.
    pub pending_count: Option<i32>,
    /// Not stored: counted from the tasks when the service is shown.
    pub running_count: Option<i32>,
    pub failed_tasks: Option<i32>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub launch_type: Option<String>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub rollout_state: Option<DeploymentRolloutState>,
    pub rollout_state_reason: Option<String>,
    pub service_connect_configuration: Option<Value>,
    pub service_connect_resources: Option<Vec<ServiceConnectServiceResource>>,
    pub volume_configurations: Option<Vec<Value>>,
    pub fargate_ephemeral_storage: Option<DeploymentEphemeralStorage>,
    pub vpc_lattice_configurations: Option<Vec<Value>>,
}

/// A Cloud Map service that Service Connect created.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectServiceResource {
    pub discovery_name: Option<String>,
    pub discovery_arn: Option<String>,
}

/// The key of Fargate ephemeral storage encryption.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEphemeralStorage {
    pub kms_key_id: Option<String>,
}

/// One entry of a service's event log (newest first).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: Option<String>,
    pub created_at: Option<Timestamp>,
    pub message: Option<String>,
}

/// How many tasks of one service revision a service runs now.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCurrentRevisionSummary {
    pub arn: Option<String>,
    pub requested_task_count: Option<i32>,
    pub running_task_count: Option<i32>,
    pub pending_task_count: Option<i32>,
}

/// A service deployment as DescribeServiceDeployments returns it: one change of a service
/// from its source revisions to a target revision.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeployment {
    pub service_deployment_arn: Option<String>,
    pub service_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub source_service_revisions: Option<Vec<ServiceRevisionSummary>>,
    pub target_service_revision: Option<ServiceRevisionSummary>,
    pub status: Option<ServiceDeploymentStatus>,
    pub status_reason: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub lifecycle_hook_details: Option<Vec<Value>>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub rollback: Option<Rollback>,
    pub deployment_circuit_breaker: Option<ServiceDeploymentCircuitBreaker>,
    pub alarms: Option<ServiceDeploymentAlarms>,
}

/// A service deployment as ListServiceDeployments returns it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentBrief {
    pub service_deployment_arn: Option<String>,
    pub service_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub started_at: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub target_service_revision_arn: Option<String>,
    pub status: Option<ServiceDeploymentStatus>,
    pub status_reason: Option<String>,
}

/// A service revision and how many of its tasks are asked for, running and pending.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    pub arn: Option<String>,
    pub requested_task_count: Option<i32>,
    pub running_task_count: Option<i32>,
    pub pending_task_count: Option<i32>,
    pub requested_test_traffic_weight: Option<f64>,
    pub requested_production_traffic_weight: Option<f64>,
}

/// The rollback of a service deployment: why, when, and to which revision.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub reason: Option<String>,
    pub started_at: Option<Timestamp>,
    pub service_revision_arn: Option<String>,
}

/// What the circuit breaker saw of one service deployment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentCircuitBreaker {
    pub status: Option<RollbackMonitorsStatus>,
    pub failure_count: Option<i32>,
    pub threshold: Option<i32>,
}

/// What the alarms saw of one service deployment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentAlarms {
    pub status: Option<RollbackMonitorsStatus>,
    pub alarm_names: Option<Vec<String>>,
    pub triggered_alarm_names: Option<Vec<String>>,
}

/// A service revision: the configuration a service deployment rolled out, frozen.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevision {
    pub service_revision_arn: Option<String>,
    pub service_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub task_definition: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub launch_type: Option<String>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub container_images: Option<Vec<ContainerImage>>,
    pub guard_duty_enabled: Option<bool>,
    pub service_connect_configuration: Option<Value>,
    pub volume_configurations: Option<Vec<Value>>,
    pub fargate_ephemeral_storage: Option<DeploymentEphemeralStorage>,
    pub created_at: Option<Timestamp>,
    pub vpc_lattice_configurations: Option<Vec<Value>>,
    pub resolved_configuration: Option<Value>,
    pub ecs_managed_resources: Option<Value>,
}

/// An image a service revision runs, by container.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    pub container_name: Option<String>,
    pub image_digest: Option<String>,
    pub image: Option<String>,
}

/// The `createdAt` filter of ListServiceDeployments.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAt {
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_serializes_with_ecs_field_names() {
        let service = Service {
            service_name: Some("web".into()),
            enable_ecs_managed_tags: Some(true),
            deployment_configuration: Some(DeploymentConfiguration {
                deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                    enable: true,
                    rollback: false,
                }),
                maximum_percent: Some(200),
                ..DeploymentConfiguration::default()
            }),
            ..Service::default()
        };
        let json = serde_json::to_value(&service).expect("serializes");
        assert_eq!(json["serviceName"], "web");
        assert_eq!(json["enableECSManagedTags"], true);
        assert_eq!(
            json["deploymentConfiguration"]["deploymentCircuitBreaker"],
            serde_json::json!({"enable": true, "rollback": false})
        );
        assert!(json.get("deployments").is_none());
    }

    #[test]
    fn circuit_breaker_needs_both_enable_and_rollback() {
        let missing: Result<DeploymentCircuitBreaker, _> =
            serde_json::from_str(r#"{"enable": true}"#);
        assert!(missing.is_err());
    }
}
