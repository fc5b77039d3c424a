//! Which capacity providers a cluster may use: PutClusterCapacityProviders, and the checks it
//! shares with CreateCluster. As on ECS, every provider must exist and be ACTIVE, an Auto
//! Scaling group provider belongs to one cluster at most (FARGATE and FARGATE_SPOT to any
//! number), the default strategy may name only the cluster's providers, and a provider still
//! used by a service's strategy or by a task cannot be taken away.

use super::strategy::check_mix;
use super::{lookup, name_of};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::clusters::{full_view, with_counts};
use crate::state::{scoped, TaskIndex};
use berth_core::model::capacity_provider::is_built_in;
use berth_core::model::cluster::{CapacityProviderStrategyItem, Cluster};
use berth_core::model::{ClusterStatus, ServiceStatus, TaskStatus};
use berth_core::scheduler::capacity::validate_strategy;
use berth_core::service::ServiceRecord;
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};

/// Input of PutClusterCapacityProviders.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterCapacityProvidersRequest {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// Output of PutClusterCapacityProviders.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterCapacityProvidersResponse {
    cluster: Cluster,
}

/// ECS's message for a strategy naming a provider its cluster has not got.
pub const NOT_ASSOCIATED: &str = "The specified capacity provider strategy cannot contain a \
     capacity provider that is not associated with the cluster. Associate the capacity provider \
     with the cluster or specify a valid capacity provider and try again.";

/// The ACTIVE clusters, with their revisions.
pub fn active_clusters(ctx: &Ctx) -> Result<Vec<Versioned<Cluster>>, ApiError> {
    Ok(ctx
        .list::<Cluster>(keys::CLUSTERS)?
        .into_iter()
        .filter(|c| c.value.status == Some(ClusterStatus::Active))
        .collect())
}

/// What a cluster's providers and default strategy will be once checked: provider names
/// (ARNs read as names), and the revisions of the stored providers they were checked at.
#[derive(Debug)]
pub struct Association {
    pub providers: Vec<String>,
    pub strategy: Vec<CapacityProviderStrategyItem>,
    /// (key, revision, record) of each stored provider named: the transaction that
    /// associates them guards on each and writes it back unchanged, so two associations of
    /// one provider (or one and the provider's deletion) cannot both commit.
    pub touch: Vec<(String, u64, Vec<u8>)>,
}

impl Association {
    /// `txn` guarded on each stored provider named, at the revision it was checked at, and
    /// writing it back unchanged: one provider, one cluster, so another cluster's association
    /// of it (which does the same) or its deletion (which writes it) cannot commit beside
    /// this one unseen.
    pub fn guard(&self, mut txn: Txn) -> Txn {
        for (key, revision, record) in &self.touch {
            txn = txn
                .when(Compare::at(key, *revision))
                .put(key, record.clone());
        }
        txn
    }
}

