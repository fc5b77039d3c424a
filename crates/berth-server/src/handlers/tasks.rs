//! Tasks: RunTask, StartTask, StopTask, DescribeTasks and ListTasks. The scheduler
//! (`berth_core::scheduler`, through [`placement`]) picks the instances; placing a task writes
//! only the task (an instance's `remainingResources` derive from its tasks), and placements on
//! a cluster take turns from plan to commit, so two callers can never both take the last of an
//! instance's memory. RunTasks queued behind a turn are placed together, in one commit
//! ([`run_queue`]).

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::capacity_providers;
use crate::handlers::task_lookup::{
    new_task_ids, resolve_task_definition, task_key_of, with_version,
};
use crate::state::{scoped, TaskIndex};
use berth_core::arn::id_of;
use berth_core::model::service::{AwsVpcConfiguration, NetworkConfiguration};
use berth_core::model::task::{PlacementConstraint, PlacementStrategy, Task, TaskOverride};
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::{
    validate_tags, ContainerInstanceStatus, Failure, Tag, TaskDefinitionStatus, TaskStatus,
};
use berth_core::pagination::PageRequest;
use berth_core::resources::task_resources;
use berth_core::scheduler::{default_run_task_strategies, TaskRequest};
use berth_core::task_state::{new_task, request_stop, stop_code, NewTask};
use berth_store::keys;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeSet;

/// Input of RunTask.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    count: Option<i64>,
    group: Option<String>,
    launch_type: Option<String>,
    overrides: Option<TaskOverride>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    placement_strategy: Option<Vec<PlacementStrategy>>,
    started_by: Option<String>,
    tags: Option<Vec<Tag>>,
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    propagate_tags: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    platform_version: Option<String>,
    capacity_provider_strategy:
        Option<Vec<berth_core::model::cluster::CapacityProviderStrategyItem>>,
    #[allow(dead_code)]
    reference_id: Option<String>,
    client_token: Option<String>,
}

/// Input of StartTask.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    task_definition: String,
    group: Option<String>,
    overrides: Option<TaskOverride>,
    started_by: Option<String>,
    tags: Option<Vec<Tag>>,
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    propagate_tags: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    #[allow(dead_code)]
    reference_id: Option<String>,
}

/// Output of RunTask and StartTask.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksResponse {
    tasks: Vec<Task>,
    failures: Vec<Failure>,
}

/// Input of StopTask.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

/// Output of StopTask.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskResponse {
    task: Task,
}

/// Input of DescribeTasks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    cluster: Option<String>,
    tasks: Vec<String>,
    include: Option<Vec<String>>,
}

/// Input of ListTasks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
}

/// Output of ListTasks.
#[skip_serializing_none]
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    task_arns: Vec<String>,
    next_token: Option<String>,
}

/// The most JSON a call's `overrides` may take (ECS's quota: 8 KiB).
pub const MAX_OVERRIDES_BYTES: usize = 8192;

/// Everything common to RunTask and StartTask once validated.
struct Launch {
    cluster: String,
    cluster_arn: String,
    td: TaskDefinition,
    overrides: TaskOverride,
    group: String,
    started_by: Option<String>,
    launch_type: String,
    tags: Vec<Tag>,
    enable_execute_command: bool,
    /// Where an awsvpc task's interface goes.
    vpc: Option<AwsVpcConfiguration>,
}

struct LaunchInput<'a> {
    cluster: Option<&'a str>,
    task_definition: &'a str,
    group: Option<String>,
    launch_type: Option<String>,
    overrides: Option<TaskOverride>,
    started_by: Option<String>,
    tags: Option<Vec<Tag>>,
    enable_ecs_managed_tags: bool,
    enable_execute_command: bool,
    propagate_tags: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    platform_version: Option<String>,
}

