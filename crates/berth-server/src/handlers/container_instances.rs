//! Container instances: RegisterContainerInstance, DeregisterContainerInstance,
//! DescribeContainerInstances, ListContainerInstances and UpdateContainerInstancesState.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::arn::Arn;
use berth_core::model::container_instance::{
    instance_id_of_identity_document, is_valid_instance_id, registered_resources,
    reported_attributes, ContainerInstance, ContainerInstanceHealthStatus, PlatformDevice,
    Registration, VersionInfo,
};
use berth_core::model::{validate_tags, Attribute, Failure, Resource, Tag};
use berth_core::pagination::PageRequest;
use berth_core::scheduler::{query, StoredInstance};
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::HashMap;

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
const LIST_STATUSES: [&str; 5] = [
    "ACTIVE",
    "DRAINING",
    "REGISTERING",
    "DEREGISTERING",
    "REGISTRATION_FAILED",
];

/// Task statuses that count as pending on an instance.
const PENDING_TASK_STATUSES: [&str; 3] = ["PROVISIONING", "PENDING", "ACTIVATING"];

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
            let new = new.map(|mut instance| {
                instance.version = None;
                instance
            });
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

/// Running and pending task counts per container instance ARN in a cluster.
fn task_counts(ctx: &Ctx, cluster: &str) -> Result<HashMap<String, (i32, i32)>, ApiError> {
    let mut counts: HashMap<String, (i32, i32)> = HashMap::new();
    for task in ctx.list::<serde_json::Value>(&keys::tasks_of(cluster))? {
        let field = |name: &str| task.value.get(name).and_then(|v| v.as_str());
        let (Some(arn), Some(status)) = (field("containerInstanceArn"), field("lastStatus")) else {
            continue;
        };
        let entry = counts.entry(arn.to_string()).or_default();
        if status == "RUNNING" {
            entry.0 += 1;
        } else if PENDING_TASK_STATUSES.contains(&status) {
            entry.1 += 1;
        }
    }
    Ok(counts)
}

/// Whether an instance has tasks that are not STOPPED.
fn has_unstopped_tasks(ctx: &Ctx, cluster: &str, arn: &str) -> Result<bool, ApiError> {
    Ok(ctx
        .list::<serde_json::Value>(&keys::tasks_of(cluster))?
        .iter()
        .any(|task| {
            task.value
                .get("containerInstanceArn")
                .and_then(|v| v.as_str())
                == Some(arn)
                && task.value.get("lastStatus").and_then(|v| v.as_str()) != Some("STOPPED")
        }))
}

/// What a caller sees of a stored instance: `version` from the store revision, live task
/// counts, and tags and health only when asked for.
struct Presenter {
    counts: HashMap<String, (i32, i32)>,
    tags: bool,
    health: bool,
}

impl Presenter {
    /// A presenter for instances of `cluster`.
    fn new(ctx: &Ctx, cluster: &str, tags: bool, health: bool) -> Result<Self, ApiError> {
        Ok(Self {
            counts: task_counts(ctx, cluster)?,
            tags,
            health,
        })
    }

