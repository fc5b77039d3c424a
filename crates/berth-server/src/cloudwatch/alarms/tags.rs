//! Tags of alarms: TagResource, UntagResource, ListTagsForResource (by the alarm's ARN).

use super::{alarm_key, tag_pairs, update, Alarm, Tag};
use crate::cloudwatch::{invalid_value, missing};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

/// The name of the alarm `arn` names in this account and region.
fn alarm_of(ctx: &Ctx, arn: Option<&str>) -> Result<String, ApiError> {
    let arn = arn.ok_or_else(|| missing("ResourceARN"))?;
    let prefix = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:",
        ctx.arns.region, ctx.arns.account_id
    );
    let name = arn.strip_prefix(&prefix).ok_or_else(|| {
        invalid_value(format!(
            "The parameter ResourceARN must be an alarm's ARN ({prefix}NAME); {arn} is not."
        ))
    })?;
    if ctx.get::<Alarm>(&alarm_key(name))?.is_none() {
        return Err(not_found(arn));
    }
    Ok(name.to_string())
}

fn not_found(arn: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("The resource {arn} does not exist."),
    )
}

/// Runs `change` on the alarm's tags; a vanished alarm is ResourceNotFoundException.
async fn change_tags(
    ctx: &Ctx,
    arn: &str,
    name: &str,
    change: impl Fn(&mut Vec<(String, String)>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    update(ctx, name, |alarm| change(&mut alarm.tags))
        .await
        .map_err(|e| {
            if e.name == "ResourceNotFound" {
                not_found(arn)
            } else {
                e
            }
        })
}

/// TagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
}

/// TagResource: adds tags, replacing the values of keys already there.
pub async fn tag_resource(ctx: &Ctx, input: TagResourceInput) -> Result<Value, ApiError> {
    let name = alarm_of(ctx, input.resource_arn.as_deref())?;
    let arn = input.resource_arn.unwrap_or_default();
    let added = tag_pairs(&input.tags.ok_or_else(|| missing("Tags"))?)?;
    crate::cloudwatch::authorize_on(ctx, "TagResource", &arn)?;
    change_tags(ctx, &arn, &name, |tags| {
        for (key, value) in &added {
            tags.retain(|(k, _)| k != key);
            tags.push((key.clone(), value.clone()));
        }
        if tags.len() > 50 {
            return Err(invalid_value("An alarm may have at most 50 tags."));
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

/// UntagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

/// UntagResource: removes the named tags.
pub async fn untag_resource(ctx: &Ctx, input: UntagResourceInput) -> Result<Value, ApiError> {
    let name = alarm_of(ctx, input.resource_arn.as_deref())?;
    let arn = input.resource_arn.unwrap_or_default();
    let keys = input.tag_keys.ok_or_else(|| missing("TagKeys"))?;
    crate::cloudwatch::authorize_on(ctx, "UntagResource", &arn)?;
    change_tags(ctx, &arn, &name, |tags| {
        tags.retain(|(k, _)| !keys.contains(k));
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

/// ListTagsForResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

/// ListTagsForResource: the alarm's tags.
pub fn list_tags(ctx: &Ctx, input: ListTagsInput) -> Result<Value, ApiError> {
    let name = alarm_of(ctx, input.resource_arn.as_deref())?;
    let arn = input.resource_arn.unwrap_or_default();
    crate::cloudwatch::authorize_on(ctx, "ListTagsForResource", &arn)?;
    let alarm = ctx
        .get::<Alarm>(&alarm_key(&name))?
        .ok_or_else(|| not_found(&arn))?
        .value;
    let tags: Vec<Value> = alarm
        .tags
        .iter()
        .map(|(key, value)| json!({"Key": key, "Value": value}))
        .collect();
    Ok(json!({ "Tags": tags }))
}
