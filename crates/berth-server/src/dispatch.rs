//! The one table from ECS operation names to handlers. Each handler takes its typed input and
//! returns its typed output; this module does the parsing and serialising around it.

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::handlers::{
    account_settings, attributes, capacity_providers, clusters, container_instances,
    execute_command, poll_endpoint, service_deployments, services, tags, task_definitions,
    task_protection, task_reports, task_sets, tasks,
};
use crate::protocol::parse_input;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

/// What a handler receives besides its input: the application and the caller.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub app: Arc<App>,
    /// The principal whose signature the request carries.
    pub caller: Principal,
}

impl Deref for Ctx {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// Parses the JSON body as `Req`, runs `handler` and serialises its answer: how every AWS JSON
/// service's operations are run.
pub(crate) async fn call<Req, Resp, F, Fut>(
    ctx: Ctx,
    body: &[u8],
    handler: F,
) -> Result<Vec<u8>, ApiError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Ctx, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    let input: Req = parse_input(body)?;
    let output = handler(ctx, input).await?;
    serde_json::to_vec(&output).map_err(|e| ApiError::server(format!("response encoding: {e}")))
}

/// Runs the operation `op` on the JSON `body`; returns the JSON response body.
pub async fn dispatch(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    crate::authz::authorize_ecs(&ctx, op, body)?;
    match op {
        "CreateCluster" => call(ctx, body, clusters::create_cluster).await,
        "DescribeClusters" => call(ctx, body, clusters::describe_clusters).await,
        "ListClusters" => call(ctx, body, clusters::list_clusters).await,
        "UpdateCluster" => call(ctx, body, clusters::update_cluster).await,
        "UpdateClusterSettings" => call(ctx, body, clusters::update_cluster_settings).await,
        "DeleteCluster" => call(ctx, body, clusters::delete_cluster).await,
        "PutClusterCapacityProviders" => {
            call(
                ctx,
                body,
                capacity_providers::association::put_cluster_capacity_providers,
            )
            .await
        }

        "CreateCapacityProvider" => call(ctx, body, capacity_providers::create).await,
        "DescribeCapacityProviders" => call(ctx, body, capacity_providers::describe).await,
        "UpdateCapacityProvider" => call(ctx, body, capacity_providers::update).await,
        "DeleteCapacityProvider" => call(ctx, body, capacity_providers::delete).await,

        "RegisterTaskDefinition" => call(ctx, body, task_definitions::register).await,
        "DescribeTaskDefinition" => call(ctx, body, task_definitions::describe).await,
        "ListTaskDefinitions" => call(ctx, body, task_definitions::list).await,
        "ListTaskDefinitionFamilies" => call(ctx, body, task_definitions::list_families).await,
        "DeregisterTaskDefinition" => call(ctx, body, task_definitions::deregister).await,
        "DeleteTaskDefinitions" => call(ctx, body, task_definitions::delete).await,

        "RegisterContainerInstance" => call(ctx, body, container_instances::register).await,
        "DeregisterContainerInstance" => call(ctx, body, container_instances::deregister).await,
        "DescribeContainerInstances" => call(ctx, body, container_instances::describe).await,
        "ListContainerInstances" => call(ctx, body, container_instances::list).await,
        "UpdateContainerInstancesState" => call(ctx, body, container_instances::update_state).await,

        "PutAttributes" => call(ctx, body, attributes::put).await,
        "DeleteAttributes" => call(ctx, body, attributes::delete).await,
        "ListAttributes" => call(ctx, body, attributes::list).await,

        "TagResource" => call(ctx, body, tags::tag_resource).await,
        "UntagResource" => call(ctx, body, tags::untag_resource).await,
        "ListTagsForResource" => call(ctx, body, tags::list_tags_for_resource).await,

        "PutAccountSetting" => call(ctx, body, account_settings::put).await,
        "PutAccountSettingDefault" => call(ctx, body, account_settings::put_default).await,
        "ListAccountSettings" => call(ctx, body, account_settings::list).await,
        "DeleteAccountSetting" => call(ctx, body, account_settings::delete).await,

        "RunTask" => call(ctx, body, tasks::run_task).await,
        "StartTask" => call(ctx, body, tasks::start_task).await,
        "StopTask" => call(ctx, body, tasks::stop_task).await,
        "DescribeTasks" => call(ctx, body, tasks::describe_tasks).await,
        "ListTasks" => call(ctx, body, tasks::list_tasks).await,
        "UpdateTaskProtection" => call(ctx, body, task_protection::update).await,
        "ExecuteCommand" => call(ctx, body, execute_command::execute_command).await,
        "GetTaskProtection" => call(ctx, body, task_protection::get).await,
        "DiscoverPollEndpoint" => call(ctx, body, poll_endpoint::discover_poll_endpoint).await,
        "SubmitTaskStateChange" => call(ctx, body, task_reports::submit_task_state_change).await,
        "SubmitContainerStateChange" => {
            call(ctx, body, task_reports::submit_container_state_change).await
        }

        "CreateService" => call(ctx, body, services::create_service).await,
        "UpdateService" => call(ctx, body, services::update_service).await,
        "DeleteService" => call(ctx, body, services::delete_service).await,
        "DescribeServices" => call(ctx, body, services::describe_services).await,
        "ListServices" => call(ctx, body, services::list_services).await,
        "ListServiceDeployments" => call(ctx, body, service_deployments::list).await,
        "DescribeServiceDeployments" => call(ctx, body, service_deployments::describe).await,
        "DescribeServiceRevisions" => {
            call(ctx, body, service_deployments::describe_revisions).await
        }
        "StopServiceDeployment" => call(ctx, body, service_deployments::stop).await,

        "CreateTaskSet" => call(ctx, body, task_sets::create).await,
        "DescribeTaskSets" => call(ctx, body, task_sets::describe).await,
        "UpdateTaskSet" => call(ctx, body, task_sets::update).await,
        "DeleteTaskSet" => call(ctx, body, task_sets::delete).await,
        "UpdateServicePrimaryTaskSet" => call(ctx, body, task_sets::update_primary).await,

        other if ECS_OPERATIONS.contains(&other) => Err(ApiError::unsupported(other)),
        other => Err(ApiError::unknown_operation(other)),
    }
}

