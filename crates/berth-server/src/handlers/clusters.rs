//! Clusters: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
//! UpdateClusterSettings and DeleteCluster.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::model::cluster::{
    merge_cluster_settings, validate_cluster_settings, CapacityProviderStrategyItem, Cluster,
    ClusterConfiguration, ClusterServiceConnectDefaults, ClusterSetting,
};
use berth_core::model::{
    validate_tags, ClusterStatus, ContainerInstanceStatus, Failure, KeyValuePair, ServiceStatus,
    Tag,
};
use berth_core::names::{invalid_name_message, is_valid_name};
use berth_core::pagination::PageRequest;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Input of CreateCluster.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    cluster_name: Option<String>,
    tags: Option<Vec<Tag>>,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<ClusterConfiguration>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    service_connect_defaults: Option<ServiceConnectDefaultsRequest>,
}

/// The `serviceConnectDefaults` member of CreateCluster and UpdateCluster.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectDefaultsRequest {
    namespace: String,
    /// Members Berth does not read. Flattened, they also make serde read this structure
    /// from a JSON object only: without them `["ns"]` would be read as `{"namespace": "ns"}`.
    #[serde(flatten)]
    _others: serde_json::Map<String, serde_json::Value>,
}

/// Output of the operations that return one cluster.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResponse {
    cluster: Cluster,
}

/// Input of DescribeClusters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    clusters: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

/// Output of DescribeClusters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersResponse {
    clusters: Vec<Cluster>,
    failures: Vec<Failure>,
}

/// Input of ListClusters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of ListClusters.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersResponse {
    cluster_arns: Vec<String>,
    next_token: Option<String>,
}

/// Input of UpdateCluster.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<ClusterConfiguration>,
    service_connect_defaults: Option<ServiceConnectDefaultsRequest>,
}

/// Input of UpdateClusterSettings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterSettingsRequest {
    cluster: String,
    settings: Vec<ClusterSetting>,
}

/// Input of DeleteCluster.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteClusterRequest {
    cluster: String,
}

const INCLUDE_VALUES: [&str; 5] = [
    "ATTACHMENTS",
    "CONFIGURATIONS",
    "SETTINGS",
    "STATISTICS",
    "TAGS",
];

/// The `serviceConnectDefaults` a request asks for: `Some(None)` to remove them (an empty
/// namespace), `Some(Some(..))` with the namespace's ARN (created if only named and new).
async fn service_connect_defaults(
    ctx: &Ctx,
    request: Option<&ServiceConnectDefaultsRequest>,
) -> Result<Option<Option<ClusterServiceConnectDefaults>>, ApiError> {
    let Some(request) = request else {
        return Ok(None);
    };
    if request.namespace.is_empty() {
        return Ok(Some(None));
    }
    let arn =
        crate::servicediscovery::namespaces::for_service_connect(ctx, &request.namespace).await?;
    Ok(Some(Some(ClusterServiceConnectDefaults {
        namespace: Some(arn),
    })))
}

/// A new ACTIVE cluster as ECS returns it from CreateCluster.
fn new_cluster(ctx: &Ctx, name: &str, req: &CreateClusterRequest) -> Cluster {
    let settings = {
        let mut settings = vec![ClusterSetting {
            name: Some("containerInsights".into()),
            value: Some("disabled".into()),
        }];
        merge_cluster_settings(&mut settings, req.settings.as_deref().unwrap_or_default());
        settings
    };
    Cluster {
        cluster_arn: Some(ctx.arns.cluster(name)),
        cluster_name: Some(name.to_string()),
        configuration: req.configuration.clone(),
        status: Some(ClusterStatus::Active),
        tags: Some(req.tags.clone().unwrap_or_default()),
        settings: Some(settings),
        capacity_providers: Some(Vec::new()),
        default_capacity_provider_strategy: Some(Vec::new()),
        ..Cluster::default()
    }
}

