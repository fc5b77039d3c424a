//! The inputs and outputs of the task set operations, with ECS's member names.

use berth_core::model::cluster::CapacityProviderStrategyItem;
use berth_core::model::service::{
    LoadBalancer, NetworkConfiguration, Scale, ServiceRegistry, TaskSet,
};
use berth_core::model::{Failure, Tag};
use serde::{Deserialize, Serialize};

/// Input of CreateTaskSet.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskSetRequest {
    pub(super) service: String,
    pub(super) cluster: String,
    pub(super) external_id: Option<String>,
    pub(super) task_definition: String,
    pub(super) network_configuration: Option<NetworkConfiguration>,
    pub(super) load_balancers: Option<Vec<LoadBalancer>>,
    pub(super) service_registries: Option<Vec<ServiceRegistry>>,
    pub(super) launch_type: Option<String>,
    pub(super) capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub(super) platform_version: Option<String>,
    pub(super) scale: Option<Scale>,
    /// A retry with the same token answers the set the first call made.
    pub(super) client_token: Option<String>,
    pub(super) tags: Option<Vec<Tag>>,
}

/// Input of DescribeTaskSets.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskSetsRequest {
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) task_sets: Option<Vec<String>>,
    pub(super) include: Option<Vec<String>>,
}

/// Input of UpdateTaskSet.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskSetRequest {
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) task_set: String,
    pub(super) scale: Scale,
}

/// Input of DeleteTaskSet.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskSetRequest {
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) task_set: String,
    pub(super) force: Option<bool>,
}

/// Input of UpdateServicePrimaryTaskSet.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServicePrimaryTaskSetRequest {
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) primary_task_set: String,
}

/// Output of CreateTaskSet, UpdateTaskSet, DeleteTaskSet and UpdateServicePrimaryTaskSet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSetResponse {
    pub(super) task_set: TaskSet,
}

/// Output of DescribeTaskSets.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskSetsResponse {
    pub(super) task_sets: Vec<TaskSet>,
    pub(super) failures: Vec<Failure>,
}
