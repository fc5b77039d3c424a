//! Scalable targets: RegisterScalableTarget, DescribeScalableTargets,
//! DeregisterScalableTarget. A target is a record in the store
//! (`/autoscaling/targets/ecs/service/CLUSTER/SERVICE`) holding its bounds, suspended state,
//! the cooldown marks of its last scalings and its recent activities.

use super::activities::Activity;
use super::{
    answer_page, authorize, ecs_resource, lists_ecs, not_found, validation, DESIRED_COUNT,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::service::ServiceRecord;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where scalable targets are kept, by resource id.
pub const TARGETS: &str = "/autoscaling/targets/ecs/";
/// Activities kept per target (the oldest go first).
const ACTIVITIES_KEPT: usize = 100;

/// The store key of the target of `resource_id` (`service/CLUSTER/SERVICE`).
pub fn target_key(resource_id: &str) -> String {
    format!("{TARGETS}{resource_id}")
}

/// Which kinds of scaling are suspended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Suspended {
    #[serde(default)]
    pub dynamic_scaling_in_suspended: bool,
    #[serde(default)]
    pub dynamic_scaling_out_suspended: bool,
    #[serde(default)]
    pub scheduled_scaling_suspended: bool,
}

/// A scalable target as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub resource_id: String,
    pub cluster: String,
    pub service: String,
    pub arn: String,
    pub min: i64,
    pub max: i64,
    pub role_arn: String,
    /// Epoch seconds.
    pub created: f64,
    pub suspended: Suspended,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When the last scale-out happened (epoch seconds) and the capacity it set.
    #[serde(default)]
    pub last_scale_out: Option<(f64, i64)>,
    /// When the last scale-in happened (epoch seconds).
    #[serde(default)]
    pub last_scale_in: Option<f64>,
    /// Oldest first.
    #[serde(default)]
    pub activities: Vec<Activity>,
}

impl Target {
    /// Adds `activity`, forgetting the oldest beyond what is kept.
    pub fn record(&mut self, activity: Activity) {
        self.activities.push(activity);
        if self.activities.len() > ACTIVITIES_KEPT {
            let extra = self.activities.len() - ACTIVITIES_KEPT;
            self.activities.drain(..extra);
        }
    }

    fn describe(&self) -> Value {
        json!({
            "ServiceNamespace": "ecs",
            "ResourceId": self.resource_id,
            "ScalableDimension": DESIRED_COUNT,
            "MinCapacity": self.min,
            "MaxCapacity": self.max,
            "RoleARN": self.role_arn,
            "CreationTime": self.created,
            "SuspendedState": self.suspended,
            "ScalableTargetARN": self.arn,
        })
    }
}

/// RegisterScalableTarget's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterRequest {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
    #[serde(rename = "RoleARN")]
    role_arn: Option<String>,
    suspended_state: Option<Suspended>,
    tags: Option<BTreeMap<String, String>>,
}

/// The ECS service a target scales, if it exists and is active.
pub fn service_of(ctx: &Ctx, cluster: &str, service: &str) -> Result<ServiceRecord, ApiError> {
    ctx.get::<ServiceRecord>(&keys::service(cluster, service))?
        .map(|s| s.value)
        .filter(|s| s.service.status == Some(berth_core::model::ServiceStatus::Active))
        .ok_or_else(|| {
            validation(format!(
                "ECS service doesn't exist: service/{cluster}/{service}"
            ))
        })
}

/// RegisterScalableTarget: makes the service scalable between MinCapacity and MaxCapacity
/// (both needed the first time), or changes what is given of an existing target.
pub async fn register(ctx: Ctx, input: RegisterRequest) -> Result<Value, ApiError> {
    let (cluster, service, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    authorize(&ctx, "RegisterScalableTarget", "*")?;
    service_of(&ctx, &cluster, &service)?;
    for (name, value) in [
        ("MinCapacity", input.min_capacity),
        ("MaxCapacity", input.max_capacity),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(validation(format!("{name} must not be negative.")));
        }
    }
    let key = target_key(&resource_id);
    loop {
        let existing = ctx.get::<Target>(&key)?;
        let (target, guard) = match &existing {
            Some(found) => {
                let mut target = found.value.clone();
                target.min = input.min_capacity.unwrap_or(target.min);
                target.max = input.max_capacity.unwrap_or(target.max);
                if let Some(suspended) = input.suspended_state {
                    target.suspended = suspended;
                }
                if let Some(role) = &input.role_arn {
                    target.role_arn = role.clone();
                }
                if let Some(tags) = &input.tags {
                    target.tags.extend(tags.clone());
                }
                (target, Compare::at(&key, found.mod_revision))
            }
            None => {
                let (Some(min), Some(max)) = (input.min_capacity, input.max_capacity) else {
                    return Err(validation(
                        "MinCapacity and MaxCapacity are required to register a new scalable \
                         target.",
                    ));
                };
                let target = Target {
                    resource_id: resource_id.clone(),
                    cluster: cluster.clone(),
                    service: service.clone(),
                    arn: format!(
                        "arn:aws:application-autoscaling:{}:{}:scalable-target/{}",
                        ctx.arns.region,
                        ctx.arns.account_id,
                        super::new_id().replace('-', "")
                    ),
                    min,
                    max,
                    role_arn: input.role_arn.clone().unwrap_or_else(|| {
                        format!(
                            "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
                            ctx.arns.account_id
                        )
                    }),
                    created: ctx.now(),
                    suspended: input.suspended_state.unwrap_or_default(),
                    tags: input.tags.clone().unwrap_or_default(),
                    last_scale_out: None,
                    last_scale_in: None,
                    activities: Vec::new(),
                };
                (target, Compare::absent(&key))
            }
        };
        if target.min > target.max {
            return Err(validation(format!(
                "MinCapacity ({}) must not be greater than MaxCapacity ({}).",
                target.min, target.max
            )));
        }
        let arn = target.arn.clone();
        let txn = Txn::new().when(guard).put(&key, encode(&target));
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "ScalableTargetARN": arn }));
        }
    }
}

