//! Capacity provider strategies on RunTask, CreateService and UpdateService: which strategy
//! applies (the call's, or the cluster's default when the call names neither a launch type
//! nor a strategy), the checks ECS makes of it, and one scheduler request per provider — the
//! task's own request plus the attribute that marks the provider's instances, so an instance
//! outside the provider is refused as ECS's `ATTRIBUTE`.

use super::association::NOT_ASSOCIATED;
use super::{lookup, name_of};
use crate::app::App;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::state::{scoped, TaskIndex};
use berth_core::model::capacity_provider::{is_built_in, CapacityProvider};
use berth_core::model::cluster::{CapacityProviderStrategyItem, Cluster};
use berth_core::model::service::Service;
use berth_core::model::TaskStatus;
use berth_core::scheduler::capacity::{split, validate_strategy};
use berth_core::scheduler::{RequiredAttribute, TaskRequest};

/// ECS's message when a call names both.
pub const BOTH_GIVEN: &str = "Specifying both a launch type and capacity provider strategy is \
     not supported. Remove one and try again.";

/// A checked strategy: its items (provider names, base and weight filled in) with the
/// provider each names, and the launch type its tasks get.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub items: Vec<CapacityProviderStrategyItem>,
    pub providers: Vec<CapacityProvider>,
    /// FARGATE for the Fargate providers, EC2 for Auto Scaling group ones (a strategy never
    /// mixes them).
    pub launch_type: &'static str,
}

/// The strategy that applies to a call naming `launch_type` and `given` on `cluster`: the
/// call's (empty counts as none, as tools send it), else the cluster's default when the call
/// names no launch type either, else none (tasks go by launch type). Both named is
/// InvalidParameterException.
pub fn resolve(
    ctx: &Ctx,
    cluster: &Cluster,
    launch_type: Option<&str>,
    given: Option<&[CapacityProviderStrategyItem]>,
) -> Result<Option<Resolved>, ApiError> {
    let given = given.filter(|s| !s.is_empty());
    match (launch_type, given) {
        (Some(_), Some(_)) => Err(ApiError::invalid_parameter(BOTH_GIVEN)),
        (Some(_), None) => Ok(None),
        (None, Some(items)) => check(ctx, cluster, items).map(Some),
        (None, None) => match cluster.default_capacity_provider_strategy.as_deref() {
            Some(items) if !items.is_empty() => check(ctx, cluster, items).map(Some),
            _ => Ok(None),
        },
    }
}

/// Checks a strategy for use on `cluster`: ECS's rules for a strategy, every provider
/// associated with the cluster and ACTIVE, Fargate and Auto Scaling group providers not
/// mixed, and some weight above 0 when there are several.
pub fn check(
    ctx: &Ctx,
    cluster: &Cluster,
    items: &[CapacityProviderStrategyItem],
) -> Result<Resolved, ApiError> {
    validate_strategy(items).map_err(ApiError::invalid_parameter)?;
    let associated = cluster.capacity_providers.as_deref().unwrap_or_default();
    let mut resolved_items = Vec::with_capacity(items.len());
    let mut providers = Vec::with_capacity(items.len());
    for item in items {
        let name = name_of(&item.capacity_provider);
        if !associated.contains(&name) {
            return Err(ApiError::invalid_parameter(NOT_ASSOCIATED));
        }
        let provider = lookup(ctx, &name)?
            .filter(CapacityProvider::is_active)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The specified capacity provider '{name}' is not ACTIVE. Only ACTIVE \
                     capacity providers can be used in a capacity provider strategy."
                ))
            })?;
        providers.push(provider);
        resolved_items.push(CapacityProviderStrategyItem {
            capacity_provider: name,
            weight: Some(item.weight.unwrap_or(0)),
            base: Some(item.base.unwrap_or(0)),
        });
    }
    check_mix(&providers)?;
    if resolved_items.len() > 1 && resolved_items.iter().all(|i| i.weight == Some(0)) {
        return Err(ApiError::invalid_parameter(
            berth_core::scheduler::capacity::ALL_WEIGHTS_ZERO,
        ));
    }
    let launch_type = providers
        .first()
        .map_or("EC2", CapacityProvider::launch_type);
    Ok(Resolved {
        items: resolved_items,
        providers,
        launch_type,
    })
}

/// Refuses a strategy mixing Fargate and Auto Scaling group providers, as ECS does.
pub fn check_mix(providers: &[CapacityProvider]) -> Result<(), ApiError> {
    let fargate = providers
        .iter()
        .filter(|p| is_built_in(p.name.as_deref().unwrap_or_default()))
        .count();
    if fargate > 0 && fargate < providers.len() {
        return Err(ApiError::invalid_parameter(
            "A capacity provider strategy cannot contain a mix of capacity providers using Auto \
             Scaling groups and Fargate providers. Specify one or the other and try again.",
        ));
    }
    Ok(())
}

