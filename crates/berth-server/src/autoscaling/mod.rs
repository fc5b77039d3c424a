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

/// The (cluster, service, resource id `service/CLUSTER/SERVICE`) a request names, checked.
fn ecs_resource(
    namespace: Option<&str>,
    resource_id: Option<&str>,
    dimension: Option<&str>,
) -> Result<(String, String, String), ApiError> {
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

/// `service/CLUSTER/SERVICE` → (CLUSTER, SERVICE, the id as Berth writes it).
fn parse_resource_id(resource_id: &str) -> Result<(String, String, String), ApiError> {
    let mut parts = resource_id.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(cluster), Some(service), None)
            if !cluster.is_empty() && !service.is_empty() =>
        {
            Ok((
                cluster.to_string(),
                service.to_string(),
                format!("service/{cluster}/{service}"),
            ))
        }
        _ => Err(validation(format!(
            "Unsupported resource ID {resource_id}: an ECS service is service/CLUSTER/SERVICE."
        ))),
    }
}

/// Whether a Describe of `namespace` and `dimension` can list anything Berth scales;
/// ServiceNamespace is required.
fn lists_ecs(namespace: Option<&str>, dimension: Option<&str>) -> Result<bool, ApiError> {
    let namespace = namespace.ok_or_else(|| validation("ServiceNamespace is required."))?;
    Ok(namespace == "ecs" && dimension.is_none_or(|d| d == DESIRED_COUNT))
}

/// A Describe answer: the page of `items` (sorted here by `key`) after `token` under
/// `member`, each as `describe` shows it, with the next page's NextToken.
fn answer_page<T>(
    items: &mut [T],
    token: Option<&str>,
    max: Option<i64>,
    member: &str,
    key: impl Fn(&T) -> &str,
    describe: impl Fn(&T) -> serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let (page, next) = page_of(items, token, max, &key)?;
    let mut out = serde_json::json!({ member: page.iter().map(describe).collect::<Vec<_>>() });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

/// One page (MaxResults 1 to 50, default 50) of `items` sorted by `key`, after `token`.
fn page_of<'a, T>(
    items: &'a [T],
    token: Option<&str>,
    max: Option<i64>,
    key: impl Fn(&T) -> &str,
) -> Result<(&'a [T], Option<String>), ApiError> {
    let max = max.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(validation("MaxResults must be from 1 to 50."));
    }
    let start = match token {
        None => 0,
        Some(token) => {
            let after = hex_decode(token).ok_or_else(|| {
                ApiError::new("InvalidNextTokenException", "The NextToken is not valid.")
            })?;
            items.partition_point(|item| key(item) <= after.as_str())
        }
    };
    let end = start
        .saturating_add(usize::try_from(max).unwrap_or(50))
        .min(items.len());
    let page = &items[start..end];
    let next = (end < items.len())
        .then(|| page.last().map(|last| hex_encode(key(last))))
        .flatten();
    Ok((page, next))
}

fn hex_encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
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