/// DescribeScalableTargets' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    service_namespace: Option<String>,
    resource_ids: Option<Vec<String>>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// DescribeScalableTargets: the namespace's targets, by resource id, in pages.
pub async fn describe(ctx: Ctx, input: DescribeRequest) -> Result<Value, ApiError> {
    authorize(&ctx, "DescribeScalableTargets", "*")?;
    let mut targets: Vec<Target> = if lists_ecs(
        input.service_namespace.as_deref(),
        input.scalable_dimension.as_deref(),
    )? {
        ctx.list::<Target>(TARGETS)?
            .into_iter()
            .map(|t| t.value)
            .filter(|t| {
                input
                    .resource_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&t.resource_id))
            })
            .collect()
    } else {
        Vec::new()
    };
    answer_page(
        &mut targets,
        input.next_token.as_deref(),
        input.max_results,
        "ScalableTargets",
        |t| t.resource_id.as_str(),
        Target::describe,
    )
}

/// DeregisterScalableTarget's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeregisterRequest {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

/// Deletes `key` in `txn`, guarded on `revision` when it has one.
fn child(txn: Txn, (key, revision): &(String, Option<u64>)) -> Txn {
    match revision {
        Some(revision) => txn.when(Compare::at(key, *revision)).delete(key),
        None => txn.delete(key),
    }
}

/// DeregisterScalableTarget: removes the target with its policies (and the alarms target
/// tracking made for them) and scheduled actions, as AWS does.
pub async fn deregister(ctx: Ctx, input: DeregisterRequest) -> Result<Value, ApiError> {
    let (_, _, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    authorize(&ctx, "DeregisterScalableTarget", "*")?;
    let key = target_key(&resource_id);
    let found = ctx.get::<Target>(&key)?.ok_or_else(|| {
        not_found(format!(
            "No scalable target registered for service namespace: ecs, resource ID: \
             {resource_id}, scalable dimension: {DESIRED_COUNT}"
        ))
    })?;
    // What goes with it: each policy (guarded: one changed meanwhile fails the call), the
    // alarms target tracking made for it, each scheduled action.
    let mut children: Vec<(String, Option<u64>)> = Vec::new();
    for policy in super::policies::of_target(&ctx, &resource_id)? {
        let policy_key = super::policies::policy_key(&resource_id, &policy.value.name);
        children.push((policy_key, Some(policy.mod_revision)));
        for (alarm, _) in &policy.value.created_alarms {
            children.push((crate::cloudwatch::alarms::alarm_key(alarm), None));
        }
    }
    for action in ctx.list::<super::scheduled::ScheduledAction>(&format!(
        "{}{resource_id}/",
        super::scheduled::SCHEDULED
    ))? {
        let action_key = super::scheduled::scheduled_key(&resource_id, &action.value.name);
        children.push((action_key, None));
    }
    // The target goes in the first transaction with as many of them as it holds; the rest,
    // left without a target, follow in transactions of their own.
    let per_txn = ctx.write_limits().max_ops.saturating_sub(1).max(1);
    let mut chunks = children.chunks(per_txn);
    let first = Txn::new()
        .when(Compare::at(&key, found.mod_revision))
        .delete(&key);
    let first = chunks.next().unwrap_or_default().iter().fold(first, child);
    if !ctx.commit(first).await?.succeeded {
        return Err(ApiError::new(
            "ConcurrentUpdateException",
            "The scalable target changed while it was being deregistered; try again.",
        ));
    }
    for chunk in chunks {
        let txn = chunk
            .iter()
            .fold(Txn::new(), |txn, (key, _)| txn.delete(key));
        ctx.commit(txn).await?;
    }
    Ok(json!({}))
}