impl Resolved {
    /// The provider names, in the strategy's order.
    pub fn names(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| i.capacity_provider.clone())
            .collect()
    }

    /// The scheduler requests for `count` more tasks given `existing` tasks per provider (in
    /// the strategy's order): one per provider that gets some, as (provider index, request),
    /// each `base` asking also for the provider's instance attribute.
    pub fn requests(
        &self,
        base: &TaskRequest,
        existing: &[u32],
        count: u32,
    ) -> Result<Vec<(usize, TaskRequest)>, ApiError> {
        let shares = split(&self.items, existing, count).map_err(ApiError::invalid_parameter)?;
        Ok(shares
            .into_iter()
            .enumerate()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| {
                let mut request = base.clone();
                request.count = n as usize;
                let (name, value) = self.providers[k].instance_attribute();
                let required = RequiredAttribute {
                    name: name.to_string(),
                    value,
                    target: None,
                };
                // The FARGATE launch type may ask for Fargate capacity already.
                if !request.required_attributes.contains(&required) {
                    request.required_attributes.push(required);
                }
                (k, request)
            })
            .collect())
    }
}

/// The scheduler requests of one batch of tasks, with the provider each is for (none when
/// tasks go by launch type).
#[derive(Debug)]
pub struct Batch {
    pub requests: Vec<TaskRequest>,
    providers: Vec<Option<String>>,
}

impl Batch {
    /// `count` tasks of `base`: split over the providers of `resolved` given `existing` tasks
    /// per provider (in the strategy's order), or `base` as it is without a strategy.
    pub fn new(
        resolved: Option<&Resolved>,
        mut base: TaskRequest,
        existing: &[u32],
        count: usize,
    ) -> Result<Batch, ApiError> {
        let Some(resolved) = resolved else {
            base.count = count;
            return Ok(Batch {
                requests: vec![base],
                providers: vec![None],
            });
        };
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let names = resolved.names();
        let (providers, requests) = resolved
            .requests(&base, existing, count)?
            .into_iter()
            .map(|(k, request)| (names.get(k).cloned(), request))
            .unzip();
        Ok(Batch {
            requests,
            providers,
        })
    }

    /// The provider of each placement of a plan of this batch that placed `batches[k]`
    /// tasks of request `k`, in the plan's order.
    pub fn providers_of(&self, batches: &[usize]) -> Vec<Option<String>> {
        batches
            .iter()
            .zip(&self.providers)
            .flat_map(|(&n, provider)| std::iter::repeat_n(provider.clone(), n))
            .collect()
    }
}

/// The strategy of a CreateService or UpdateService on `cluster`: as [`resolve`] for a
/// REPLICA service; a DAEMON service takes none (one given is InvalidParameterException, and
/// the cluster's default does not apply: it runs on every instance).
pub fn resolve_for_service(
    ctx: &Ctx,
    cluster: &Cluster,
    launch_type: Option<&str>,
    given: Option<&[CapacityProviderStrategyItem]>,
    daemon: bool,
) -> Result<Option<Resolved>, ApiError> {
    if !daemon {
        return resolve(ctx, cluster, launch_type, given);
    }
    if given.is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Capacity provider strategies are not supported with the DAEMON scheduling \
             strategy: leave capacityProviderStrategy out.",
        ));
    }
    Ok(None)
}

/// The launch type of a service's tasks: its `launchType`, else its strategy's (FARGATE for
/// the Fargate providers, EC2 for Auto Scaling group ones).
pub fn service_launch_type(service: &Service) -> String {
    if let Some(launch_type) = &service.launch_type {
        return launch_type.clone();
    }
    let fargate = service
        .capacity_provider_strategy
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|i| is_built_in(&i.capacity_provider));
    if fargate { "FARGATE" } else { "EC2" }.to_string()
}

/// The batch of `count` more tasks of deployment `deployment` of a service whose strategy is
/// `strategy`, split so the deployment's tasks already running per provider count (the
/// ratio holds across scale-ups). `base` is the service's request without a provider.
pub fn service_batch(
    app: &App,
    cluster: &str,
    service: &str,
    deployment: &str,
    strategy: Option<&[CapacityProviderStrategyItem]>,
    base: TaskRequest,
    count: usize,
) -> Result<Batch, ApiError> {
    let Some(items) = strategy.filter(|s| !s.is_empty()) else {
        return Batch::new(None, base, &[], count);
    };
    let mut providers = Vec::with_capacity(items.len());
    for item in items {
        let provider = lookup(app, &item.capacity_provider)?
            .filter(CapacityProvider::is_active)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The capacity provider '{}' of the service's strategy is not ACTIVE.",
                    item.capacity_provider
                ))
            })?;
        providers.push(provider);
    }
    let resolved = Resolved {
        items: items.to_vec(),
        launch_type: providers
            .first()
            .map_or("EC2", CapacityProvider::launch_type),
        providers,
    };
    let state = app.snapshot();
    let mut existing = vec![0u32; items.len()];
    for entry in state.tasks_by(TaskIndex::Service, &scoped(cluster, service), None) {
        let task = &entry.task;
        if task.started_by.as_deref() != Some(deployment)
            || task.desired_status != Some(TaskStatus::Running)
        {
            continue;
        }
        let on = task.capacity_provider_name.as_deref();
        if let Some(k) = items
            .iter()
            .position(|i| Some(i.capacity_provider.as_str()) == on)
        {
            existing[k] += 1;
        }
    }
    Batch::new(Some(&resolved), base, &existing, count)
}
