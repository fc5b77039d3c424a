//! Container instances: RegisterContainerInstance, DeregisterContainerInstance,
//! DescribeContainerInstances, ListContainerInstances and UpdateContainerInstancesState.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::state::{State, TaskIndex};
use berth_core::arn::Arn;
use berth_core::model::container_instance::{
    instance_id_of_identity_document, is_valid_instance_id, registered_resources,
    reported_attributes, ContainerInstance, ContainerInstanceHealthStatus, PlatformDevice,
    Registration, VersionInfo,
};
use berth_core::model::{
    validate_tags, Attribute, ContainerInstanceStatus, Failure, InstanceHealthCheckState, Resource,
    Tag,
};
use berth_core::pagination::PageRequest;
use berth_core::scheduler::{query, StoredInstance};
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::sync::Arc;

/// Input of RegisterContainerInstance.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstanceRequest {
    cluster: Option<String>,
    instance_identity_document: Option<String>,
    #[allow(dead_code)]
    instance_identity_document_signature: Option<String>,
    total_resources: Option<Vec<Resource>>,
    version_info: Option<VersionInfo>,
    container_instance_arn: Option<String>,
    attributes: Option<Vec<Attribute>>,
    platform_devices: Option<Vec<PlatformDevice>>,
    tags: Option<Vec<Tag>>,
}

/// Output of the operations that return one container instance.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceResponse {
    container_instance: ContainerInstance,
}

/// Input of DeregisterContainerInstance.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceRequest {
    cluster: Option<String>,
    container_instance: String,
    force: Option<bool>,
}

/// Input of DescribeContainerInstances.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    include: Option<Vec<String>>,
}

/// Output of DescribeContainerInstances and UpdateContainerInstancesState.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstancesResponse {
    container_instances: Vec<ContainerInstance>,
    failures: Vec<Failure>,
}

/// Input of ListContainerInstances.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesRequest {
    cluster: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    status: Option<String>,
}

/// Output of ListContainerInstances.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesResponse {
    container_instance_arns: Vec<String>,
    next_token: Option<String>,
}

/// Input of UpdateContainerInstancesState.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    status: String,
}

/// Statuses ListContainerInstances filters by.
const LIST_STATUSES: [ContainerInstanceStatus; 5] = [
    ContainerInstanceStatus::Active,
    ContainerInstanceStatus::Draining,
    ContainerInstanceStatus::Registering,
    ContainerInstanceStatus::Deregistering,
    ContainerInstanceStatus::RegistrationFailed,
];

/// The instance statuses UpdateContainerInstancesState sets, and changes.
const SETTABLE_STATUSES: [ContainerInstanceStatus; 2] = [
    ContainerInstanceStatus::Active,
    ContainerInstanceStatus::Draining,
];

/// The id of the container instance `reference` names in `cluster`: a bare id, or a
/// container-instance ARN of that cluster (or of the old format without a cluster). `None`
/// when it cannot name an instance there.
pub(crate) fn resolve_id(cluster: &str, reference: &str) -> Option<String> {
    let id = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)?;
        if arn.resource_type != "container-instance" {
            return None;
        }
        match arn.path.as_slice() {
            [id] => id.clone(),
            [in_cluster, id] if in_cluster == cluster => id.clone(),
            _ => return None,
        }
    } else {
        reference.to_string()
    };
    is_valid_instance_id(&id).then_some(id)
}