fn validate_launch(ctx: &Ctx, input: LaunchInput<'_>) -> Result<Launch, ApiError> {
    let cluster = ctx.active_cluster(input.cluster)?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let record = resolve_task_definition(ctx, input.task_definition)?;
    let td = record.task_definition.clone();
    if td.status != Some(TaskDefinitionStatus::Active) {
        return Err(ApiError::client(format!(
            "TaskDefinition is inactive: {} cannot run new tasks; register or name an ACTIVE revision.",
            td.task_definition_arn.as_deref().unwrap_or(input.task_definition)
        )));
    }
    super::admission::admit_on_cluster(&cluster.value, &td)?;
    let launch_type = input.launch_type.unwrap_or_else(|| "EC2".to_string());
    match launch_type.as_str() {
        "EC2" | "EXTERNAL" | "FARGATE" => {}
        "MANAGED_INSTANCES" => {
            return Err(ApiError::invalid_parameter(
                "Berth runs tasks on registered container instances: use launchType EC2, FARGATE or EXTERNAL, not MANAGED_INSTANCES.",
            ))
        }
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "'{other}' is not a launch type: use EC2, FARGATE or EXTERNAL."
            )))
        }
    }
    check_platform_version(&launch_type, input.platform_version.as_deref())?;
    let compatibilities = td.compatibilities.clone().unwrap_or_default();
    if !compatibilities.is_empty() && !compatibilities.contains(&launch_type) {
        return Err(ApiError::invalid_parameter(format!(
            "Task definition does not support launch_type {launch_type}."
        )));
    }
    let vpc = berth_core::awsvpc::check_configuration(
        td.network_mode.as_deref().unwrap_or("bridge"),
        &launch_type,
        input.network_configuration.as_ref(),
    )
    .map_err(ApiError::invalid_parameter)?;
    let overrides = input.overrides.unwrap_or_default();
    // ECS's quota, which also keeps one call from filling memory with copies of its overrides.
    let size = serde_json::to_vec(&overrides).map_or(0, |bytes| bytes.len());
    if size > MAX_OVERRIDES_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "Container Overrides length must be at most {MAX_OVERRIDES_BYTES} characters; these overrides are {size}."
        )));
    }
    let names: Vec<&str> = td
        .container_definitions
        .iter()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for o in overrides.container_overrides.iter().flatten() {
        let name = o.name.as_deref().unwrap_or("");
        if !names.contains(&name) {
            return Err(ApiError::invalid_parameter(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    let started_by = input.started_by;
    if started_by.as_ref().is_some_and(|s| s.chars().count() > 128) {
        return Err(ApiError::invalid_parameter(
            "startedBy can be at most 128 characters long.",
        ));
    }
    let family = td.family.clone().unwrap_or_default();
    let group = input.group.unwrap_or_else(|| format!("family:{family}"));
    if group.is_empty() || group.chars().count() > 255 {
        return Err(ApiError::invalid_parameter(
            "group must be 1 to 255 characters long.",
        ));
    }
    let mut tags = input.tags.unwrap_or_default();
    validate_tags(&tags).map_err(ApiError::invalid_parameter)?;
    match input.propagate_tags.as_deref() {
        None | Some("NONE") => {}
        Some("TASK_DEFINITION") => berth_core::model::merge_tags(&mut tags, &record.tags),
        Some("SERVICE") => {
            return Err(ApiError::invalid_parameter(
                "propagateTags SERVICE applies to tasks of a service: use TASK_DEFINITION or NONE.",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "'{other}' is not a propagateTags value: use TASK_DEFINITION, SERVICE or NONE."
            )))
        }
    }
    if input.enable_ecs_managed_tags {
        let managed = [Tag {
            key: Some("aws:ecs:clusterName".into()),
            value: Some(cluster_name.clone()),
        }];
        berth_core::model::merge_tags(&mut tags, &managed);
    }
    Ok(Launch {
        cluster_arn: ctx.arns.cluster(&cluster_name),
        cluster: cluster_name,
        td,
        overrides,
        group,
        started_by,
        launch_type,
        tags,
        enable_execute_command: input.enable_execute_command,
        vpc,
    })
}

fn build_task(
    ctx: &Ctx,
    launch: &Launch,
    instance_arn: &str,
    now: f64,
    pick: usize,
) -> (String, Task) {
    let count = launch.td.container_definitions.as_ref().map_or(0, Vec::len);
    let (id, task_arn, container_arns) = new_task_ids(&ctx.arns, &launch.cluster, count);
    let task = new_task(NewTask {
        task_arn,
        cluster_arn: launch.cluster_arn.clone(),
        container_instance_arn: instance_arn.to_string(),
        task_definition: &launch.td,
        container_arns,
        overrides: launch.overrides.clone(),
        started_by: launch.started_by.clone(),
        group: launch.group.clone(),
        launch_type: launch.launch_type.clone(),
        tags: launch.tags.clone(),
        enable_execute_command: launch.enable_execute_command,
        now,
    });
    let mut task = task;
    dress_task(ctx, &mut task, &launch.td, launch.vpc.as_ref(), pick);
    (id, task)
}

fn launch_requirements(launch: &Launch) -> Vec<berth_core::scheduler::RequiredAttribute> {
    requirements_for(&launch.td, &launch.launch_type)
}

/// Runs `count` copies of a task definition, placed by the scheduler with the call's
/// strategies (random when it names none, as ECS does for standalone tasks) and the call's and
/// task definition's constraints. Tasks that fit nowhere are `failures` with ECS's reasons
/// (one per refusing instance), not errors.
pub async fn run_task(ctx: Ctx, req: RunTaskRequest) -> Result<TasksResponse, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid_parameter(format!(
            "count must be between 1 and 10, got {count}."
        )));
    }
    let token = client_token_key(&ctx, req.cluster.as_deref(), req.client_token.as_deref())?;
    if let Some(done) = replay(&ctx, token.as_deref())? {
        return Ok(done);
    }
    let strategies = placement::strategies(
        req.placement_strategy.as_deref(),
        default_run_task_strategies,
    )?;
    placement::constraints(req.placement_constraints.as_deref(), None)?;
    // A capacity provider strategy (the call's or the cluster's default) decides the launch
    // type, and splits the tasks over its providers' instances.
    let capacity = capacity_providers::strategy::resolve(
        &ctx,
        &ctx.active_cluster(req.cluster.as_deref())?.value,
        req.launch_type.as_deref(),
        req.capacity_provider_strategy.as_deref(),
    )?;
    let launch = validate_launch(
        &ctx,
        LaunchInput {
            cluster: req.cluster.as_deref(),
            task_definition: &req.task_definition,
            group: req.group,
            launch_type: capacity
                .as_ref()
                .map(|c| c.launch_type.to_string())
                .or(req.launch_type),
            overrides: req.overrides,
            started_by: req.started_by,
            tags: req.tags,
            enable_ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration,
            platform_version: req.platform_version,
        },
    )?;
    let constraints = placement::constraints(
        req.placement_constraints.as_deref(),
        launch.td.placement_constraints.as_deref(),
    )?;
    let needs = task_resources(&launch.td, &launch.overrides);
    let request = TaskRequest {
        resources: needs,
        group: launch.group.clone(),
        strategies,
        constraints,
        required_attributes: launch_requirements(&launch),
        count: usize::try_from(count).unwrap_or(1),
    };
    let batch = capacity_providers::strategy::Batch::new(
        capacity.as_ref(),
        request,
        &[],
        usize::try_from(count).unwrap_or(1),
    )?;
    run_queue::run(
        &ctx,
        run_queue::Call {
            launch,
            batch,
            token,
            seed: placement::seed(),
        },
    )
    .await
}

