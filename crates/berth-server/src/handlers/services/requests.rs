//! The inputs and outputs of the service operations, with ECS's member names.

use berth_core::model::cluster::CapacityProviderStrategyItem;
use berth_core::model::service::{
    DeploymentConfiguration, DeploymentController, LoadBalancer, NetworkConfiguration, Service,
    ServiceRegistry,
};
use berth_core::model::task::{PlacementConstraint, PlacementStrategy};
use berth_core::model::{Failure, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

/// Input of CreateService.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    pub(super) cluster: Option<String>,
    pub(super) service_name: String,
    pub(super) task_definition: Option<String>,
    pub(super) availability_zone_rebalancing: Option<String>,
    pub(super) load_balancers: Option<Vec<LoadBalancer>>,
    pub(super) service_registries: Option<Vec<ServiceRegistry>>,
    pub(super) desired_count: Option<i32>,
    pub(super) client_token: Option<String>,
    pub(super) launch_type: Option<String>,
    pub(super) capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub(super) platform_version: Option<String>,
    pub(super) role: Option<String>,
    pub(super) deployment_configuration: Option<DeploymentConfiguration>,
    pub(super) placement_constraints: Option<Vec<PlacementConstraint>>,
    pub(super) placement_strategy: Option<Vec<PlacementStrategy>>,
    pub(super) network_configuration: Option<NetworkConfiguration>,
    pub(super) health_check_grace_period_seconds: Option<i32>,
    pub(super) scheduling_strategy: Option<String>,
    pub(super) deployment_controller: Option<DeploymentController>,
    pub(super) tags: Option<Vec<Tag>>,
    #[serde(rename = "enableECSManagedTags")]
    pub(super) enable_ecs_managed_tags: Option<bool>,
    pub(super) propagate_tags: Option<String>,
    pub(super) enable_execute_command: Option<bool>,
    pub(super) service_connect_configuration: Option<Value>,
    pub(super) volume_configurations: Option<Vec<Value>>,
    pub(super) vpc_lattice_configurations: Option<Vec<Value>>,
}

/// Input of UpdateService.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    pub(super) cluster: Option<String>,
    pub(super) service: String,
    pub(super) desired_count: Option<i32>,
    pub(super) task_definition: Option<String>,
    pub(super) capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub(super) deployment_configuration: Option<DeploymentConfiguration>,
    pub(super) availability_zone_rebalancing: Option<String>,
    pub(super) network_configuration: Option<NetworkConfiguration>,
    pub(super) placement_constraints: Option<Vec<PlacementConstraint>>,
    pub(super) placement_strategy: Option<Vec<PlacementStrategy>>,
    pub(super) platform_version: Option<String>,
    pub(super) force_new_deployment: Option<bool>,
    pub(super) health_check_grace_period_seconds: Option<i32>,
    pub(super) deployment_controller: Option<DeploymentController>,
    pub(super) enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags")]
    pub(super) enable_ecs_managed_tags: Option<bool>,
    pub(super) load_balancers: Option<Vec<LoadBalancer>>,
    pub(super) propagate_tags: Option<String>,
    pub(super) service_registries: Option<Vec<ServiceRegistry>>,
    pub(super) service_connect_configuration: Option<Value>,
    pub(super) volume_configurations: Option<Vec<Value>>,
    pub(super) vpc_lattice_configurations: Option<Vec<Value>>,
}

/// Input of DeleteService.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    pub(super) cluster: Option<String>,
    pub(super) service: String,
    pub(super) force: Option<bool>,
}

/// Input of DescribeServices.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    pub(super) cluster: Option<String>,
    pub(super) services: Vec<String>,
    pub(super) include: Option<Vec<String>>,
}

/// Input of ListServices.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    pub(super) cluster: Option<String>,
    pub(super) next_token: Option<String>,
    pub(super) max_results: Option<i64>,
    pub(super) launch_type: Option<String>,
    pub(super) scheduling_strategy: Option<String>,
    pub(super) resource_management_type: Option<String>,
}

/// Output of CreateService, UpdateService and DeleteService.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResponse {
    pub(super) service: Service,
}

/// Output of DescribeServices.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesResponse {
    pub(super) services: Vec<Service>,
    pub(super) failures: Vec<Failure>,
}

/// Output of ListServices.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub(super) service_arns: Vec<String>,
    pub(super) next_token: Option<String>,
}
