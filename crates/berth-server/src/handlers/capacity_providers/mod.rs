//! Capacity providers: CreateCapacityProvider, DescribeCapacityProviders,
//! UpdateCapacityProvider and DeleteCapacityProvider. A provider names an Auto Scaling group;
//! in Berth that group is the container instances registered with the
//! `berth.autoscaling-group` attribute of its name. FARGATE and FARGATE_SPOT are built in:
//! listed, never stored, and neither created, updated nor deleted. Associating providers with
//! clusters is in [`association`]; strategies on RunTask and services in [`strategy`].

pub mod association;
pub mod strategy;

use crate::app::App;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::arn::Arn;
use berth_core::model::capacity_provider::{
    apply_update, built_in, is_built_in, validate_name, validate_settings, with_defaults,
    AutoScalingGroupProvider, CapacityProvider, ManagedScaling, ACTIVE, BUILT_IN, INACTIVE,
};
use berth_core::model::{validate_tags, Failure, Tag};
use berth_core::pagination::PageRequest;
use berth_store::keys;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

/// Input of CreateCapacityProvider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCapacityProviderRequest {
    name: String,
    cluster: Option<String>,
    auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    managed_instances_provider: Option<Value>,
    tags: Option<Vec<Tag>>,
}

/// Input of DescribeCapacityProviders.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersRequest {
    capacity_providers: Option<Vec<String>>,
    cluster: Option<String>,
    include: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The members UpdateCapacityProvider may change.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProviderUpdate {
    managed_scaling: Option<ManagedScaling>,
    managed_termination_protection: Option<String>,
    managed_draining: Option<String>,
}

/// Input of UpdateCapacityProvider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCapacityProviderRequest {
    name: String,
    cluster: Option<String>,
    auto_scaling_group_provider: Option<AutoScalingGroupProviderUpdate>,
    managed_instances_provider: Option<Value>,
}

/// Input of DeleteCapacityProvider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCapacityProviderRequest {
    capacity_provider: String,
    cluster: Option<String>,
}

/// Output of the operations that return one provider.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderResponse {
    capacity_provider: CapacityProvider,
}

/// Output of DescribeCapacityProviders.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersResponse {
    capacity_providers: Vec<CapacityProvider>,
    failures: Vec<Failure>,
    next_token: Option<String>,
}

/// The most providers one DescribeCapacityProviders may name.
const MAX_DESCRIBED: usize = 100;
/// DescribeCapacityProviders' page size, and the largest `maxResults` (ECS: 1 to 10).
const PAGE: usize = 10;

/// The ClientException ECS returns for a provider that is not there.
fn not_found(name: &str) -> ApiError {
    ApiError::client(format!(
        "The specified capacity provider '{name}' does not exist. Specify a valid capacity \
         provider and try again."
    ))
}

/// The ClientException for an operation on FARGATE or FARGATE_SPOT.
fn reserved(name: &str, what: &str) -> ApiError {
    ApiError::client(format!(
        "The {name} capacity provider is reserved and can't be {what}: the FARGATE and \
         FARGATE_SPOT capacity providers are available to every account as they are."
    ))
}

fn no_managed_instances() -> ApiError {
    ApiError::new(
        "UnsupportedFeatureException",
        "Berth has no Amazon ECS Managed Instances: leave managedInstancesProvider out and give \
         an autoScalingGroupProvider.",
    )
}

/// The provider name a reference (name or capacity-provider ARN) names.
pub fn name_of(reference: &str) -> String {
    match Arn::parse(reference) {
        Some(arn) if arn.resource_type == "capacity-provider" => {
            arn.path.last().cloned().unwrap_or_default()
        }
        _ => reference.to_string(),
    }
}

/// The provider `name` as it stands: a built-in one, or the stored record (INACTIVE ones
/// included).
pub fn lookup(app: &App, name: &str) -> Result<Option<CapacityProvider>, ApiError> {
    if is_built_in(name) {
        return Ok(Some(built_in(name, app.arns.capacity_provider(name))));
    }
    Ok(app
        .get::<CapacityProvider>(&keys::capacity_provider(name))?
        .map(|v| v.value))
}

/// Checks that the request's `cluster` (only meaningful for Managed Instances providers,
/// which Berth has not got) names an ACTIVE cluster when it is given.
fn check_cluster(ctx: &Ctx, cluster: Option<&str>) -> Result<(), ApiError> {
    if cluster.is_some() {
        ctx.active_cluster(cluster)?;
    }
    Ok(())
}