/// Creates a cluster; creating one that already exists returns it unchanged, as ECS does.
pub async fn create_cluster(
    ctx: Ctx,
    req: CreateClusterRequest,
) -> Result<ClusterResponse, ApiError> {
    let name = req
        .cluster_name
        .clone()
        .unwrap_or_else(|| "default".to_string());
    if !is_valid_name(&name) {
        return Err(ApiError::invalid_parameter(invalid_name_message(
            "Cluster name",
            &name,
        )));
    }
    validate_tags(req.tags.as_deref().unwrap_or_default()).map_err(ApiError::invalid_parameter)?;
    validate_cluster_settings(req.settings.as_deref().unwrap_or_default())
        .map_err(ApiError::invalid_parameter)?;
    let connect_defaults =
        service_connect_defaults(&ctx, req.service_connect_defaults.as_ref()).await?;
    let providers = req.capacity_providers.as_deref().unwrap_or_default();
    let strategy = req
        .default_capacity_provider_strategy
        .as_deref()
        .unwrap_or_default();
    let key = keys::cluster(&name);
    let cluster = loop {
        // Checked on each try, and the providers guarded as checked.
        let association = if providers.is_empty() && strategy.is_empty() {
            None
        } else {
            Some(crate::handlers::capacity_providers::association::check(
                &ctx, &name, providers, strategy,
            )?)
        };
        let current = ctx.get::<Cluster>(&key)?;
        let revision = current.as_ref().map_or(0, |c| c.mod_revision);
        if let Some(existing) = current {
            if existing.value.status == Some(ClusterStatus::Active) {
                break existing.value;
            }
        }
        let mut cluster = new_cluster(&ctx, &name, &req);
        cluster.service_connect_defaults = connect_defaults.clone().flatten();
        let mut txn = Txn::new().when(Compare::at(&key, revision));
        if let Some(association) = association {
            cluster.capacity_providers = Some(association.providers.clone());
            cluster.default_capacity_provider_strategy = Some(association.strategy.clone());
            txn = association.guard(txn);
        }
        if ctx.commit(txn.put(&key, encode(&cluster))).await?.succeeded {
            break cluster;
        }
    };
    Ok(ClusterResponse {
        cluster: with_counts(&ctx, cluster, &full_view()),
    })
}

/// What CreateCluster and the update operations show of the cluster they return.
pub(crate) fn full_view() -> Vec<String> {
    ["SETTINGS", "CONFIGURATIONS", "TAGS"]
        .map(String::from)
        .to_vec()
}

/// Live counts of what runs in a cluster.
#[derive(Default)]
struct ClusterCounts {
    instances: i32,
    running_tasks: i32,
    pending_tasks: i32,
    active_services: i32,
    draining_services: i32,
}

/// The counts of a cluster, from the counters the state cache keeps (no scan).
fn counts(ctx: &Ctx, name: &str) -> ClusterCounts {
    let state = ctx.snapshot();
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    let (running, pending) = state.cluster_task_counts(name);
    let instances =
        |status: ContainerInstanceStatus| state.status_count("instances", name, status.as_str());
    let services = |status: ServiceStatus| state.status_count("services", name, status.as_str());
    ClusterCounts {
        instances: count(
            instances(ContainerInstanceStatus::Active)
                + instances(ContainerInstanceStatus::Draining),
        ),
        running_tasks: count(running),
        pending_tasks: count(pending),
        active_services: count(services(ServiceStatus::Active)),
        draining_services: count(services(ServiceStatus::Draining)),
    }
}

/// The part of a cluster's counts that is Fargate's: FARGATE tasks (from the state cache's
/// counters) and services of the FARGATE launch type (read, only when statistics are asked
/// for).
fn fargate_counts(ctx: &Ctx, name: &str) -> ClusterCounts {
    let state = ctx.snapshot();
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    let (running, pending) = state.cluster_fargate_counts(name);
    let mut out = ClusterCounts {
        running_tasks: count(running),
        pending_tasks: count(pending),
        ..ClusterCounts::default()
    };
    for key in state.service_keys_of(name) {
        let Ok(Some(record)) = ctx.get::<berth_core::service::ServiceRecord>(key) else {
            continue;
        };
        if record.value.service.launch_type.as_deref() != Some("FARGATE") {
            continue;
        }
        match record.value.service.status {
            Some(ServiceStatus::Active) => out.active_services += 1,
            Some(ServiceStatus::Draining) => out.draining_services += 1,
            _ => {}
        }
    }
    out
}

