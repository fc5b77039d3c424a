//! Task sets: CreateTaskSet, DescribeTaskSets, UpdateTaskSet, DeleteTaskSet and
//! UpdateServicePrimaryTaskSet, for services with the EXTERNAL deployment controller
//! (DescribeTaskSets also shows a CODE_DEPLOY service's). Task sets live inside the service
//! record, as deployments do, so every change is one compare-on-revision write of the
//! service; the service controller (controllers/services) keeps each set at its
//! computedDesiredCount.

mod requests;

pub use requests::*;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::capacity_providers::strategy as capacity_strategy;
use crate::handlers::services::{
    load_balancers, present_task_set, registries, service_name_of, service_not_found, validate,
    RandomIds, TaskCounts,
};
use crate::handlers::task_lookup::resolve_task_definition;
use berth_core::model::cluster::{CapacityProviderStrategyItem, Cluster};
use berth_core::model::service::{
    LoadBalancer, NetworkConfiguration, Scale, Service, ServiceRegistry, TaskSet,
};
use berth_core::model::{validate_tags, Failure, ServiceStatus, Tag};
use berth_core::service::task_sets::{
    changed, check_scale, set_stability, ACTIVE, DRAINING, PRIMARY,
};
use berth_core::service::{IdSource, ServiceRecord};
use berth_store::keys;