/// What a RunTask with a `clientToken` did, so a retry with the same token answers the same
/// tasks instead of starting more.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientTokenRecord {
    task_arns: Vec<String>,
    failures: Vec<Failure>,
    /// When the call was made; the record is forgotten after the stopped-task retention.
    #[serde(default)]
    created_at: f64,
}

/// The store key of a RunTask `clientToken` (at most 64 characters, as ECS allows).
fn client_token_key(
    ctx: &Ctx,
    cluster: Option<&str>,
    token: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    if token.is_empty() || token.chars().count() > 64 {
        return Err(ApiError::invalid_parameter(
            "clientToken must be 1 to 64 characters long.",
        ));
    }
    let cluster = ctx.cluster_name(cluster)?;
    Ok(Some(keys::client_token(&cluster, token)))
}

/// The answer of an earlier RunTask with the same `clientToken`, with its tasks as they are now.
fn replay(ctx: &Ctx, key: Option<&str>) -> Result<Option<TasksResponse>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let Some(record) = ctx.get::<ClientTokenRecord>(key)? else {
        return Ok(None);
    };
    let cluster = key
        .trim_start_matches(keys::CLIENT_TOKENS)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut tasks = Vec::new();
    for arn in &record.value.task_arns {
        if let Some(task) = ctx.task(&task_key_of(&cluster, arn)?) {
            tasks.push(with_version(task.value, task.mod_revision));
        }
    }
    Ok(Some(TasksResponse {
        tasks,
        failures: record.value.failures,
    }))
}

