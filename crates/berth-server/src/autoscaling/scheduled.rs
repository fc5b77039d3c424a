//! Scheduled actions: PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction.
//! An action changes its target's MinCapacity and MaxCapacity when its [schedule] fires
//! (within [`super::controller`]'s tick of 5 s); the bounds then bring the desired count
//! within them.

use super::schedule::{self, Schedule};
use super::targets::{target_key, Target};
use super::{
    answer_page, authorize, ecs_resource, lists_ecs, not_found, validation, DESIRED_COUNT,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where scheduled actions are kept, by resource id and name.
pub const SCHEDULED: &str = "/autoscaling/scheduled/ecs/";

/// The store key of scheduled action `name` of the target of `resource_id`.
pub fn scheduled_key(resource_id: &str, name: &str) -> String {
    format!("{SCHEDULED}{resource_id}/{name}")
}

/// A scheduled action as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledAction {
    pub name: String,
    pub arn: String,
    pub resource_id: String,
    pub schedule: String,
    pub timezone: Option<String>,
    /// Epoch seconds.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub created: f64,
    /// When it last fired (epoch seconds).
    #[serde(default)]
    pub last_fired: Option<f64>,
}

impl ScheduledAction {
    fn describe(&self) -> Value {
        let mut action = json!({});
        if let Some(min) = self.min {
            action["MinCapacity"] = min.into();
        }
        if let Some(max) = self.max {
            action["MaxCapacity"] = max.into();
        }
        let mut out = json!({
            "ScheduledActionName": self.name,
            "ScheduledActionARN": self.arn,
            "ServiceNamespace": "ecs",
            "Schedule": self.schedule,
            "ResourceId": self.resource_id,
            "ScalableDimension": DESIRED_COUNT,
            "ScalableTargetAction": action,
            "CreationTime": self.created,
        });
        for (name, value) in [
            ("Timezone", self.timezone.clone().map(Value::from)),
            ("StartTime", self.start.map(Value::from)),
            ("EndTime", self.end.map(Value::from)),
        ] {
            if let Some(value) = value {
                out[name] = value;
            }
        }
        out
    }

    /// When it fires at or before `now` (epoch seconds) and after it last did, if it does.
    pub fn due(&self, now: f64) -> Option<i64> {
        let tz = schedule::zone(self.timezone.as_deref()).ok()?;
        let parsed = schedule::parse(&self.schedule, &tz).ok()?;
        let now_s = now as i64;
        if self.start.is_some_and(|s| now < s) || self.end.is_some_and(|e| now > e) {
            return None;
        }
        let origin = self.start.unwrap_or(self.created) as i64;
        let mut after = self.last_fired.unwrap_or(self.created) as i64;
        if !matches!(parsed, Schedule::At(_)) {
            // A schedule missed for longer than this (the server was down) is not run late.
            after = after.max(now_s - 300);
        }
        schedule::due(&parsed, &tz, origin, after, now_s)
    }
}

/// The bounds a scheduled action sets.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetAction {
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
}

/// PutScheduledAction's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    service_namespace: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    scheduled_action_name: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    scalable_target_action: Option<TargetAction>,
}