/// What a new task set is made from (CreateTaskSet, or a CODE_DEPLOY service's first set).
#[derive(Debug, Default)]
pub struct NewTaskSet {
    pub task_definition: String,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub scale: Option<Scale>,
    pub external_id: Option<String>,
    pub started_by: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

/// A new task set's configuration once checked: everything but its identity and times.
#[derive(Debug)]
pub struct Prepared {
    task_definition: String,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    platform_version: Option<String>,
    fargate: bool,
    network_configuration: Option<NetworkConfiguration>,
    load_balancers: Vec<LoadBalancer>,
    service_registries: Vec<ServiceRegistry>,
    scale: Scale,
    external_id: Option<String>,
    started_by: Option<String>,
    tags: Vec<Tag>,
}

/// Checks a new task set as RunTask and CreateService check their launch: the task
/// definition (ACTIVE, compatible, admitted on the cluster), the launch type or capacity
/// provider strategy (the cluster's default when neither is named), the Fargate platform
/// version, the awsvpc network configuration, load balancers, registries, scale and tags.
pub fn prepare(ctx: &Ctx, cluster: &Cluster, new: NewTaskSet) -> Result<Prepared, ApiError> {
    let scale = check_scale(new.scale.as_ref()).map_err(ApiError::invalid_parameter)?;
    let capacity = capacity_strategy::resolve(
        ctx,
        cluster,
        new.launch_type.as_deref(),
        new.capacity_provider_strategy.as_deref(),
    )?;
    let launch_type = validate::launch_type(
        capacity
            .as_ref()
            .map(|c| c.launch_type)
            .or(new.launch_type.as_deref()),
    )?;
    validate::platform_version(&launch_type, new.platform_version.as_deref())?;
    let td = resolve_task_definition(ctx, &new.task_definition)?
        .task_definition
        .clone();
    validate::task_definition(&td, &new.task_definition, &launch_type)?;
    validate::network(&td, &launch_type, new.network_configuration.as_ref())?;
    super::admission::admit_on_cluster(cluster, &td)?;
    let load_balancers =
        load_balancers::check(ctx, new.load_balancers.as_deref().unwrap_or_default(), &td)?;
    let service_registries = registries::check(
        ctx,
        new.service_registries.as_deref().unwrap_or_default(),
        &td,
    )?;
    let tags = new.tags.unwrap_or_default();
    validate_tags(&tags).map_err(ApiError::invalid_parameter)?;
    if new.external_id.as_ref().is_some_and(|e| e.len() > 255) {
        return Err(ApiError::invalid_parameter(
            "externalId can be at most 255 characters long.",
        ));
    }
    // As ECS echoes it: an awsvpc configuration states whether it assigns a public IP.
    let network_configuration = new.network_configuration.map(|mut n| {
        if let Some(vpc) = n.awsvpc_configuration.as_mut() {
            vpc.assign_public_ip
                .get_or_insert_with(|| "DISABLED".into());
        }
        n
    });
    let fargate = launch_type == "FARGATE";
    Ok(Prepared {
        task_definition: td.task_definition_arn.clone().unwrap_or_default(),
        launch_type: capacity.is_none().then_some(launch_type),
        capacity_provider_strategy: capacity.map(|c| c.items),
        platform_version: fargate.then(|| new.platform_version.unwrap_or_else(|| "LATEST".into())),
        fargate,
        network_configuration,
        load_balancers,
        service_registries,
        scale,
        external_id: new.external_id,
        started_by: new.started_by,
        tags,
    })
}

/// A new ACTIVE task set of `record` from `prepared`: id `ecs-svc/` and 19 digits, its ARN
/// `task-set/CLUSTER/SERVICE/ID`, STABILIZING.
pub fn build(
    ctx: &Ctx,
    cluster: &str,
    record: &ServiceRecord,
    prepared: &Prepared,
    now: f64,
) -> TaskSet {
    let id = RandomIds.deployment_id();
    TaskSet {
        task_set_arn: Some(format!(
            "arn:aws:ecs:{}:{}:task-set/{cluster}/{}/{id}",
            ctx.arns.region,
            ctx.arns.account_id,
            record.name()
        )),
        id: Some(id),
        service_arn: record.service.service_arn.clone(),
        cluster_arn: Some(ctx.arns.cluster(cluster)),
        started_by: prepared.started_by.clone(),
        external_id: prepared.external_id.clone(),
        status: Some(ACTIVE.into()),
        task_definition: Some(prepared.task_definition.clone()),
        computed_desired_count: Some(0),
        created_at: Some(now),
        updated_at: Some(now),
        launch_type: prepared.launch_type.clone(),
        capacity_provider_strategy: prepared.capacity_provider_strategy.clone(),
        platform_version: prepared.platform_version.clone(),
        platform_family: prepared.fargate.then(|| "Linux".into()),
        network_configuration: prepared.network_configuration.clone(),
        load_balancers: Some(prepared.load_balancers.clone()),
        service_registries: Some(prepared.service_registries.clone()),
        scale: Some(prepared.scale.clone()),
        stability_status: Some(berth_core::service::task_sets::STABILIZING.into()),
        stability_status_at: Some(now),
        tags: Some(prepared.tags.clone()),
        ..TaskSet::default()
    }
}

/// Shows `set`'s configuration on the service, as ECS does for its PRIMARY task set.
pub fn make_primary(service: &mut Service, set: &TaskSet) {
    service.task_definition = set.task_definition.clone();
    service.launch_type = set.launch_type.clone();
    service.capacity_provider_strategy = set.capacity_provider_strategy.clone();
    service.platform_version = set.platform_version.clone();
    service.platform_family = set.platform_family.clone();
    service.network_configuration = set.network_configuration.clone();
    service.load_balancers = set.load_balancers.clone();
    service.service_registries = set.service_registries.clone();
}

/// The id a task set reference names: the id itself, or the end of a task set ARN
/// (`task-set/CLUSTER/SERVICE/ecs-svc/N`).
pub fn set_id_of(reference: &str) -> &str {
    match reference.split_once(":task-set/") {
        Some((_, path)) => path.splitn(3, '/').nth(2).unwrap_or(path),
        None => reference,
    }
}

/// The service a task set call names, with the checks every such call makes: the service
/// exists (ServiceNotFoundException), is ACTIVE (ServiceNotActiveException) and, unless
/// `reading`, uses the EXTERNAL controller (InvalidParameterException).
fn check_service(record: Option<ServiceRecord>, reading: bool) -> Result<ServiceRecord, ApiError> {
    let record = record.ok_or_else(service_not_found)?;
    if record.service.status != Some(ServiceStatus::Active) {
        return Err(ApiError::new(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    let controller = record
        .service
        .deployment_controller
        .as_ref()
        .map_or("ECS", |c| c.type_.as_str());
    let allowed = controller == "EXTERNAL" || (reading && record.runs_task_sets());
    if !allowed {
        return Err(ApiError::invalid_parameter(format!(
            "Amazon ECS only supports task set management on services configured to use \
             external deployment controllers; this service uses {controller}."
        )));
    }
    Ok(record)
}

fn task_set_not_found() -> ApiError {
    ApiError::new(
        "TaskSetNotFoundException",
        "The specified task set does not exist.",
    )
}

/// The task set `reference` names in `record`, to change it; DRAINING ones only when
/// `draining_too`.
fn find_mut<'a>(
    record: &'a mut ServiceRecord,
    reference: &str,
    draining_too: bool,
) -> Result<&'a mut TaskSet, ApiError> {
    let id = set_id_of(reference);
    let set = record
        .service
        .task_sets
        .iter_mut()
        .flatten()
        .find(|s| s.id.as_deref() == Some(id))
        .ok_or_else(task_set_not_found)?;
    if !draining_too && set.status.as_deref() == Some(DRAINING) {
        return Err(ApiError::invalid_parameter(
            "The specified task set is DRAINING: it is being deleted and cannot be changed.",
        ));
    }
    Ok(set)
}

/// Where a task set call's service is stored: `(cluster name, key)`.
fn locate(ctx: &Ctx, cluster: &str, service: &str) -> Result<(String, String), ApiError> {
    let cluster = ctx.active_cluster(Some(cluster))?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let name = service_name_of(&cluster_name, service)?;
    let key = keys::service(&cluster_name, &name);
    Ok((cluster_name, key))
}

/// Changes the task set `reference` of the service at `key` with `change`, in one write of
/// the service; returns the set as changed (counts from the tasks).
async fn change_set<F>(
    ctx: &Ctx,
    cluster: &str,
    key: &str,
    reference: &str,
    mut change: F,
) -> Result<TaskSetResponse, ApiError>
where
    F: FnMut(&mut ServiceRecord, &str, f64) -> Result<(), ApiError>,
{
    let now = ctx.now();
    let id = set_id_of(reference).to_string();
    let record = ctx
        .update::<ServiceRecord, _>(key, |current| {
            let mut record = check_service(current, false)?;
            change(&mut record, &id, now)?;
            changed(&mut record, now);
            Ok(record)
        })
        .await?;
    let set = record
        .service
        .task_sets
        .iter()
        .flatten()
        .find(|s| s.id.as_deref() == Some(id.as_str()))
        .ok_or_else(task_set_not_found)?;
    let counts = TaskCounts::of(ctx, cluster)?;
    Ok(TaskSetResponse {
        task_set: present_task_set(set, &counts, true),
    })
}

/// Creates a task set in an EXTERNAL service: ACTIVE (UpdateServicePrimaryTaskSet makes it
/// PRIMARY), at its scale of the service's desired count. The controller starts its tasks. A
/// retry with the same `clientToken` answers the set the first call made.
pub async fn create(ctx: Ctx, req: CreateTaskSetRequest) -> Result<TaskSetResponse, ApiError> {
    if let Some(token) = &req.client_token {
        if token.is_empty() || token.len() > 36 || !token.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(ApiError::invalid_parameter(
                "clientToken must be 1 to 36 ASCII characters from ! to ~.",
            ));
        }
    }
    let cluster = ctx.active_cluster(Some(&req.cluster))?;
    let (cluster_name, key) = locate(&ctx, &req.cluster, &req.service)?;
    // The service's own checks come first, as ECS reports them.
    check_service(ctx.get::<ServiceRecord>(&key)?.map(|v| v.value), false)?;
    let prepared = prepare(
        &ctx,
        &cluster.value,
        NewTaskSet {
            task_definition: req.task_definition.clone(),
            launch_type: req.launch_type.clone(),
            capacity_provider_strategy: req.capacity_provider_strategy.clone(),
            platform_version: req.platform_version.clone(),
            network_configuration: req.network_configuration.clone(),
            load_balancers: req.load_balancers.clone(),
            service_registries: req.service_registries.clone(),
            scale: req.scale.clone(),
            external_id: req.external_id.clone(),
            started_by: None,
            tags: req.tags.clone(),
        },
    )?;
    let now = ctx.now();
    let mut created = None;
    let record = ctx
        .update::<ServiceRecord, _>(&key, |current| {
            let mut record = check_service(current, false)?;
            let retried = req.client_token.as_ref().and_then(|token| {
                record
                    .service
                    .task_sets
                    .iter()
                    .flatten()
                    .find(|s| s.client_token.as_ref() == Some(token))
                    .and_then(|s| s.id.clone())
            });
            if let Some(id) = retried {
                created = Some(id);
                return Ok(record);
            }
            let live = record
                .service
                .task_sets
                .iter()
                .flatten()
                .filter(|s| s.status.as_deref() != Some(DRAINING))
                .count();
            if live >= MAX_TASK_SETS {
                return Err(ApiError::new(
                    "LimitExceededException",
                    format!(
                        "A service can have at most {MAX_TASK_SETS} task sets that are not \
                         DRAINING: delete one first."
                    ),
                ));
            }
            let mut set = build(&ctx, &cluster_name, &record, &prepared, now);
            set.client_token = req.client_token.clone();
            created = set.id.clone();
            record
                .service
                .task_sets
                .get_or_insert_with(Vec::new)
                .push(set);
            changed(&mut record, now);
            Ok(record)
        })
        .await?;
    let set = record
        .service
        .task_sets
        .iter()
        .flatten()
        .find(|s| s.id.is_some() && s.id == created)
        .ok_or_else(task_set_not_found)?;
    let counts = TaskCounts::of(&ctx, &cluster_name)?;
    Ok(TaskSetResponse {
        task_set: present_task_set(set, &counts, true),
    })
}

/// Most task sets (not DRAINING) a service holds: ECS's quota.
pub const MAX_TASK_SETS: usize = 5;

/// Describes the task sets of a service that runs them: those named (unknown ones are
/// `MISSING` failures), or all of them. Tags only with `include: ["TAGS"]`.
pub async fn describe(
    ctx: Ctx,
    req: DescribeTaskSetsRequest,
) -> Result<DescribeTaskSetsResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| i.as_str() != "TAGS") {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use TAGS."
        )));
    }
    let with_tags = include.iter().any(|i| i == "TAGS");
    let (cluster_name, key) = locate(&ctx, &req.cluster, &req.service)?;
    let record = check_service(ctx.get::<ServiceRecord>(&key)?.map(|v| v.value), true)?;
    let counts = TaskCounts::of(&ctx, &cluster_name)?;
    let sets = record.service.task_sets.as_deref().unwrap_or_default();
    let mut task_sets = Vec::new();
    let mut failures = Vec::new();
    match req.task_sets {
        None => task_sets.extend(sets.iter().map(|s| present_task_set(s, &counts, with_tags))),
        Some(named) => {
            for reference in named {
                let id = set_id_of(&reference);
                match sets.iter().find(|s| s.id.as_deref() == Some(id)) {
                    Some(set) => task_sets.push(present_task_set(set, &counts, with_tags)),
                    None => failures.push(Failure::new(reference.clone(), "MISSING")),
                }
            }
        }
    }
    Ok(DescribeTaskSetsResponse {
        task_sets,
        failures,
    })
}

