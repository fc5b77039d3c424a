//! A secret's tags: TagResource and UntagResource.

use super::secrets::{request_keys, validate_tags};
use super::{authorize, authorized, invalid_parameter, not_found, secret_key, Secret, Tag};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// TagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub secret_id: String,
    pub tags: Vec<Tag>,
}

/// UntagResource's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    pub secret_id: String,
    pub tag_keys: Vec<String>,
}

/// The empty answer of both.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// TagResource: adds tags to the secret, replacing the values of keys it already has.
pub async fn tag(ctx: Ctx, input: TagResourceRequest) -> Result<Empty, ApiError> {
    validate_tags(&input.tags)?;
    let found = authorized(&ctx, "TagResource", &input.secret_id)?;
    authorize(
        &ctx,
        "TagResource",
        &found.value.arn,
        &request_keys(&input.tags),
    )?;
    ctx.update::<Secret, _>(&secret_key(&found.value.name), |current| {
        let mut secret = current
            .filter(|s| s.arn == found.value.arn)
            .ok_or_else(not_found)?;
        for tag in &input.tags {
            match secret.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => secret.tags.push(tag.clone()),
            }
        }
        validate_tags(&secret.tags)?;
        Ok(secret)
    })
    .await?;
    Ok(Empty {})
}

/// UntagResource: removes the tags with the given keys (absent keys are ignored).
pub async fn untag(ctx: Ctx, input: UntagResourceRequest) -> Result<Empty, ApiError> {
    if input.tag_keys.is_empty() {
        return Err(invalid_parameter("TagKeys must name at least one key."));
    }
    let found = authorized(&ctx, "UntagResource", &input.secret_id)?;
    let keys = input
        .tag_keys
        .iter()
        .map(|k| ("aws:TagKeys".to_string(), k.clone()))
        .collect();
    authorize(&ctx, "UntagResource", &found.value.arn, &keys)?;
    ctx.update::<Secret, _>(&secret_key(&found.value.name), |current| {
        let mut secret = current
            .filter(|s| s.arn == found.value.arn)
            .ok_or_else(not_found)?;
        secret.tags.retain(|t| !input.tag_keys.contains(&t.key));
        Ok(secret)
    })
    .await?;
    Ok(Empty {})
}