/// Checks the providers and default strategy `cluster` is to have, against the providers as
/// stored and the other ACTIVE clusters' associations.
pub fn check(
    ctx: &Ctx,
    cluster: &str,
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> Result<Association, ApiError> {
    let providers: Vec<String> = providers.iter().map(|p| name_of(p)).collect();
    let mut touch = Vec::new();
    for (k, name) in providers.iter().enumerate() {
        if providers[..k].contains(name) {
            return Err(ApiError::invalid_parameter(format!(
                "The capacity provider '{name}' is named more than once: name each capacity \
                 provider once."
            )));
        }
        if is_built_in(name) {
            continue;
        }
        let key = keys::capacity_provider(name);
        let stored = ctx
            .get::<berth_core::model::capacity_provider::CapacityProvider>(&key)?
            .filter(|v| v.value.is_active())
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The specified capacity provider '{name}' does not exist or is not ACTIVE. \
                     Specify a valid capacity provider and try again."
                ))
            })?;
        touch.push((key, stored.mod_revision, encode(&stored.value)));
    }
    // The clusters are read after the providers: an association committed since would have
    // written a provider (and fails the guard on it), one committed before shows here.
    let clusters = active_clusters(ctx)?;
    for name in providers.iter().filter(|name| !is_built_in(name)) {
        let other = clusters.iter().find(|c| {
            c.value.cluster_name.as_deref() != Some(cluster)
                && c.value
                    .capacity_providers
                    .as_deref()
                    .unwrap_or_default()
                    .contains(name)
        });
        if let Some(other) = other {
            return Err(ApiError::invalid_parameter(format!(
                "The specified capacity provider '{name}' is already associated with cluster \
                 '{}'. A capacity provider that uses an Auto Scaling group can be associated \
                 with one cluster only.",
                other.value.cluster_name.as_deref().unwrap_or_default()
            )));
        }
    }
    validate_strategy(strategy).map_err(ApiError::invalid_parameter)?;
    let mut resolved = Vec::new();
    for item in strategy {
        let name = name_of(&item.capacity_provider);
        if !providers.contains(&name) {
            return Err(ApiError::invalid_parameter(NOT_ASSOCIATED));
        }
        if let Some(provider) = lookup(ctx, &name)? {
            resolved.push(provider);
        }
    }
    check_mix(&resolved)?;
    let strategy = strategy
        .iter()
        .map(|item| CapacityProviderStrategyItem {
            capacity_provider: name_of(&item.capacity_provider),
            weight: Some(item.weight.unwrap_or(0)),
            base: Some(item.base.unwrap_or(0)),
        })
        .collect();
    Ok(Association {
        providers,
        strategy,
        touch,
    })
}

/// Whether provider `name` is in use in `cluster`: named by the strategy of a service that
/// is not INACTIVE, or running a task not yet stopped.
fn in_use(ctx: &Ctx, cluster: &str, name: &str) -> Result<bool, ApiError> {
    let by_service = ctx
        .list::<ServiceRecord>(&keys::services_of(cluster))?
        .into_iter()
        .filter(|s| s.value.service.status != Some(ServiceStatus::Inactive))
        .any(|s| {
            s.value
                .service
                .capacity_provider_strategy
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|i| i.capacity_provider == name)
        });
    if by_service {
        return Ok(true);
    }
    let state = ctx.snapshot();
    let by_task = state
        .tasks_by(
            TaskIndex::Desired,
            &scoped(cluster, TaskStatus::Running.as_str()),
            None,
        )
        .any(|t| {
            t.task.capacity_provider_name.as_deref() == Some(name)
                && t.task.last_status != Some(TaskStatus::Stopped)
        });
    Ok(by_task)
}

/// Replaces a cluster's capacity providers and default strategy (both required, either may
/// be empty). A provider taken away while a service's strategy names it or a task runs on
/// it is ResourceInUseException.
pub async fn put_cluster_capacity_providers(
    ctx: Ctx,
    req: PutClusterCapacityProvidersRequest,
) -> Result<PutClusterCapacityProvidersResponse, ApiError> {
    loop {
        let current = ctx.active_cluster(Some(&req.cluster))?;
        let name = current.value.cluster_name.clone().unwrap_or_default();
        let association = check(
            &ctx,
            &name,
            &req.capacity_providers,
            &req.default_capacity_provider_strategy,
        )?;
        for removed in current
            .value
            .capacity_providers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|p| !association.providers.contains(p))
        {
            if in_use(&ctx, &name, removed)? {
                return Err(ApiError::new(
                    "ResourceInUseException",
                    "The specified capacity provider is in use and cannot be removed.",
                ));
            }
        }
        let mut cluster = current.value.clone();
        cluster.capacity_providers = Some(association.providers.clone());
        cluster.default_capacity_provider_strategy = Some(association.strategy.clone());
        let key = keys::cluster(&name);
        let txn = association
            .guard(Txn::new().when(Compare::at(&key, current.mod_revision)))
            .put(&key, encode(&cluster));
        if ctx.commit(txn).await?.succeeded {
            return Ok(PutClusterCapacityProvidersResponse {
                cluster: with_counts(&ctx, cluster, &full_view()),
            });
        }
    }
}