/// Fills in the live counts and the parts `include` asks for, as DescribeClusters shows them.
pub(crate) fn with_counts(ctx: &Ctx, mut cluster: Cluster, include: &[String]) -> Cluster {
    let wants = |what: &str| include.iter().any(|i| i == what);
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let active = cluster.status == Some(ClusterStatus::Active);
    let c = if active {
        counts(ctx, &name)
    } else {
        ClusterCounts {
            instances: 0,
            running_tasks: 0,
            pending_tasks: 0,
            active_services: 0,
            draining_services: 0,
        }
    };
    cluster.registered_container_instances_count = Some(c.instances);
    cluster.running_tasks_count = Some(c.running_tasks);
    cluster.pending_tasks_count = Some(c.pending_tasks);
    cluster.active_services_count = Some(c.active_services);
    cluster.statistics = Some(if wants("STATISTICS") {
        let stat = |k: &str, v: i32| KeyValuePair {
            name: Some(k.into()),
            value: Some(v.to_string()),
        };
        let f = if active {
            fargate_counts(ctx, &name)
        } else {
            ClusterCounts::default()
        };
        vec![
            stat("runningEC2TasksCount", c.running_tasks - f.running_tasks),
            stat("runningFargateTasksCount", f.running_tasks),
            stat("pendingEC2TasksCount", c.pending_tasks - f.pending_tasks),
            stat("pendingFargateTasksCount", f.pending_tasks),
            stat(
                "activeEC2ServiceCount",
                c.active_services - f.active_services,
            ),
            stat("activeFargateServiceCount", f.active_services),
            stat(
                "drainingEC2ServiceCount",
                c.draining_services - f.draining_services,
            ),
            stat("drainingFargateServiceCount", f.draining_services),
        ]
    } else {
        Vec::new()
    });
    if !include.is_empty() {
        if !wants("TAGS") {
            cluster.tags = Some(Vec::new());
        }
        if !wants("SETTINGS") {
            cluster.settings = None;
        }
        if !wants("CONFIGURATIONS") {
            cluster.configuration = None;
        }
    } else {
        cluster.tags = Some(Vec::new());
        cluster.settings = None;
        cluster.configuration = None;
    }
    if wants("ATTACHMENTS") {
        cluster.attachments = Some(Vec::new());
    }
    cluster
}

/// Describes clusters by name or ARN (`default` when none is named); unknown ones are
/// `MISSING` failures.
pub async fn describe_clusters(
    ctx: Ctx,
    req: DescribeClustersRequest,
) -> Result<DescribeClustersResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include
        .iter()
        .find(|i| !INCLUDE_VALUES.contains(&i.as_str()))
    {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS or TAGS."
        )));
    }
    let references = req.clusters.unwrap_or_else(|| vec!["default".to_string()]);
    if references.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "At most 100 clusters can be described at once.",
        ));
    }
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for reference in references {
        let found = ctx
            .cluster_name(Some(&reference))
            .ok()
            .map(|name| ctx.get::<Cluster>(&keys::cluster(&name)))
            .transpose()?
            .flatten();
        match found {
            Some(cluster) => clusters.push(with_counts(&ctx, cluster.value, &include)),
            None => {
                let arn = match ctx.cluster_name(Some(&reference)) {
                    Ok(name) => ctx.arns.cluster(&name),
                    Err(_) => reference.clone(),
                };
                failures.push(Failure::new(arn, "MISSING"));
            }
        }
    }
    Ok(DescribeClustersResponse { clusters, failures })
}

/// Lists the ARNs of ACTIVE clusters, by name, a page at a time.
pub async fn list_clusters(
    ctx: Ctx,
    req: ListClustersRequest,
) -> Result<ListClustersResponse, ApiError> {
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let names: Vec<String> = ctx
        .list::<Cluster>(keys::CLUSTERS)?
        .into_iter()
        .filter(|c| c.value.status == Some(ClusterStatus::Active))
        .filter_map(|c| c.value.cluster_name)
        .collect();
    let (names, next_token) = page.page(names, Clone::clone);
    Ok(ListClustersResponse {
        cluster_arns: names.iter().map(|n| ctx.arns.cluster(n)).collect(),
        next_token,
    })
}