/// The id at the end of a stored instance's ARN.
pub(crate) fn id_of(instance: &ContainerInstance) -> String {
    instance
        .container_instance_arn
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

/// Read-modify-write of several instances in one transaction under compare-on-revision,
/// retried until no other writer interferes. `change` sees the current instances (in the
/// order of `keys`, which must be distinct) and returns, for each, the new instance to write
/// or `None` to leave it alone. Returns each instance as it then stands, with the revision
/// that `version` is made of.
pub(crate) async fn update_instances<F>(
    ctx: &Ctx,
    keys: &[String],
    mut change: F,
) -> Result<Vec<Option<Versioned<ContainerInstance>>>, ApiError>
where
    F: FnMut(Vec<Option<ContainerInstance>>) -> Result<Vec<Option<ContainerInstance>>, ApiError>,
{
    loop {
        let current = keys
            .iter()
            .map(|key| ctx.get::<ContainerInstance>(key))
            .collect::<Result<Vec<_>, _>>()?;
        let next = change(
            current
                .iter()
                .map(|c| c.as_ref().map(|v| v.value.clone()))
                .collect(),
        )?;
        let mut txn = Txn::new();
        let mut written = Vec::new();
        for ((key, old), new) in keys.iter().zip(&current).zip(next) {
            let new = new.map(ContainerInstance::without_derived);
            match new {
                Some(instance) if old.as_ref().map(|o| &o.value) != Some(&instance) => {
                    let revision = old.as_ref().map_or(0, |o| o.mod_revision);
                    txn = txn
                        .when(Compare::at(key.as_str(), revision))
                        .put(key.as_str(), encode(&instance));
                    written.push(Some(instance));
                }
                _ => written.push(None),
            }
        }
        if txn.ops.is_empty() {
            return Ok(current);
        }
        let result = ctx.commit(txn).await?;
        if result.succeeded {
            return Ok(current
                .into_iter()
                .zip(written)
                .map(|(old, new)| match new {
                    Some(value) => Some(Versioned {
                        value,
                        mod_revision: result.revision,
                    }),
                    None => old,
                })
                .collect());
        }
    }
}

/// Whether an instance has tasks that are not STOPPED.
fn has_unstopped_tasks(ctx: &Ctx, arn: &str) -> bool {
    ctx.snapshot().count_tasks(TaskIndex::Instance, arn) > 0
}

/// What a caller sees of a stored instance: `version` from the store revision, live task
/// counts, and tags and health only when the operation shows them (DescribeContainerInstances
/// when `include` asks; the operations that change an instance always show its tags).
struct Presenter {
    state: Arc<State>,
    tags: bool,
    health: bool,
    /// The capacity provider of each Auto Scaling group (ACTIVE providers), by group name.
    providers: std::collections::HashMap<String, String>,
}

impl Presenter {
    /// A presenter for instances of `cluster`.
    fn new(ctx: &Ctx, tags: bool, health: bool) -> Result<Self, ApiError> {
        let providers = ctx
            .list::<berth_core::model::capacity_provider::CapacityProvider>(
                keys::CAPACITY_PROVIDERS,
            )?
            .into_iter()
            .map(|v| v.value)
            .filter(|p| p.is_active())
            .filter_map(|p| Some((p.auto_scaling_group_name()?.to_string(), p.name?)))
            .collect();
        Ok(Self {
            state: ctx.snapshot(),
            tags,
            health,
            providers,
        })
    }

    /// The instance as the API returns it.
    fn show(&self, stored: Versioned<ContainerInstance>) -> ContainerInstance {
        let mut instance = stored.value;
        instance.version = Some(i64::try_from(stored.mod_revision).unwrap_or(i64::MAX));
        let (running, pending) = instance
            .container_instance_arn
            .as_ref()
            .and_then(|arn| self.state.load(arn))
            .map(|load| {
                let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
                (count(load.running), count(load.pending))
            })
            .unwrap_or_default();
        let load = instance
            .container_instance_arn
            .as_ref()
            .and_then(|arn| self.state.load(arn));
        let registered = instance.registered_resources.clone().unwrap_or_default();
        instance.remaining_resources = Some(
            load.map(|l| l.reserved.clone())
                .unwrap_or_default()
                .remaining_resources(&registered),
        );
        instance.running_tasks_count = Some(running);
        instance.pending_tasks_count = Some(pending);
        // An instance of an Auto Scaling group belongs to that group's capacity provider.
        instance.capacity_provider_name = instance
            .attributes
            .iter()
            .flatten()
            .find(|a| a.name == berth_core::model::container_instance::AUTOSCALING_GROUP_ATTRIBUTE)
            .and_then(|a| a.value.as_deref())
            .and_then(|group| self.providers.get(group).cloned());
        if self.tags {
            instance.tags.get_or_insert_with(Vec::new);
        } else {
            instance.tags = None;
        }
        instance.health_status = if self.health {
            Some(
                instance
                    .health_status
                    .unwrap_or_else(|| ContainerInstanceHealthStatus {
                        overall_status: Some(InstanceHealthCheckState::InsufficientData),
                        details: Some(Vec::new()),
                    }),
            )
        } else {
            None
        };
        instance
    }
}

/// The instance id a registration uses: the one `containerInstanceArn` names, or a new one.
fn registration_id(cluster: &str, reference: Option<&str>) -> Result<String, ApiError> {
    let Some(reference) = reference.filter(|r| !r.is_empty()) else {
        return Ok(uuid::Uuid::new_v4().simple().to_string());
    };
    if let Some(arn) = Arn::parse(reference) {
        if let [other, _] = arn.path.as_slice() {
            if arn.resource_type == "container-instance" && other != cluster {
                return Err(ApiError::invalid_parameter(format!(
                    "containerInstanceArn '{reference}' belongs to cluster '{other}': register \
                     it with cluster '{other}', or leave containerInstanceArn out to join \
                     '{cluster}' as a new instance."
                )));
            }
        }
    }
    resolve_id(cluster, reference).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "containerInstanceArn '{reference}' is not a container instance ARN or id: use the \
             ARN a previous registration returned, or an id of 1 to 64 letters, digits and \
             hyphens."
        ))
    })
}

