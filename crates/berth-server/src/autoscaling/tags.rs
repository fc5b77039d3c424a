//! Tags of scalable targets: TagResource, UntagResource, ListTagsForResource (by the
//! target's ARN; at most 50 tags).

use super::targets::{Target, TARGETS};
use super::{authorize, validation};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MAX_TAGS: usize = 50;

fn find(ctx: &Ctx, arn: &str) -> Result<Versioned<Target>, ApiError> {
    ctx.list::<Target>(TARGETS)?
        .into_iter()
        .find(|t| t.value.arn == arn)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceNotFoundException",
                format!("No scalable target found for ARN {arn}."),
            )
        })
}

/// Applies `change` to the tags of the target `arn` names.
async fn change_tags(
    ctx: &Ctx,
    arn: &str,
    change: impl Fn(&mut BTreeMap<String, String>),
) -> Result<(), ApiError> {
    loop {
        let found = find(ctx, arn)?;
        let mut target = found.value;
        change(&mut target.tags);
        if target.tags.len() > MAX_TAGS {
            return Err(ApiError::new(
                "TooManyTagsException",
                format!("A scalable target may have at most {MAX_TAGS} tags."),
            ));
        }
        let key = super::targets::target_key(&target.resource_id);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&target));
        if ctx.commit(txn).await?.succeeded {
            return Ok(());
        }
    }
}

/// TagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

/// TagResource: adds or replaces tags.
pub async fn tag(ctx: Ctx, input: TagRequest) -> Result<Value, ApiError> {
    let arn = input
        .resource_arn
        .ok_or_else(|| validation("ResourceARN is required."))?;
    let tags = input.tags.ok_or_else(|| validation("Tags is required."))?;
    if tags
        .keys()
        .any(|k| k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:"))
        || tags.values().any(|v| v.chars().count() > 256)
    {
        return Err(validation(
            "Tag keys are 1 to 128 characters and may not start with aws:; values at most 256.",
        ));
    }
    authorize(&ctx, "TagResource", &arn)?;
    change_tags(&ctx, &arn, |current| current.extend(tags.clone())).await?;
    Ok(json!({}))
}

/// UntagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

/// UntagResource: removes the named tags.
pub async fn untag(ctx: Ctx, input: UntagRequest) -> Result<Value, ApiError> {
    let arn = input
        .resource_arn
        .ok_or_else(|| validation("ResourceARN is required."))?;
    let keys = input
        .tag_keys
        .ok_or_else(|| validation("TagKeys is required."))?;
    authorize(&ctx, "UntagResource", &arn)?;
    change_tags(&ctx, &arn, |current| {
        current.retain(|k, _| !keys.contains(k))
    })
    .await?;
    Ok(json!({}))
}

/// ListTagsForResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

/// ListTagsForResource.
pub async fn list(ctx: Ctx, input: ListRequest) -> Result<Value, ApiError> {
    let arn = input
        .resource_arn
        .ok_or_else(|| validation("ResourceARN is required."))?;
    authorize(&ctx, "ListTagsForResource", &arn)?;
    Ok(json!({ "Tags": find(&ctx, &arn)?.value.tags }))
}