/// Every operation of the ECS API (2014-11-13), implemented here or not.
pub const ECS_OPERATIONS: &[&str] = &[
    "ContinueServiceDeployment",
    "CreateCapacityProvider",
    "CreateCluster",
    "CreateDaemon",
    "CreateExpressGatewayService",
    "CreateService",
    "CreateTaskSet",
    "DeleteAccountSetting",
    "DeleteAttributes",
    "DeleteCapacityProvider",
    "DeleteCluster",
    "DeleteDaemon",
    "DeleteDaemonTaskDefinition",
    "DeleteExpressGatewayService",
    "DeleteService",
    "DeleteTaskDefinitions",
    "DeleteTaskSet",
    "DeregisterContainerInstance",
    "DeregisterTaskDefinition",
    "DescribeCapacityProviders",
    "DescribeClusters",
    "DescribeContainerInstances",
    "DescribeDaemon",
    "DescribeDaemonDeployments",
    "DescribeDaemonRevisions",
    "DescribeDaemonTaskDefinition",
    "DescribeExpressGatewayService",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "DescribeServices",
    "DescribeTaskDefinition",
    "DescribeTaskSets",
    "DescribeTasks",
    "DiscoverPollEndpoint",
    "ExecuteCommand",
    "GetTaskProtection",
    "ListAccountSettings",
    "ListAttributes",
    "ListClusters",
    "ListContainerInstances",
    "ListDaemonDeployments",
    "ListDaemonTaskDefinitions",
    "ListDaemons",
    "ListServiceDeployments",
    "ListServices",
    "ListServicesByNamespace",
    "ListTagsForResource",
    "ListTaskDefinitionFamilies",
    "ListTaskDefinitions",
    "ListTasks",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "PutAttributes",
    "PutClusterCapacityProviders",
    "RegisterContainerInstance",
    "RegisterDaemonTaskDefinition",
    "RegisterTaskDefinition",
    "RunTask",
    "StartTask",
    "StopServiceDeployment",
    "StopTask",
    "SubmitAttachmentStateChanges",
    "SubmitContainerStateChange",
    "SubmitTaskStateChange",
    "TagResource",
    "UntagResource",
    "UpdateCapacityProvider",
    "UpdateCluster",
    "UpdateClusterSettings",
    "UpdateContainerAgent",
    "UpdateContainerInstancesState",
    "UpdateDaemon",
    "UpdateExpressGatewayService",
    "UpdateService",
    "UpdateServicePrimaryTaskSet",
    "UpdateTaskProtection",
    "UpdateTaskSet",
];