/// Changes a cluster's settings and configuration.
pub async fn update_cluster(
    ctx: Ctx,
    req: UpdateClusterRequest,
) -> Result<ClusterResponse, ApiError> {
    let settings = req.settings.unwrap_or_default();
    validate_cluster_settings(&settings).map_err(ApiError::invalid_parameter)?;
    // The cluster is looked up first, so an unknown one creates no namespace.
    ctx.active_cluster(Some(&req.cluster))?;
    let connect_defaults =
        service_connect_defaults(&ctx, req.service_connect_defaults.as_ref()).await?;
    let cluster = update_active(&ctx, &req.cluster, |cluster| {
        if let Some(defaults) = &connect_defaults {
            cluster.service_connect_defaults = defaults.clone();
        }
        merge_cluster_settings(cluster.settings.get_or_insert_with(Vec::new), &settings);
        if let Some(configuration) = &req.configuration {
            cluster.configuration = Some(configuration.clone());
        }
    })
    .await?;
    Ok(ClusterResponse {
        cluster: with_counts(&ctx, cluster, &full_view()),
    })
}

/// Changes a cluster's settings (`containerInsights`).
pub async fn update_cluster_settings(
    ctx: Ctx,
    req: UpdateClusterSettingsRequest,
) -> Result<ClusterResponse, ApiError> {
    validate_cluster_settings(&req.settings).map_err(ApiError::invalid_parameter)?;
    let cluster = update_active(&ctx, &req.cluster, |cluster| {
        merge_cluster_settings(cluster.settings.get_or_insert_with(Vec::new), &req.settings);
    })
    .await?;
    Ok(ClusterResponse {
        cluster: with_counts(&ctx, cluster, &full_view()),
    })
}

/// Applies `change` to the ACTIVE cluster `reference` names, under compare-on-revision.
async fn update_active(
    ctx: &Ctx,
    reference: &str,
    mut change: impl FnMut(&mut Cluster),
) -> Result<Cluster, ApiError> {
    let name = ctx.cluster_name(Some(reference))?;
    ctx.update::<Cluster, _>(&keys::cluster(&name), |current| match current {
        Some(mut cluster) if cluster.status == Some(ClusterStatus::Active) => {
            change(&mut cluster);
            Ok(cluster)
        }
        _ => Err(ApiError::cluster_not_found()),
    })
    .await
}

/// Deletes a cluster: it becomes INACTIVE. Refused while it has container instances,
/// services or tasks, as ECS refuses it.
pub async fn delete_cluster(
    ctx: Ctx,
    req: DeleteClusterRequest,
) -> Result<ClusterResponse, ApiError> {
    let name = ctx.cluster_name(Some(&req.cluster))?;
    let cluster = ctx
        .update::<Cluster, _>(&keys::cluster(&name), |current| {
            let Some(mut cluster) = current.filter(|c| c.status == Some(ClusterStatus::Active)) else {
                return Err(ApiError::cluster_not_found());
            };
            let c = counts(&ctx, &name);
            if c.instances > 0 {
                return Err(ApiError::new(
                    "ClusterContainsContainerInstancesException",
                    "The Cluster cannot be deleted while Container Instances are active or draining.",
                ));
            }
            if c.active_services + c.draining_services > 0 {
                return Err(ApiError::new(
                    "ClusterContainsServicesException",
                    "The Cluster cannot be deleted while Services are active.",
                ));
            }
            if c.running_tasks + c.pending_tasks > 0 {
                return Err(ApiError::new(
                    "ClusterContainsTasksException",
                    "The Cluster cannot be deleted while Tasks are active.",
                ));
            }
            cluster.status = Some(ClusterStatus::Inactive);
            Ok(cluster)
        })
        .await?;
    Ok(ClusterResponse {
        cluster: with_counts(&ctx, cluster, &[]),
    })
}

/// Creates cluster `name` with ECS's defaults unless an ACTIVE one exists (for `berth up`).
pub async fn ensure_cluster(
    app: &std::sync::Arc<crate::App>,
    name: &str,
) -> Result<Cluster, ApiError> {
    let ctx = Ctx {
        app: app.clone(),
        caller: crate::auth::root_principal(app)?,
    };
    let req = CreateClusterRequest {
        cluster_name: Some(name.to_string()),
        tags: None,
        settings: None,
        configuration: None,
        capacity_providers: None,
        default_capacity_provider_strategy: None,
        service_connect_defaults: None,
    };
    Ok(create_cluster(ctx, req).await?.cluster)
}