/// Starts one task on each named container instance. The scheduler checks each instance
/// (agent connected, the task definition's required attributes, CPU, memory, host ports); the caller chose the instances, so no
/// strategy applies, and like ECS's StartTask no placement constraint does either.
pub async fn start_task(ctx: Ctx, req: StartTaskRequest) -> Result<TasksResponse, ApiError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "containerInstances must name 1 to 10 container instances.",
        ));
    }
    let launch = validate_launch(
        &ctx,
        LaunchInput {
            cluster: req.cluster.as_deref(),
            task_definition: &req.task_definition,
            group: req.group,
            launch_type: None,
            overrides: req.overrides,
            started_by: req.started_by,
            tags: req.tags,
            enable_ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration,
            platform_version: None,
        },
    )?;
    let needs = task_resources(&launch.td, &launch.overrides);
    let request = TaskRequest {
        resources: needs.clone(),
        group: launch.group.clone(),
        strategies: Vec::new(),
        constraints: Vec::new(),
        required_attributes: launch_requirements(&launch),
        count: 1,
    };
    let mut turn = ctx.placement_turn(&launch.cluster).await;
    loop {
        let (mut snapshot, instances) = placement::snapshot(&ctx, &mut turn, &launch.cluster);
        let now = ctx.now();
        let mut placed_on: BTreeSet<String> = BTreeSet::new();
        let mut placements = Vec::new();
        let mut failures = Vec::new();
        for reference in &req.container_instances {
            let id = id_of(reference, "container-instance").unwrap_or_default();
            let arn = ctx.arns.container_instance(&launch.cluster, &id);
            let Some(versioned) = instances.get(&id) else {
                failures.push(Failure::new(arn, "MISSING"));
                continue;
            };
            let index = snapshot.index_of(&id);
            let Some(index) =
                index.filter(|_| versioned.value.status != Some(ContainerInstanceStatus::Inactive))
            else {
                failures.push(Failure::new(arn, "INACTIVE"));
                continue;
            };
            if let Err(reason) = snapshot.place_on(index, &request) {
                failures.push(placement::failure(
                    &arn,
                    reason,
                    &request.required_attributes,
                ));
                continue;
            }
            placed_on.insert(id.clone());
            let pick = placements.len();
            placements.push(build_task(&ctx, &launch, &arn, now, pick));
        }
        if placements.is_empty() {
            return Ok(TasksResponse {
                tasks: Vec::new(),
                failures,
            });
        }
        if let Some(revision) =
            placement::commit(&ctx, &launch.cluster, &placements, &instances, &placed_on).await?
        {
            let tasks = placements
                .into_iter()
                .map(|(_, task)| with_version(task, revision))
                .collect();
            return Ok(TasksResponse { tasks, failures });
        }
    }
}

/// Asks a task to stop; its agent stops the containers and reports it STOPPED.
pub async fn stop_task(ctx: Ctx, req: StopTaskRequest) -> Result<StopTaskResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.unwrap_or_default();
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 1024)
    {
        return Err(ApiError::invalid_parameter(
            "reason can be at most 1024 characters long.",
        ));
    }
    let key = task_key_of(&cluster_name, &req.task)?;
    let now = ctx.now();
    // A task of a service behind a load balancer drains first (DEACTIVATING), as on ECS.
    let owners = crate::elbv2::service_targets::registered_owners(&ctx)?;
    ctx.update::<Task, _>(&key, |current| {
        let mut task = current
            .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))?;
        if request_stop(
            &mut task,
            stop_code::USER_INITIATED,
            req.reason.clone(),
            now,
        ) {
            crate::elbv2::service_targets::deactivate_first(&mut task, &owners);
        }
        Ok(task)
    })
    .await?;
    let stored = ctx
        .task(&key)
        .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))?;
    Ok(StopTaskResponse {
        task: with_version(stored.value, stored.mod_revision),
    })
}

/// Describes tasks by id or ARN; unknown ones are `MISSING` failures.
pub async fn describe_tasks(
    ctx: Ctx,
    req: DescribeTasksRequest,
) -> Result<crate::handlers::task_lookup::DescribeTasksResponse, ApiError> {
    crate::handlers::task_lookup::describe(
        &ctx,
        req.cluster.as_deref(),
        &req.tasks,
        req.include.as_deref().unwrap_or_default(),
    )
}