    /// The instance as the API returns it.
    fn show(&self, stored: Versioned<ContainerInstance>) -> ContainerInstance {
        let mut instance = stored.value;
        instance.version = Some(i64::try_from(stored.mod_revision).unwrap_or(i64::MAX));
        let (running, pending) = instance
            .container_instance_arn
            .as_ref()
            .and_then(|arn| self.counts.get(arn))
            .copied()
            .unwrap_or_default();
        instance.running_tasks_count = Some(running);
        instance.pending_tasks_count = Some(pending);
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
                        overall_status: Some("INSUFFICIENT_DATA".into()),
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
    let arn = ctx.arns.container_instance(&cluster, &id);
    let now = ctx.now();
    let key = keys::instance(&cluster, &id);
    let updated = update_instances(&ctx, std::slice::from_ref(&key), |current| {
        let instance = match current.into_iter().next().flatten() {
            None => registration.new_instance(&arn, &id, now),
            Some(existing) if existing.status.as_deref() == Some("INACTIVE") => {
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
    let presenter = Presenter::new(&ctx, &cluster, true, false)?;
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
    if !req.force.unwrap_or(false) && has_unstopped_tasks(&ctx, &cluster, &arn)? {
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
        if instance.status.as_deref() != Some("INACTIVE") {
            instance.status = Some("INACTIVE".into());
            instance.agent_connected = Some(false);
        }
        Ok(vec![Some(instance)])
    })
    .await?;
    let stored = updated.into_iter().next().flatten().ok_or_else(not_found)?;
    let presenter = Presenter::new(&ctx, &cluster, false, false)?;
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
    if req.container_instances.is_empty() || req.container_instances.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "containerInstances must name between 1 and 100 container instances.",
        ));
    }
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let presenter = Presenter::new(
        &ctx,
        &cluster,
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
    if let Some(status) = req.status.as_deref() {
        if !LIST_STATUSES.contains(&status) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid status '{status}': use one of {}.",
                LIST_STATUSES.join(", ")
            )));
        }
    }
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let instances: Vec<ContainerInstance> = ctx
        .list::<ContainerInstance>(&keys::instances_of(&cluster))?
        .into_iter()
        .map(|v| v.value)
        .filter(|i| match req.status.as_deref() {
            Some(status) => i.status.as_deref() == Some(status),
            None => i.status.as_deref() != Some("INACTIVE"),
        })
        .collect();
    let instances = match &filter {
        None => instances,
        Some(expr) => {
            let facts = query_facts(&ctx, &cluster)?;
            instances
                .into_iter()
                .filter(|i| {
                    let (running, groups) = i
                        .container_instance_arn
                        .as_ref()
                        .and_then(|arn| facts.get(arn))
                        .map_or((0, &[][..]), |(n, g)| (*n, g.as_slice()));
                    expr.matches(&StoredInstance {
                        instance: i,
                        running_tasks_count: running,
                        groups,
                    })
                })
                .collect()
        }
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

/// What filters read of an instance's tasks, by instance ARN: how many run, and the groups of
/// those not stopped (desired RUNNING), as the scheduler counts them.
fn query_facts(ctx: &Ctx, cluster: &str) -> Result<HashMap<String, (i64, Vec<String>)>, ApiError> {
    let mut facts: HashMap<String, (i64, Vec<String>)> = HashMap::new();
    for task in ctx.list::<serde_json::Value>(&keys::tasks_of(cluster))? {
        let field = |name: &str| task.value.get(name).and_then(|v| v.as_str());
        let (Some(arn), Some(last)) = (field("containerInstanceArn"), field("lastStatus")) else {
            continue;
        };
        let entry = facts.entry(arn.to_string()).or_default();
        if last == "RUNNING" {
            entry.0 += 1;
        }
        if let Some(group) = field("group") {
            if last != "STOPPED" && field("desiredStatus") != Some("STOPPED") {
                entry.1.push(group.to_string());
            }
        }
    }
    Ok(facts)
}

/// Sets up to 10 instances ACTIVE or DRAINING. Unknown instances are `MISSING` failures;
/// instances in any other status (INACTIVE ones, say) are failures with that status as reason.
pub async fn update_state(
    ctx: Ctx,
    req: UpdateContainerInstancesStateRequest,
) -> Result<ContainerInstancesResponse, ApiError> {
    let status = req.status.as_str();
    if !["ACTIVE", "DRAINING"].contains(&status) {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid status '{status}': container instances can only be set to ACTIVE or DRAINING."
        )));
    }
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
                match instance.status.as_deref() {
                    Some("ACTIVE") | Some("DRAINING") => {
                        instance.status = Some(status.to_string());
                        Some(instance)
                    }
                    other => {
                        let other = other.unwrap_or("UNKNOWN");
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
    let presenter = Presenter::new(&ctx, &cluster, false, false)?;
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
mod tests {
    use super::*;
    use crate::handlers::clusters;
    use crate::{App, ServerConfig};
    use berth_core::model::container_instance::managed_instance_id_for;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    async fn app_with(names: &[&str]) -> Ctx {
        let app = App::open(ServerConfig::default()).await.expect("opens");
        for name in names {
            clusters::ensure_cluster(&app, name)
                .await
                .expect("creates cluster");
        }
        Ctx {
            app,
            caller: Default::default(),
        }
    }

    fn req<T: DeserializeOwned>(body: Value) -> T {
        serde_json::from_value(body).expect("well-formed request")
    }

    async fn register_ok(ctx: &Ctx, body: Value) -> ContainerInstance {
        register(ctx.clone(), req(body))
            .await
            .expect("registers")
            .container_instance
    }

    fn resource(instance: &ContainerInstance, name: &str) -> Resource {
        instance
            .registered_resources
            .iter()
            .flatten()
            .find(|r| r.name.as_deref() == Some(name))
            .cloned()
            .expect("resource present")
    }

    fn arn_of(instance: &ContainerInstance) -> String {
        instance.container_instance_arn.clone().expect("has arn")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn registration_assigns_a_hex_id_a_managed_instance_id_and_ecs_defaults() {
        let ctx = app_with(&["default"]).await;
        let instance = register_ok(
            &ctx,
            json!({"totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
              "versionInfo": {"agentVersion": "1.0.0"},
              "attributes": [{"name": "ecs.os-type", "value": "linux"}],
              "tags": [{"key": "team", "value": "a"}]}),
        )
        .await;
        let id = id_of(&instance);
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            arn_of(&instance),
            ctx.arns.container_instance("default", &id)
        );
        assert_eq!(instance.ec2_instance_id, Some(managed_instance_id_for(&id)));
        assert_eq!(instance.status.as_deref(), Some("ACTIVE"));
        assert_eq!(resource(&instance, "CPU").integer_value, Some(2048));
        assert_eq!(instance.tags.as_ref().map(Vec::len), Some(1));
        let stored = ctx
            .get::<ContainerInstance>(&keys::instance("default", &id))
            .expect("reads")
            .expect("stored");
        assert_eq!(instance.version, Some(stored.mod_revision as i64));
        let with_doc = register_ok(
            &ctx,
            json!({"instanceIdentityDocument": "{\"instanceId\": \"i-0123\"}"}),
        )
        .await;
        assert_eq!(with_doc.ec2_instance_id.as_deref(), Some("i-0123"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn registering_again_with_the_arn_updates_the_same_instance() {
        let ctx = app_with(&["demo"]).await;
        let first = register_ok(
            &ctx,
            json!({"cluster": "demo",
                   "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024}],
                   "attributes": [{"name": "ecs.capability.old"}]}),
        )
        .await;
        let again = register_ok(
            &ctx,
            json!({"cluster": "demo", "containerInstanceArn": arn_of(&first),
                   "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096}],
                   "versionInfo": {"agentVersion": "2.0.0"},
                   "attributes": [{"name": "ecs.os-type", "value": "linux"}]}),
        )
        .await;
        assert_eq!(arn_of(&again), arn_of(&first));
        assert_eq!(again.registered_at, first.registered_at);
        assert_eq!(again.ec2_instance_id, first.ec2_instance_id);
        assert_eq!(resource(&again, "CPU").integer_value, Some(4096));
        assert!(again.version > first.version);
        let chosen = "0123456789abcdef0123456789abcdef";
        let created = register_ok(
            &ctx,
            json!({"cluster": "demo", "containerInstanceArn": chosen}),
        )
        .await;
        assert_eq!(
            arn_of(&created),
            ctx.arns.container_instance("demo", chosen)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_registrations_name_what_to_fix_and_deregistration_is_final() {
        let ctx = app_with(&["demo"]).await;
        let fails = |body: Value| {
            let ctx = ctx.clone();
            async move { register(ctx, req(body)).await.expect_err("refused").name }
        };
        assert_eq!(
            fails(json!({"cluster": "nope"})).await,
            "ClusterNotFoundException"
        );
        let invalid = "InvalidParameterException";
        let bad_bodies = [
            json!({"cluster": "demo", "totalResources": [{"name": "DISK", "integerValue": 1}]}),
            json!({"cluster": "demo", "totalResources": [{"name": "CPU", "integerValue": -1}]}),
            json!({"cluster": "demo", "attributes": [{"name": "bad*name"}]}),
            json!({"cluster": "demo", "tags": [{"key": "aws:x", "value": "v"}]}),
            json!({"cluster": "demo", "instanceIdentityDocument": "not json"}),
            json!({"cluster": "demo", "containerInstanceArn":
                "arn:aws:ecs:us-east-1:000000000000:container-instance/other/abc"}),
        ];
        for body in bad_bodies {
            assert_eq!(fails(body).await, invalid);
        }
        let instance = register_ok(&ctx, json!({"cluster": "demo"})).await;
        deregister(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstance": arn_of(&instance)})),
        )
        .await
        .expect("deregisters");
        let again = json!({"cluster": "demo", "containerInstanceArn": arn_of(&instance)});
        assert_eq!(fails(again).await, "ClientException");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn describe_reports_missing_instances_and_shows_tags_and_health_only_when_asked() {
        let ctx = app_with(&["demo"]).await;
        let instance = register_ok(
            &ctx,
            json!({"cluster": "demo", "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
        let id = id_of(&instance);
        let plain = describe(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstances": [id, "feedface"]})),
        )
        .await
        .expect("describes");
        assert_eq!(plain.container_instances.len(), 1);
        assert!(plain.container_instances[0].tags.is_none());
        assert!(plain.container_instances[0].health_status.is_none());
        assert_eq!(
            plain.failures,
            vec![Failure::new(
                ctx.arns.container_instance("demo", "feedface"),
                "MISSING"
            )]
        );
        let full = describe(
            ctx.clone(),
            req(
                json!({"cluster": "demo", "containerInstances": [arn_of(&instance)],
                       "include": ["TAGS", "CONTAINER_INSTANCE_HEALTH"]}),
            ),
        )
        .await
        .expect("describes");
        let shown = &full.container_instances[0];
        assert_eq!(shown.tags.as_ref().map(Vec::len), Some(1));
        assert!(shown.health_status.is_some());
        let bad = describe(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstances": [id], "include": ["X"]})),
        )
        .await;
        assert_eq!(
            bad.expect_err("bad include").name,
            "InvalidParameterException"
        );
    }

    async fn list_arns(ctx: &Ctx, body: Value) -> Result<ListContainerInstancesResponse, ApiError> {
        list(ctx.clone(), req(body)).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn listing_hides_inactive_instances_filters_by_status_and_pages() {
        let ctx = app_with(&["demo"]).await;
        let mut arns = Vec::new();
        for _ in 0..3 {
            arns.push(arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await));
        }
        arns.sort();
        deregister(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstance": arns[0]})),
        )
        .await
        .expect("deregisters");
        update_state(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstances": [arns[1]], "status": "DRAINING"})),
        )
        .await
        .expect("drains");
        let all = list_arns(&ctx, json!({"cluster": "demo"}))
            .await
            .expect("lists");
        assert_eq!(all.container_instance_arns, arns[1..].to_vec());
        let draining = list_arns(&ctx, json!({"cluster": "demo", "status": "DRAINING"}))
            .await
            .expect("lists");
        assert_eq!(draining.container_instance_arns, vec![arns[1].clone()]);
        let first = list_arns(&ctx, json!({"cluster": "demo", "maxResults": 1}))
            .await
            .expect("lists");
        assert_eq!(first.container_instance_arns, vec![arns[1].clone()]);
        let second = list_arns(
            &ctx,
            json!({"cluster": "demo", "maxResults": 1, "nextToken": first.next_token}),
        )
        .await
        .expect("lists");
        assert_eq!(second.container_instance_arns, vec![arns[2].clone()]);
        assert!(second.next_token.is_none());
        for body in [
            json!({"cluster": "demo", "filter": "attribute:ecs.os-type = linux"}),
            json!({"cluster": "demo", "status": "INACTIVE"}),
            json!({"cluster": "demo", "maxResults": 0}),
        ] {
            let err = list_arns(&ctx, body).await.expect_err("refused");
            assert_eq!(err.name, "InvalidParameterException");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn listing_filters_with_the_cluster_query_language() {
        let ctx = app_with(&["demo"]).await;
        let mut by_zone = HashMap::new();
        for zone in ["a", "b", "c"] {
            let body = json!({"cluster": "demo", "attributes": [{"name": "zone", "value": zone}]});
            by_zone.insert(zone, arn_of(&register_ok(&ctx, body).await));
        }
        let listed = |filter: &str| {
            let ctx = ctx.clone();
            let body = json!({"cluster": "demo", "filter": filter});
            async move {
                list_arns(&ctx, body)
                    .await
                    .map(|r| r.container_instance_arns)
            }
        };
        assert_eq!(
            listed("attribute:zone == b").await.expect("lists"),
            vec![by_zone["b"].clone()]
        );
        let mut a_c = vec![by_zone["a"].clone(), by_zone["c"].clone()];
        a_c.sort();
        assert_eq!(
            listed("attribute:zone in [a, c]").await.expect("lists"),
            a_c
        );
        assert_eq!(
            listed("runningTasksCount == 0 and not (task:group exists)")
                .await
                .expect("lists")
                .len(),
            3
        );
        assert!(listed("attribute:zone =~ [xy]")
            .await
            .expect("lists")
            .is_empty());
        let err = listed("attribute:zone == b and")
            .await
            .expect_err("bad filter");
        assert_eq!(err.name, "InvalidParameterException");
        assert!(err.message.contains("column 24"), "{}", err.message);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn update_state_drains_and_reactivates_and_reports_failures() {
        let ctx = app_with(&["demo"]).await;
        let live = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
        let gone = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
        deregister(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstance": gone})),
        )
        .await
        .expect("deregisters");
        let set = |status: &str, which: Vec<String>| {
            let ctx = ctx.clone();
            let body = json!({"cluster": "demo", "containerInstances": which, "status": status});
            async move { update_state(ctx, req(body)).await }
        };
        let drained = set("DRAINING", vec![live.clone(), gone.clone(), "cafe".into()])
            .await
            .expect("updates");
        assert_eq!(drained.container_instances.len(), 1);
        assert_eq!(
            drained.container_instances[0].status.as_deref(),
            Some("DRAINING")
        );
        let reasons: Vec<_> = drained
            .failures
            .iter()
            .filter_map(|f| f.reason.clone())
            .collect();
        assert_eq!(reasons, ["MISSING", "INACTIVE"]);
        let active = set("ACTIVE", vec![live.clone()]).await.expect("updates");
        assert_eq!(
            active.container_instances[0].status.as_deref(),
            Some("ACTIVE")
        );
        let bad = set("INACTIVE", vec![live.clone()])
            .await
            .expect_err("refused");
        assert_eq!(bad.name, "InvalidParameterException");
        assert!(
            bad.message.contains("ACTIVE or DRAINING"),
            "{}",
            bad.message
        );
        let too_many = set("ACTIVE", vec![live; 11]).await.expect_err("refused");
        assert_eq!(too_many.name, "InvalidParameterException");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn deregistration_with_unstopped_tasks_needs_force_and_frees_the_cluster() {
        let ctx = app_with(&["demo"]).await;
        let arn = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
        let delete_cluster = || {
            let ctx = ctx.clone();
            async move { clusters::delete_cluster(ctx, req(json!({"cluster": "demo"}))).await }
        };
        let err = delete_cluster().await.expect_err("instance registered");
        assert_eq!(err.name, "ClusterContainsContainerInstancesException");
        let task = json!({"containerInstanceArn": arn, "lastStatus": "RUNNING"});
        let task_key = format!("{}0001", keys::tasks_of("demo"));
        ctx.commit(Txn::new().put(task_key.as_str(), encode(&task)))
            .await
            .expect("stores task");
        let body = json!({"cluster": "demo", "containerInstance": arn});
        let err = deregister(ctx.clone(), req(body.clone()))
            .await
            .expect_err("has tasks");
        assert_eq!(err.name, "InvalidParameterException");
        assert!(err.message.contains("force"), "{}", err.message);
        let mut forced = body.clone();
        forced["force"] = json!(true);
        let gone = deregister(ctx.clone(), req(forced)).await.expect("forced");
        assert_eq!(gone.container_instance.status.as_deref(), Some("INACTIVE"));
        assert_eq!(gone.container_instance.running_tasks_count, Some(1));
        let unknown = json!({"cluster": "demo", "containerInstance": "feedface"});
        let err = deregister(ctx.clone(), req(unknown))
            .await
            .expect_err("unknown");
        assert_eq!(err.name, "InvalidParameterException");
        ctx.commit(Txn::new().delete(task_key.as_str()))
            .await
            .expect("drops task");
        delete_cluster()
            .await
            .expect("cluster deletes once the instance is gone");
    }
}
