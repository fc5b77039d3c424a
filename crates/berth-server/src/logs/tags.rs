//! Tags of log groups: TagResource, UntagResource and ListTagsForResource on log group ARNs,
//! and the older TagLogGroup, UntagLogGroup and ListTagsLogGroup by group name.

use super::groups::Empty;
use super::{authorize, blocking, group_of_arn, group_resource, io_error, validate_group_name};
use crate::authz::Keys;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tags as the Logs API carries them: a map of key to value.
pub type Tags = BTreeMap<String, String>;

/// At most 50 tags; keys of 1 to 128 characters not starting with `aws:`, values up to 256.
pub fn validate_tags(tags: &Tags, too_many: &'static str) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::new(
            too_many,
            "A resource can have at most 50 tags.",
        ));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ApiError::invalid_parameter(format!(
                "Tag key '{key}' must be 1 to 128 characters."
            )));
        }
        if key.starts_with("aws:") {
            return Err(ApiError::invalid_parameter(format!(
                "Tag key '{key}' may not start with 'aws:', which AWS reserves."
            )));
        }
        if value.chars().count() > 256 {
            return Err(ApiError::invalid_parameter(format!(
                "The value of tag '{key}' must be at most 256 characters."
            )));
        }
    }
    Ok(())
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` of the tags a request sets.
pub fn tag_keys(tags: &Tags) -> Keys {
    let mut keys = Keys::new();
    for (key, value) in tags {
        keys.push((format!("aws:RequestTag/{key}"), value.clone()));
        keys.push(("aws:TagKeys".into(), key.clone()));
    }
    keys
}

/// The input of TagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    resource_arn: String,
    tags: Tags,
}

/// TagResource: adds or replaces tags on a log group named by its ARN.
pub async fn tag_resource(ctx: Ctx, input: TagResourceRequest) -> Result<Empty, ApiError> {
    let group = group_of_arn(&ctx, &input.resource_arn)?;
    tag(
        ctx,
        group,
        input.tags,
        "TooManyTagsException",
        "TagResource",
    )
    .await
}

/// TagLogGroup: adds or replaces tags on a log group named by its name.
pub async fn tag_log_group(ctx: Ctx, input: TagLogGroupRequest) -> Result<Empty, ApiError> {
    tag(
        ctx,
        input.log_group_name,
        input.tags,
        "InvalidParameterException",
        "TagLogGroup",
    )
    .await
}

/// The input of TagLogGroup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLogGroupRequest {
    log_group_name: String,
    tags: Tags,
}

async fn tag(
    ctx: Ctx,
    group: String,
    tags: Tags,
    too_many: &'static str,
    action: &str,
) -> Result<Empty, ApiError> {
    validate_group_name(&group)?;
    if tags.is_empty() {
        return Err(ApiError::invalid_parameter(
            "At least one tag must be given.",
        ));
    }
    validate_tags(&tags, too_many)?;
    authorize(
        &ctx,
        action,
        &group_resource(&ctx, &group),
        &tag_keys(&tags),
    )?;
    blocking(&ctx, move |logs| {
        let current = logs.group(&group)?.meta().map_err(io_error)?.tags;
        let mut merged = current;
        merged.extend(tags.clone());
        validate_tags(&merged, too_many)?;
        Ok(logs.tag_group(&group, &tags)?)
    })
    .await?;
    Ok(Empty {})
}

/// The input of UntagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// UntagResource: removes tags from a log group named by its ARN.
pub async fn untag_resource(ctx: Ctx, input: UntagResourceRequest) -> Result<Empty, ApiError> {
    let group = group_of_arn(&ctx, &input.resource_arn)?;
    untag(ctx, group, input.tag_keys, "UntagResource").await
}

/// The input of UntagLogGroup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagLogGroupRequest {
    log_group_name: String,
    tags: Vec<String>,
}

/// UntagLogGroup: removes tags from a log group named by its name.
pub async fn untag_log_group(ctx: Ctx, input: UntagLogGroupRequest) -> Result<Empty, ApiError> {
    untag(ctx, input.log_group_name, input.tags, "UntagLogGroup").await
}

async fn untag(
    ctx: Ctx,
    group: String,
    keys: Vec<String>,
    action: &str,
) -> Result<Empty, ApiError> {
    validate_group_name(&group)?;
    let condition_keys: Keys = keys
        .iter()
        .map(|k| ("aws:TagKeys".to_string(), k.clone()))
        .collect();
    authorize(&ctx, action, &group_resource(&ctx, &group), &condition_keys)?;
    blocking(&ctx, move |logs| Ok(logs.untag_group(&group, &keys)?)).await?;
    Ok(Empty {})
}

/// The input of ListTagsForResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    resource_arn: String,
}

/// The input of ListTagsLogGroup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsLogGroupRequest {
    log_group_name: String,
}

/// The answer of ListTagsForResource and ListTagsLogGroup.
#[derive(Debug, Serialize)]
pub struct TagsResponse {
    tags: Tags,
}

/// ListTagsForResource: the tags of a log group named by its ARN.
pub async fn list_tags_for_resource(
    ctx: Ctx,
    input: ListTagsForResourceRequest,
) -> Result<TagsResponse, ApiError> {
    let group = group_of_arn(&ctx, &input.resource_arn)?;
    list(ctx, group, "ListTagsForResource").await
}

/// ListTagsLogGroup: the tags of a log group named by its name.
pub async fn list_tags_log_group(
    ctx: Ctx,
    input: ListTagsLogGroupRequest,
) -> Result<TagsResponse, ApiError> {
    list(ctx, input.log_group_name, "ListTagsLogGroup").await
}

async fn list(ctx: Ctx, group: String, action: &str) -> Result<TagsResponse, ApiError> {
    validate_group_name(&group)?;
    authorize(&ctx, action, &group_resource(&ctx, &group), &Vec::new())?;
    let tags = blocking(&ctx, move |logs| {
        Ok(logs.group(&group)?.meta().map_err(io_error)?.tags)
    })
    .await?;
    Ok(TagsResponse { tags })
}