/// PutScheduledAction: creates an action of a registered target, or changes what is given of
/// an existing one.
pub async fn put(ctx: Ctx, input: PutRequest) -> Result<Value, ApiError> {
    let (_, _, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    let name = input
        .scheduled_action_name
        .ok_or_else(|| validation("ScheduledActionName is required."))?;
    if name.is_empty() || name.chars().count() > 256 || name.contains(':') || name.contains('/') {
        return Err(validation(
            "ScheduledActionName must be 1 to 256 characters without ':' or '/'.",
        ));
    }
    authorize(&ctx, "PutScheduledAction", "*")?;
    let key = scheduled_key(&resource_id, &name);
    let target_at = target_key(&resource_id);
    loop {
        // The action is written only while its target is registered.
        let Some(target) = ctx.get::<Target>(&target_at)? else {
            return Err(not_found(format!(
                "No scalable target registered for service namespace: ecs, resource ID: \
                 {resource_id}, scalable dimension: {DESIRED_COUNT}"
            )));
        };
        let existing = ctx.get::<ScheduledAction>(&key)?;
        let mut action = match &existing {
            Some(found) => found.value.clone(),
            None => ScheduledAction {
                name: name.clone(),
                arn: format!(
                    "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/ecs/{resource_id}:scheduledActionName/{name}",
                    ctx.arns.region,
                    ctx.arns.account_id,
                    super::new_id()
                ),
                resource_id: resource_id.clone(),
                schedule: String::new(),
                timezone: None,
                start: None,
                end: None,
                min: None,
                max: None,
                created: ctx.now(),
                last_fired: None,
            },
        };
        if let Some(schedule) = &input.schedule {
            action.schedule = schedule.clone();
            action.last_fired = None;
        }
        if let Some(tz) = &input.timezone {
            action.timezone = Some(tz.clone());
        }
        if input.start_time.is_some() {
            action.start = input.start_time;
        }
        if input.end_time.is_some() {
            action.end = input.end_time;
        }
        if let Some(bounds) = input.scalable_target_action {
            action.min = bounds.min_capacity.or(action.min);
            action.max = bounds.max_capacity.or(action.max);
        }
        if action.schedule.is_empty() {
            return Err(validation(
                "Schedule is required to create a scheduled action.",
            ));
        }
        let tz = schedule::zone(action.timezone.as_deref()).map_err(validation)?;
        schedule::parse(&action.schedule, &tz).map_err(validation)?;
        if let (Some(start), Some(end)) = (action.start, action.end) {
            if start >= end {
                return Err(validation("StartTime must be before EndTime."));
            }
        }
        match (action.min, action.max) {
            (None, None) => {
                return Err(validation(
                    "ScalableTargetAction needs MinCapacity, MaxCapacity or both.",
                ))
            }
            (Some(min), Some(max)) if min > max => {
                return Err(validation(format!(
                    "MinCapacity ({min}) must not be greater than MaxCapacity ({max})."
                )))
            }
            (min, max) if min.is_some_and(|v| v < 0) || max.is_some_and(|v| v < 0) => {
                return Err(validation("Capacities must not be negative."))
            }
            _ => {}
        }
        let guard = match &existing {
            Some(found) => Compare::at(&key, found.mod_revision),
            None => Compare::absent(&key),
        };
        let txn = Txn::new()
            .when(guard)
            .when(Compare::at(&target_at, target.mod_revision))
            .put(&key, encode(&action));
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({}));
        }
    }
}

/// DescribeScheduledActions' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    scheduled_action_names: Option<Vec<String>>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// DescribeScheduledActions: the namespace's actions, narrowed by resource and names.
pub async fn describe(ctx: Ctx, input: DescribeRequest) -> Result<Value, ApiError> {
    authorize(&ctx, "DescribeScheduledActions", "*")?;
    let mut actions: Vec<ScheduledAction> = if lists_ecs(
        input.service_namespace.as_deref(),
        input.scalable_dimension.as_deref(),
    )? {
        ctx.list::<ScheduledAction>(SCHEDULED)?
            .into_iter()
            .map(|a| a.value)
            .filter(|a| {
                input
                    .resource_id
                    .as_ref()
                    .is_none_or(|r| *r == a.resource_id)
            })
            .filter(|a| {
                input
                    .scheduled_action_names
                    .as_ref()
                    .is_none_or(|names| names.contains(&a.name))
            })
            .collect()
    } else {
        Vec::new()
    };
    answer_page(
        &mut actions,
        input.next_token.as_deref(),
        input.max_results,
        "ScheduledActions",
        |a| a.arn.as_str(),
        ScheduledAction::describe,
    )
}

/// DeleteScheduledAction's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    service_namespace: Option<String>,
    scheduled_action_name: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

/// DeleteScheduledAction.
pub async fn delete(ctx: Ctx, input: DeleteRequest) -> Result<Value, ApiError> {
    let (_, _, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    let name = input
        .scheduled_action_name
        .ok_or_else(|| validation("ScheduledActionName is required."))?;
    authorize(&ctx, "DeleteScheduledAction", "*")?;
    let key = scheduled_key(&resource_id, &name);
    let found = ctx.get::<ScheduledAction>(&key)?.ok_or_else(|| {
        not_found(format!(
            "No scheduled action found for service namespace: ecs, resource ID: {resource_id}, \
             scalable dimension: {DESIRED_COUNT}, scheduled action name: {name}"
        ))
    })?;
    let txn = Txn::new()
        .when(Compare::at(&key, found.mod_revision))
        .delete(&key);
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ConcurrentUpdateException",
            "The scheduled action changed while it was being deleted; try again.",
        ));
    }
    Ok(json!({}))
}
