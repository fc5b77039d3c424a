//! Scaling activities: what a scaling did, why, and how it ended, kept with its target and
//! listed by DescribeScalingActivities newest first.

use super::targets::{Target, TARGETS};
use super::{authorize, lists_ecs, validation, DESIRED_COUNT};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One scaling activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: String,
    pub description: String,
    pub cause: String,
    /// Epoch seconds.
    pub start: f64,
    /// Absent while the activity is in progress.
    #[serde(default)]
    pub end: Option<f64>,
    /// `InProgress`, then `Successful` or `Failed`.
    pub status: String,
    pub message: String,
}

impl Activity {
    fn describe(&self, resource_id: &str) -> Value {
        let mut described = json!({
            "ActivityId": self.id,
            "ServiceNamespace": "ecs",
            "ResourceId": resource_id,
            "ScalableDimension": DESIRED_COUNT,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start,
            "StatusCode": self.status,
        });
        if let Some(end) = self.end {
            described["EndTime"] = json!(end);
        }
        if !self.message.is_empty() {
            described["StatusMessage"] = json!(self.message);
        }
        described
    }
}

/// DescribeScalingActivities' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    include_not_scaled_activities: Option<bool>,
}

/// DescribeScalingActivities: the activities of one target or all, newest first.
pub async fn describe(ctx: Ctx, input: DescribeRequest) -> Result<Value, ApiError> {
    authorize(&ctx, "DescribeScalingActivities", "*")?;
    // Berth records no "not scaled" activities: nothing differs with the flag.
    let _ = input.include_not_scaled_activities;
    let mut all: Vec<(f64, String, Value)> = Vec::new();
    if lists_ecs(
        input.service_namespace.as_deref(),
        input.scalable_dimension.as_deref(),
    )? {
        for target in ctx.list::<Target>(TARGETS)?.into_iter().map(|t| t.value) {
            if input
                .resource_id
                .as_ref()
                .is_some_and(|r| *r != target.resource_id)
            {
                continue;
            }
            for activity in &target.activities {
                all.push((
                    activity.start,
                    activity.id.clone(),
                    activity.describe(&target.resource_id),
                ));
            }
        }
    }
    // Newest first; the token is the id of the last one shown.
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let max = input.max_results.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(validation("MaxResults must be from 1 to 50."));
    }
    let start = match &input.next_token {
        None => 0,
        Some(token) => {
            all.iter().position(|a| a.1 == *token).ok_or_else(|| {
                ApiError::new("InvalidNextTokenException", "The NextToken is not valid.")
            })? + 1
        }
    };
    let end = start
        .saturating_add(usize::try_from(max).unwrap_or(50))
        .min(all.len());
    let page: Vec<Value> = all[start..end].iter().map(|a| a.2.clone()).collect();
    let mut out = json!({ "ScalingActivities": page });
    if end < all.len() {
        if let Some(last) = all.get(end - 1) {
            out["NextToken"] = last.1.clone().into();
        }
    }
    Ok(out)
}