/// Registers an instance with a cluster, or registers a known one again (the agent passes the
/// `containerInstanceArn` it keeps across restarts): same id, fresh resources, attributes and
/// versions, its status unchanged. Deregistration is final, as in ECS.
pub async fn register(
    ctx: Ctx,
    req: RegisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster = cluster
        .value
        .cluster_name
        .unwrap_or_else(|| "default".to_string());
    let registration = Registration {
        resources: registered_resources(
            req.total_resources.as_deref().unwrap_or_default(),
            req.platform_devices.as_deref().unwrap_or_default(),
        )
        .map_err(ApiError::invalid_parameter)?,
        attributes: reported_attributes(req.attributes.as_deref().unwrap_or_default())
            .map_err(ApiError::invalid_parameter)?,
        tags: req.tags.unwrap_or_default(),
        version_info: req.version_info,
        ec2_instance_id: req
            .instance_identity_document
            .as_deref()
            .map(instance_id_of_identity_document)
            .transpose()
            .map_err(ApiError::invalid_parameter)?
            .flatten(),
    };
    validate_tags(&registration.tags).map_err(ApiError::invalid_parameter)?;
    let id = registration_id(&cluster, req.container_instance_arn.as_deref())?;
    // An instance belongs to the principal that registered it (its agent).
    crate::auth::instances::claim(&ctx, &cluster, &id).await?;
    let arn = ctx.arns.container_instance(&cluster, &id);
    let now = ctx.now();
    let key = keys::instance(&cluster, &id);
    let updated = update_instances(&ctx, std::slice::from_ref(&key), |current| {
        let instance = match current.into_iter().next().flatten() {
            None => registration.new_instance(&arn, &id, now),
            Some(existing) if existing.status == Some(ContainerInstanceStatus::Inactive) => {
                return Err(ApiError::client(format!(
                    "Container instance {arn} was deregistered and cannot register again: \
                     register without containerInstanceArn to join the cluster as a new \
                     instance."
                )));
            }
            Some(existing) => registration.reregister(existing),
        };
        Ok(vec![Some(instance.map_err(ApiError::invalid_parameter)?)])
    })
    .await?;
    let stored = updated
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| ApiError::server("The registered container instance vanished."))?;
    // Registering is the agent's first sign of life: its heartbeat grace starts now.
    if let Some(arn) = stored.value.container_instance_arn.as_deref() {
        ctx.agents.saw(arn);
    }
    let presenter = Presenter::new(&ctx, true, false)?;
    Ok(ContainerInstanceResponse {
        container_instance: presenter.show(stored),
    })
}