/// Creates an Auto Scaling group capacity provider, ACTIVE, with ECS's defaults for the
/// members left out. The name must be new (an INACTIVE provider's may be reused) and the
/// group not used by another provider.
pub async fn create(
    ctx: Ctx,
    req: CreateCapacityProviderRequest,
) -> Result<CapacityProviderResponse, ApiError> {
    validate_name(&req.name).map_err(ApiError::client)?;
    if req.managed_instances_provider.is_some() {
        return Err(no_managed_instances());
    }
    check_cluster(&ctx, req.cluster.as_deref())?;
    let Some(asg) = req.auto_scaling_group_provider else {
        return Err(ApiError::invalid_parameter(
            "autoScalingGroupProvider is required: name the Auto Scaling group (its ARN or \
             name) whose container instances the capacity provider uses.",
        ));
    };
    let group_arn = asg.auto_scaling_group_arn.clone().unwrap_or_default();
    if group_arn.is_empty() {
        return Err(ApiError::invalid_parameter(
            "autoScalingGroupProvider.autoScalingGroupArn is required.",
        ));
    }
    validate_settings(
        asg.managed_scaling.as_ref(),
        asg.managed_termination_protection.as_deref(),
        asg.managed_draining.as_deref(),
    )
    .map_err(ApiError::invalid_parameter)?;
    let tags = req.tags.unwrap_or_default();
    validate_tags(&tags).map_err(ApiError::invalid_parameter)?;
    let provider = CapacityProvider {
        capacity_provider_arn: Some(ctx.arns.capacity_provider(&req.name)),
        name: Some(req.name.clone()),
        status: Some(ACTIVE.into()),
        auto_scaling_group_provider: Some(with_defaults(&asg)),
        tags: Some(tags),
        type_: Some("EC2_AUTOSCALING".into()),
        ..CapacityProvider::default()
    };
    let group = provider.auto_scaling_group_name().unwrap_or_default();
    let taken = ctx
        .list::<CapacityProvider>(keys::CAPACITY_PROVIDERS)?
        .into_iter()
        .map(|v| v.value)
        .any(|p| {
            p.status.as_deref() != Some(INACTIVE)
                && p.name != provider.name
                && p.auto_scaling_group_name() == Some(group)
        });
    if taken {
        return Err(ApiError::client(
            "The specified Auto Scaling group ARN is already being used by another capacity \
             provider. Specify a unique Auto Scaling group ARN and try again.",
        ));
    }
    let stored = ctx
        .update::<CapacityProvider, _>(&keys::capacity_provider(&req.name), |current| match current
        {
            Some(existing) if existing.status.as_deref() != Some(INACTIVE) => {
                Err(ApiError::client(
                    "The specified capacity provider already exists. To change the \
                         configuration of an existing capacity provider, update the capacity \
                         provider.",
                ))
            }
            _ => Ok(provider.clone()),
        })
        .await?;
    Ok(CapacityProviderResponse {
        capacity_provider: stored,
    })
}

/// Describes providers by name or ARN (unknown ones are `MISSING` failures), or, when none is
/// named, every provider (the account's ACTIVE ones, then FARGATE and FARGATE_SPOT), 10 a
/// page. With `cluster`, only the providers associated with that cluster. Tags only with
/// `include: ["TAGS"]`.
pub async fn describe(
    ctx: Ctx,
    req: DescribeCapacityProvidersRequest,
) -> Result<DescribeCapacityProvidersResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| i.as_str() != "TAGS") {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use TAGS."
        )));
    }
    let with_tags = !include.is_empty();
    let shown = |mut p: CapacityProvider| {
        if !with_tags {
            p.tags = Some(Vec::new());
        }
        p
    };
    let associated: Option<Vec<String>> = match req.cluster.as_deref() {
        Some(reference) => Some(
            ctx.active_cluster(Some(reference))?
                .value
                .capacity_providers
                .unwrap_or_default(),
        ),
        None => None,
    };
    let in_scope = |name: &str| {
        associated
            .as_ref()
            .is_none_or(|a| a.iter().any(|n| n == name))
    };
    let named = req.capacity_providers.unwrap_or_default();
    if !named.is_empty() {
        if named.len() > MAX_DESCRIBED {
            return Err(ApiError::invalid_parameter(format!(
                "At most {MAX_DESCRIBED} capacity providers can be described at once."
            )));
        }
        let mut capacity_providers = Vec::new();
        let mut failures = Vec::new();
        for reference in &named {
            let name = name_of(reference);
            match lookup(&ctx, &name)?.filter(|_| in_scope(&name)) {
                Some(provider) => capacity_providers.push(shown(provider)),
                None => {
                    let arn = if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        ctx.arns.capacity_provider(reference)
                    };
                    failures.push(Failure::new(arn, "MISSING"));
                }
            }
        }
        return Ok(DescribeCapacityProvidersResponse {
            capacity_providers,
            failures,
            next_token: None,
        });
    }
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, PAGE)?;
    // Sort keys: the stored providers by name, then the built-in ones.
    let mut all: Vec<(String, CapacityProvider)> = ctx
        .list::<CapacityProvider>(keys::CAPACITY_PROVIDERS)?
        .into_iter()
        .map(|v| v.value)
        .filter(|p| p.status.as_deref() != Some(INACTIVE))
        .filter(|p| in_scope(p.name.as_deref().unwrap_or_default()))
        .map(|p| (format!("0:{}", p.name.as_deref().unwrap_or_default()), p))
        .collect();
    for name in BUILT_IN.into_iter().filter(|n| in_scope(n)) {
        all.push((
            format!("1:{name}"),
            built_in(name, ctx.arns.capacity_provider(name)),
        ));
    }
    let (items, next_token) = page.page(all, |(key, _)| key.clone());
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers: items.into_iter().map(|(_, p)| shown(p)).collect(),
        failures: Vec::new(),
        next_token,
    })
}