/// Changes a task set's scale; its computedDesiredCount follows at once and the controller
/// starts or stops its tasks.
pub async fn update(ctx: Ctx, req: UpdateTaskSetRequest) -> Result<TaskSetResponse, ApiError> {
    let (cluster_name, key) = locate(&ctx, &req.cluster, &req.service)?;
    let scale = check_scale(Some(&req.scale)).map_err(ApiError::invalid_parameter)?;
    change_set(
        &ctx,
        &cluster_name,
        &key,
        &req.task_set,
        |record, id, now| {
            let set = find_mut(record, id, false)?;
            set.scale = Some(scale.clone());
            set.updated_at = Some(now);
            set_stability(set, false, now);
            Ok(())
        },
    )
    .await
}

/// Deletes a task set: it becomes DRAINING, its tasks are stopped, and it is gone once they
/// have. One still scaled above 0 (or the PRIMARY) needs `force`.
pub async fn delete(ctx: Ctx, req: DeleteTaskSetRequest) -> Result<TaskSetResponse, ApiError> {
    let (cluster_name, key) = locate(&ctx, &req.cluster, &req.service)?;
    let force = req.force == Some(true);
    change_set(
        &ctx,
        &cluster_name,
        &key,
        &req.task_set,
        |record, id, now| {
            let set = find_mut(record, id, true)?;
            if set.status.as_deref() == Some(DRAINING) {
                return Ok(());
            }
            let scaled = set.scale.as_ref().and_then(|s| s.value).unwrap_or(0.0) > 0.0
                || set.computed_desired_count.unwrap_or(0) > 0;
            if scaled && !force {
                return Err(ApiError::invalid_parameter(
                "The task set cannot be deleted while it is scaled above 0%: scale it to 0 with \
                 UpdateTaskSet first, or delete it with force.",
            ));
            }
            set.status = Some(DRAINING.into());
            set.updated_at = Some(now);
            set_stability(set, false, now);
            Ok(())
        },
    )
    .await
}

/// Makes a task set the service's PRIMARY one (the PRIMARY before it becomes ACTIVE); the
/// service shows its configuration from then on.
pub async fn update_primary(
    ctx: Ctx,
    req: UpdateServicePrimaryTaskSetRequest,
) -> Result<TaskSetResponse, ApiError> {
    let (cluster_name, key) = locate(&ctx, &req.cluster, &req.service)?;
    change_set(
        &ctx,
        &cluster_name,
        &key,
        &req.primary_task_set,
        |record, id, now| {
            let chosen = find_mut(record, id, false)?.clone();
            for set in record.service.task_sets.iter_mut().flatten() {
                let status = if set.id == chosen.id {
                    PRIMARY
                } else if set.status.as_deref() == Some(PRIMARY) {
                    ACTIVE
                } else {
                    continue;
                };
                if set.status.as_deref() != Some(status) {
                    set.status = Some(status.into());
                    set.updated_at = Some(now);
                }
            }
            make_primary(&mut record.service, &chosen);
            Ok(())
        },
    )
    .await
}

#[cfg(test)]
mod tests;