/// The desired statuses ListTasks filters by.
const LIST_DESIRED_STATUSES: [TaskStatus; 3] = [
    TaskStatus::Running,
    TaskStatus::Pending,
    TaskStatus::Stopped,
];

/// Lists task ARNs of a cluster, filtered as ECS filters them.
pub async fn list_tasks(ctx: Ctx, req: ListTasksRequest) -> Result<ListTasksResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.unwrap_or_default();
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let text = req.desired_status.as_deref().unwrap_or("RUNNING");
    let Some(desired) = TaskStatus::parse(text).filter(|s| LIST_DESIRED_STATUSES.contains(s))
    else {
        return Err(ApiError::invalid_parameter(format!(
            "'{text}' is not a desired status: use RUNNING, PENDING or STOPPED."
        )));
    };
    if let Some(lt) = req.launch_type.as_deref() {
        if !matches!(lt, "EC2" | "FARGATE" | "EXTERNAL" | "MANAGED_INSTANCES") {
            return Err(ApiError::invalid_parameter(format!(
                "'{lt}' is not a launch type: use EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES."
            )));
        }
    }
    if req.family.is_some() && req.service_name.is_some() {
        return Err(ApiError::invalid_parameter(
            "family and serviceName cannot be used together.",
        ));
    }
    let instance_arn = match req.container_instance.as_deref() {
        None => None,
        Some(reference) => {
            let id = id_of(reference, "container-instance").ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "'{reference}' is not a container instance id or ARN."
                ))
            })?;
            Some(ctx.arns.container_instance(&cluster_name, &id))
        }
    };
    // Read the most selective index, from after the last task of the previous page, and
    // stop one past the page: O(page) when the index matches the filters.
    if desired == TaskStatus::Pending {
        return Ok(ListTasksResponse::default());
    }
    let state = ctx.snapshot();
    let after = page
        .after
        .as_deref()
        .and_then(|arn| id_of(arn, "task"))
        .map(|id| keys::task(&cluster_name, &id));
    let (index, value) = if let Some(arn) = instance_arn
        .as_deref()
        .filter(|_| desired == TaskStatus::Running)
    {
        (TaskIndex::Instance, arn.to_string())
    } else if let Some(service) = req.service_name.as_deref() {
        (TaskIndex::Service, scoped(&cluster_name, service))
    } else if let Some(family) = req.family.as_deref() {
        (TaskIndex::Family, scoped(&cluster_name, family))
    } else if let Some(started_by) = req.started_by.as_deref() {
        (TaskIndex::StartedBy, scoped(&cluster_name, started_by))
    } else {
        (TaskIndex::Desired, scoped(&cluster_name, desired.as_str()))
    };
    let service_group = req.service_name.as_ref().map(|s| format!("service:{s}"));
    // A service's STOPPED tasks sit in a cold index of their own; a task that has not
    // stopped may already be desired STOPPED, so that listing reads both.
    let tasks: Box<dyn Iterator<Item = &std::sync::Arc<crate::state::TaskEntry>>> =
        if index == TaskIndex::Service && desired == TaskStatus::Stopped {
            Box::new(state.service_tasks(&value, after.as_deref()))
        } else {
            Box::new(state.tasks_by(index, &value, after.as_deref()))
        };
    let arns: Vec<String> = tasks
        .filter(|t| req.family.is_none() || t.family() == req.family.as_deref())
        .map(|t| &t.task)
        .filter(|t| t.desired_status == Some(desired))
        .filter(|t| instance_arn.is_none() || t.container_instance_arn == instance_arn)
        .filter(|t| req.started_by.is_none() || t.started_by == req.started_by)
        .filter(|t| req.launch_type.is_none() || t.launch_type == req.launch_type)
        .filter(|t| service_group.is_none() || t.group == service_group)
        .filter_map(|t| t.task_arn.clone())
        .take(page.limit + 1)
        .collect();
    let (arns, next_token) = PageRequest {
        after: None,
        limit: page.limit,
    }
    .page(arns, Clone::clone);
    Ok(ListTasksResponse {
        task_arns: arns,
        next_token,
    })
}

mod launch_type;
pub mod placement;
pub mod run_queue;

pub(crate) use launch_type::{check_platform_version, dress_task, requirements_for};

#[cfg(test)]
mod attributes_tests;

#[cfg(test)]
mod tests;
