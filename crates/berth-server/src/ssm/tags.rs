//! A parameter's tags: AddTagsToResource, RemoveTagsFromResource, ListTagsForResource
//! (ResourceType `Parameter` only).

use super::parameters::validate_tags;
use super::{authorized, error, parameter_key, Parameter, Tag};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::Versioned;
use serde::{Deserialize, Serialize};

/// The resource a tagging request names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub tag_keys: Vec<String>,
}

/// The empty answer.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// ListTagsForResource's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceResponse {
    pub tag_list: Vec<Tag>,
}

/// The parameter a tagging request names, after authorising `action` on it.
fn parameter_of(
    ctx: &Ctx,
    action: &str,
    input: &ResourceRequest,
) -> Result<Versioned<Parameter>, ApiError> {
    if input.resource_type != "Parameter" {
        return Err(error(
            "InvalidResourceType",
            format!(
                "Berth's Parameter Store tags resources of type Parameter only, not {}.",
                input.resource_type
            ),
        ));
    }
    authorized(ctx, action, &input.resource_id)?.ok_or_else(|| {
        error(
            "InvalidResourceId",
            format!("The parameter {} does not exist.", input.resource_id),
        )
    })
}

/// AddTagsToResource: adds tags to a parameter, replacing the values of keys it has.
pub async fn add(ctx: Ctx, input: ResourceRequest) -> Result<Empty, ApiError> {
    validate_tags(&input.tags)?;
    let found = parameter_of(&ctx, "AddTagsToResource", &input)?;
    ctx.update::<Parameter, _>(&parameter_key(&found.value.name), |current| {
        let mut parameter = current.ok_or_else(|| {
            error(
                "InvalidResourceId",
                format!("The parameter {} does not exist.", input.resource_id),
            )
        })?;
        for tag in &input.tags {
            match parameter.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => parameter.tags.push(tag.clone()),
            }
        }
        validate_tags(&parameter.tags)?;
        Ok(parameter)
    })
    .await?;
    Ok(Empty {})
}

/// RemoveTagsFromResource: removes the tags with the given keys.
pub async fn remove(ctx: Ctx, input: ResourceRequest) -> Result<Empty, ApiError> {
    let found = parameter_of(&ctx, "RemoveTagsFromResource", &input)?;
    ctx.update::<Parameter, _>(&parameter_key(&found.value.name), |current| {
        let mut parameter = current.ok_or_else(|| {
            error(
                "InvalidResourceId",
                format!("The parameter {} does not exist.", input.resource_id),
            )
        })?;
        parameter.tags.retain(|t| !input.tag_keys.contains(&t.key));
        Ok(parameter)
    })
    .await?;
    Ok(Empty {})
}

/// ListTagsForResource: the parameter's tags.
pub async fn list(
    ctx: Ctx,
    input: ResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let found = parameter_of(&ctx, "ListTagsForResource", &input)?;
    Ok(ListTagsForResourceResponse {
        tag_list: found.value.tags,
    })
}