/// Deregisters an instance: it becomes INACTIVE, stays describable and leaves the cluster's
/// lists and counts. Refused while it has tasks that are not STOPPED, unless `force`.
pub async fn deregister(
    ctx: Ctx,
    req: DeregisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, ApiError> {
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let not_found = || {
        ApiError::invalid_parameter(format!(
            "Container instance '{}' was not found in cluster '{cluster}': pass the id or ARN \
             ListContainerInstances returns, and the cluster it is registered with.",
            req.container_instance
        ))
    };
    let id = resolve_id(&cluster, &req.container_instance).ok_or_else(not_found)?;
    let arn = ctx.arns.container_instance(&cluster, &id);
    if !req.force.unwrap_or(false) && has_unstopped_tasks(&ctx, &arn) {
        return Err(ApiError::invalid_parameter(
            "Found running tasks on the instance: stop them first, or deregister with force \
             (--force), which leaves them running but no longer managed.",
        ));
    }
    let key = keys::instance(&cluster, &id);
    let updated = update_instances(&ctx, std::slice::from_ref(&key), |current| {
        let Some(mut instance) = current.into_iter().next().flatten() else {
            return Err(not_found());
        };
        if instance.status != Some(ContainerInstanceStatus::Inactive) {
            instance.status = Some(ContainerInstanceStatus::Inactive);
            instance.agent_connected = Some(false);
        }
        Ok(vec![Some(instance)])
    })
    .await?;
    let stored = updated.into_iter().next().flatten().ok_or_else(not_found)?;
    // ECS shows the instance's tags (`[]` when it has none) in this response.
    let presenter = Presenter::new(&ctx, true, false)?;
    Ok(ContainerInstanceResponse {
        container_instance: presenter.show(stored),
    })
}

/// Describes instances by id or ARN, INACTIVE ones included; unknown ones are `MISSING`
/// failures. Tags and health are shown only when `include` asks for them.
pub async fn describe(
    ctx: Ctx,
    req: DescribeContainerInstancesRequest,
) -> Result<ContainerInstancesResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include
        .iter()
        .find(|i| !["TAGS", "CONTAINER_INSTANCE_HEALTH"].contains(&i.as_str()))
    {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use TAGS or CONTAINER_INSTANCE_HEALTH."
        )));
    }
    // The cluster first, as ECS: an empty list in an unknown cluster is
    // ClusterNotFoundException.
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    if req.container_instances.is_empty() || req.container_instances.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "containerInstances must name between 1 and 100 container instances.",
        ));
    }
    let presenter = Presenter::new(
        &ctx,
        include.iter().any(|i| i == "TAGS"),
        include.iter().any(|i| i == "CONTAINER_INSTANCE_HEALTH"),
    )?;
    let mut container_instances = Vec::new();
    let mut failures = Vec::new();
    for reference in &req.container_instances {
        let id = resolve_id(&cluster, reference);
        let found = id
            .as_ref()
            .map(|id| ctx.get::<ContainerInstance>(&keys::instance(&cluster, id)))
            .transpose()?
            .flatten();
        match (found, id) {
            (Some(stored), _) => container_instances.push(presenter.show(stored)),
            (None, Some(id)) => failures.push(Failure::new(
                ctx.arns.container_instance(&cluster, &id),
                "MISSING",
            )),
            (None, None) => failures.push(Failure::new(reference.clone(), "MISSING")),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

/// Lists the ARNs of a cluster's instances (all but INACTIVE ones, or those of one status),
/// in id order, a page at a time.
pub async fn list(
    ctx: Ctx,
    req: ListContainerInstancesRequest,
) -> Result<ListContainerInstancesResponse, ApiError> {
    let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(text) => Some(query::parse(text).map_err(|e| {
            ApiError::invalid_parameter(format!(
                "Invalid filter '{text}' (cluster query language): {e}."
            ))
        })?),
    };
    let status = match req.status.as_deref() {
        None => None,
        Some(text) => Some(
            ContainerInstanceStatus::parse(text)
                .filter(|s| LIST_STATUSES.contains(s))
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "Invalid status '{text}': use one of {}.",
                        ContainerInstanceStatus::join(&LIST_STATUSES)
                    ))
                })?,
        ),
    };
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    // From after the previous page's last id, one past the page: O(page) for the usual
    // filters (all, or ACTIVE).
    let state = ctx.snapshot();
    let instances: Vec<ContainerInstance> = state
        .instances_after(&cluster, page.after.as_deref())
        .map(|v| &v.value)
        .filter(|i| match status {
            Some(status) => i.status == Some(status),
            None => i.status != Some(ContainerInstanceStatus::Inactive),
        })
        .filter(|i| match &filter {
            None => true,
            Some(expr) => {
                let load = i
                    .container_instance_arn
                    .as_ref()
                    .and_then(|arn| state.load(arn));
                let groups: Vec<String> = load
                    .map(|l| l.groups.keys().cloned().collect())
                    .unwrap_or_default();
                expr.matches(&StoredInstance {
                    instance: i,
                    running_tasks_count: load.map_or(0, |l| l.running),
                    groups: &groups,
                })
            }
        })
        .take(page.limit + 1)
        .cloned()
        .collect();
    let page = PageRequest {
        after: None,
        limit: page.limit,
    };
    let (instances, next_token) = page.page(instances, id_of);
    Ok(ListContainerInstancesResponse {
        container_instance_arns: instances
            .into_iter()
            .filter_map(|i| i.container_instance_arn)
            .collect(),
        next_token,
    })
}