/// Changes an Auto Scaling group provider's managed scaling, termination protection and
/// draining; the members not given stay as they are.
pub async fn update(
    ctx: Ctx,
    req: UpdateCapacityProviderRequest,
) -> Result<CapacityProviderResponse, ApiError> {
    let name = name_of(&req.name);
    if is_built_in(&name) {
        return Err(reserved(&name, "updated"));
    }
    if req.managed_instances_provider.is_some() {
        return Err(no_managed_instances());
    }
    check_cluster(&ctx, req.cluster.as_deref())?;
    let Some(update) = req.auto_scaling_group_provider else {
        return Err(ApiError::invalid_parameter(
            "autoScalingGroupProvider is required: give the managedScaling, \
             managedTerminationProtection or managedDraining to change.",
        ));
    };
    validate_settings(
        update.managed_scaling.as_ref(),
        update.managed_termination_protection.as_deref(),
        update.managed_draining.as_deref(),
    )
    .map_err(ApiError::invalid_parameter)?;
    let updated = ctx
        .update::<CapacityProvider, _>(&keys::capacity_provider(&name), |current| {
            let mut provider = current
                .filter(|p| p.status.as_deref() == Some(ACTIVE))
                .ok_or_else(|| not_found(&name))?;
            let asg = provider
                .auto_scaling_group_provider
                .get_or_insert_with(Default::default);
            apply_update(
                asg,
                update.managed_scaling.as_ref(),
                update.managed_termination_protection.as_deref(),
                update.managed_draining.as_deref(),
            );
            let scaling = asg.managed_scaling.clone();
            validate_settings(scaling.as_ref(), None, None).map_err(ApiError::invalid_parameter)?;
            provider.update_status = Some("UPDATE_COMPLETE".into());
            provider.update_status_reason = None;
            Ok(provider)
        })
        .await?;
    Ok(CapacityProviderResponse {
        capacity_provider: updated,
    })
}

/// Deletes a provider. As on ECS, one still associated with a cluster is not deleted: the
/// answer (and the provider) show `DELETE_FAILED` with the reason. Otherwise the answer shows
/// it ACTIVE with `DELETE_IN_PROGRESS`, and it is INACTIVE (`DELETE_COMPLETE`) from then on.
pub async fn delete(
    ctx: Ctx,
    req: DeleteCapacityProviderRequest,
) -> Result<CapacityProviderResponse, ApiError> {
    let name = name_of(&req.capacity_provider);
    if is_built_in(&name) {
        return Err(reserved(&name, "deleted"));
    }
    check_cluster(&ctx, req.cluster.as_deref())?;
    let key = keys::capacity_provider(&name);
    loop {
        let current = ctx
            .get::<CapacityProvider>(&key)?
            .filter(|v| v.value.status.as_deref() == Some(ACTIVE))
            .ok_or_else(|| not_found(&name))?;
        let clusters = association::active_clusters(&ctx)?;
        let mut provider = current.value.clone();
        let holder = clusters.iter().find(|c| {
            c.value
                .capacity_providers
                .as_deref()
                .unwrap_or_default()
                .contains(&name)
        });
        let answer = match holder {
            Some(cluster) => {
                provider.update_status = Some("DELETE_FAILED".into());
                provider.update_status_reason = Some(format!(
                    "The capacity provider cannot be deleted because it is associated with \
                     cluster: {}. Remove the capacity provider from the cluster and try again.",
                    cluster.value.cluster_name.as_deref().unwrap_or_default()
                ));
                provider.clone()
            }
            None => {
                let mut answer = provider.clone();
                answer.update_status = Some("DELETE_IN_PROGRESS".into());
                answer.update_status_reason = None;
                provider.status = Some(INACTIVE.into());
                provider.update_status = Some("DELETE_COMPLETE".into());
                provider.update_status_reason = None;
                answer
            }
        };
        // An association made meanwhile writes the provider too (see `association`), so the
        // guard on the provider alone does not miss it.
        let txn = berth_store::Txn::new()
            .when(berth_store::Compare::at(&key, current.mod_revision))
            .put(&key, berth_store::typed::encode(&provider));
        if ctx.commit(txn).await?.succeeded {
            return Ok(CapacityProviderResponse {
                capacity_provider: answer,
            });
        }
    }
}

#[cfg(test)]
mod tests;
