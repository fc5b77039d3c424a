//! Application Auto Scaling on the endpoint (AWS JSON 1.1, target prefix
//! `AnyScaleFrontendService`), for what ECS users scale: a service's desired count
//! (`ecs:service:DesiredCount` of `service/CLUSTER/SERVICE`). One file per resource:
//! [`targets`] (scalable targets), [`policies`] (target tracking and step scaling, with the
//! CloudWatch alarms target tracking makes), [`activities`] (what scaling did and why), and
//! [`controller`], which runs the policies whose alarms are in ALARM.

pub mod activities;
pub mod controller;
pub mod policies;
pub mod schedule;
pub mod scheduled;
pub mod tags;
pub mod targets;

use crate::dispatch::{call, Ctx};
use crate::error::ApiError;

/// The one dimension Berth scales.
pub const DESIRED_COUNT: &str = "ecs:service:DesiredCount";

/// Application Auto Scaling's `ValidationException`.
fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

/// `ObjectNotFoundException`.
fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new("ObjectNotFoundException", message)
}

/// Checks `application-autoscaling:{action}` for the caller.
fn authorize(ctx: &Ctx, action: &str, resource: &str) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("application-autoscaling:{action}"),
        resource,
        &Vec::new(),
        "AccessDeniedException",
    )
}

/// The (cluster, service) of an ECS resource id, checked as a request gives it.
fn ecs_resource(
    namespace: Option<&str>,
    resource_id: Option<&str>,
    dimension: Option<&str>,
) -> Result<(String, String), ApiError> {
    let namespace = namespace.ok_or_else(|| validation("ServiceNamespace is required."))?;
    if namespace != "ecs" {
        return Err(validation(format!(
            "Berth scales ECS services: ServiceNamespace must be ecs, not {namespace}."
        )));
    }
    let resource_id = resource_id.ok_or_else(|| validation("ResourceId is required."))?;
    let dimension = dimension.ok_or_else(|| validation("ScalableDimension is required."))?;
    if dimension != DESIRED_COUNT {
        return Err(validation(format!(
            "Unsupported scalable dimension {dimension} for service namespace ecs: use \
             {DESIRED_COUNT}."
        )));
    }
    parse_resource_id(resource_id)
}

/// `service/CLUSTER/SERVICE` → (CLUSTER, SERVICE).
fn parse_resource_id(resource_id: &str) -> Result<(String, String), ApiError> {
    let mut parts = resource_id.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(cluster), Some(service), None)
            if !cluster.is_empty() && !service.is_empty() =>
        {
            Ok((cluster.to_string(), service.to_string()))
        }
        _ => Err(validation(format!(
            "Unsupported resource ID {resource_id}: an ECS service is service/CLUSTER/SERVICE."
        ))),
    }
}

/// A new random id in the shape AWS uses for activities and policy ARNs.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs operation `op` on the JSON `body`; returns the JSON answer.
pub async fn dispatch(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match op {
        "RegisterScalableTarget" => call(ctx, body, targets::register).await,
        "DescribeScalableTargets" => call(ctx, body, targets::describe).await,
        "DeregisterScalableTarget" => call(ctx, body, targets::deregister).await,
        "PutScalingPolicy" => call(ctx, body, policies::put).await,
        "DescribeScalingPolicies" => call(ctx, body, policies::describe).await,
        "DeleteScalingPolicy" => call(ctx, body, policies::delete).await,
        "DescribeScalingActivities" => call(ctx, body, activities::describe).await,
        "PutScheduledAction" => call(ctx, body, scheduled::put).await,
        "DescribeScheduledActions" => call(ctx, body, scheduled::describe).await,
        "DeleteScheduledAction" => call(ctx, body, scheduled::delete).await,
        "TagResource" => call(ctx, body, tags::tag).await,
        "UntagResource" => call(ctx, body, tags::untag).await,
        "ListTagsForResource" => call(ctx, body, tags::list).await,
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!(
                "'{other}' is not an operation of AnyScaleFrontendService, or Berth does not \
                 support it yet."
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