/// Sets up to 10 instances ACTIVE or DRAINING. Unknown instances are `MISSING` failures;
/// instances in any other status (INACTIVE ones, say) are failures with that status as reason.
pub async fn update_state(
    ctx: Ctx,
    req: UpdateContainerInstancesStateRequest,
) -> Result<ContainerInstancesResponse, ApiError> {
    let Some(status) =
        ContainerInstanceStatus::parse(&req.status).filter(|s| SETTABLE_STATUSES.contains(s))
    else {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid status '{}': container instances can only be set to ACTIVE or DRAINING.",
            req.status
        )));
    };
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "containerInstances must name between 1 and 10 container instances.",
        ));
    }
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let mut failures = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for reference in &req.container_instances {
        match resolve_id(&cluster, reference) {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => failures.push(Failure::new(reference.clone(), "MISSING")),
        }
    }
    let keys: Vec<String> = ids.iter().map(|id| keys::instance(&cluster, id)).collect();
    let mut refused: Vec<Failure> = Vec::new();
    let updated = update_instances(&ctx, &keys, |current| {
        refused.clear();
        Ok(current
            .into_iter()
            .map(|instance| {
                let mut instance = instance?;
                match instance.status {
                    Some(current) if SETTABLE_STATUSES.contains(&current) => {
                        instance.status = Some(status);
                        Some(instance)
                    }
                    other => {
                        let other = other.map_or("UNKNOWN", ContainerInstanceStatus::as_str);
                        refused.push(Failure {
                            arn: instance.container_instance_arn.clone(),
                            reason: Some(other.to_string()),
                            detail: Some(format!(
                                "The container instance is {other}: only ACTIVE and DRAINING \
                                 instances can change state."
                            )),
                        });
                        None
                    }
                }
            })
            .collect())
    })
    .await?;
    // ECS shows the instances' tags (`[]` when they have none) in this response.
    let presenter = Presenter::new(&ctx, true, false)?;
    let mut container_instances = Vec::new();
    for (id, stored) in ids.iter().zip(updated) {
        match stored {
            Some(stored)
                if refused
                    .iter()
                    .all(|f| f.arn != stored.value.container_instance_arn) =>
            {
                container_instances.push(presenter.show(stored));
            }
            Some(_) => {}
            None => failures.push(Failure::new(
                ctx.arns.container_instance(&cluster, id),
                "MISSING",
            )),
        }
    }
    failures.extend(refused);
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

#[cfg(test)]
mod tests;
