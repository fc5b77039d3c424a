//! Tags: TagResource, UntagResource and ListTagsForResource on any taggable ECS resource.
//! Every taggable record keeps its tags in a top-level `tags` array, so this module edits them
//! generically once it has turned the ARN into the record's key.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::arn::Arn;
use berth_core::model::{merge_tags, validate_tags, Tag, MAX_TAGS};
use berth_store::keys;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Input of TagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

/// Input of UntagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// Input of ListTagsForResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    resource_arn: String,
}

/// Output of TagResource and UntagResource (empty).
#[derive(Debug, Serialize)]
pub struct Empty {}

/// Output of ListTagsForResource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    tags: Vec<Tag>,
}

/// A taggable resource: where its record lives and what to say when it is not there.
struct Target {
    key: String,
    missing: ApiError,
}

/// Maps a resource ARN to the key of its record.
fn target_of(resource_arn: &str) -> Result<Target, ApiError> {
    let invalid = || {
        ApiError::invalid_parameter(format!(
            "'{resource_arn}' is not the ARN of a taggable ECS resource (cluster, task definition, container instance, task, service or capacity provider)."
        ))
    };
    let arn = Arn::parse(resource_arn).ok_or_else(invalid)?;
    let not_found = || {
        ApiError::new(
            "ResourceNotFoundException",
            format!("The resource '{resource_arn}' was not found."),
        )
    };
    match (arn.resource_type.as_str(), arn.path.as_slice()) {
        ("cluster", [name]) => Ok(Target {
            key: keys::cluster(name),
            missing: ApiError::cluster_not_found(),
        }),
        ("task-definition", [family_revision]) => {
            let (family, revision) = family_revision.rsplit_once(':').ok_or_else(invalid)?;
            let revision: u32 = revision.parse().map_err(|_| invalid())?;
            Ok(Target {
                key: keys::task_definition(family, revision),
                missing: not_found(),
            })
        }
        ("container-instance", [cluster, id]) => Ok(Target {
            key: keys::instance(cluster, id),
            missing: not_found(),
        }),
        ("task", [cluster, id]) => Ok(Target {
            key: keys::task(cluster, id),
            missing: not_found(),
        }),
        ("service", [cluster, name]) => Ok(Target {
            key: keys::service(cluster, name),
            missing: not_found(),
        }),
        ("capacity-provider", [name]) => Ok(Target {
            key: keys::capacity_provider(name),
            missing: not_found(),
        }),
        _ => Err(invalid()),
    }
}

/// Whether a record still exists as far as tagging goes (not deleted or INACTIVE).
fn is_live(record: &Value) -> bool {
    !matches!(
        record.get("status").and_then(Value::as_str),
        Some("INACTIVE" | "DELETE_IN_PROGRESS")
    )
}

fn tags_of(record: &Value) -> Result<Vec<Tag>, ApiError> {
    match record.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(tags) => serde_json::from_value(tags.clone())
            .map_err(|e| ApiError::server(format!("stored tags are unreadable: {e}"))),
    }
}

/// The tags of the resource `resource_arn` names, for `aws:ResourceTag/...` (none when it
/// names no taggable resource, or one that does not exist).
pub fn resource_tags(ctx: &Ctx, resource_arn: &str) -> Vec<Tag> {
    let Ok(target) = target_of(resource_arn) else {
        return Vec::new();
    };
    match ctx.get::<Value>(&target.key) {
        Ok(Some(record)) => tags_of(&record.value).unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn edit_tags(
    ctx: &Ctx,
    target: Target,
    mut edit: impl FnMut(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    ctx.update::<Value, _>(&target.key, |current| {
        let mut record = match current {
            Some(record) if is_live(&record) => record,
            _ => return Err(target.missing.clone()),
        };
        let mut tags = tags_of(&record)?;
        edit(&mut tags)?;
        let object = record
            .as_object_mut()
            .ok_or_else(|| ApiError::server("stored record is not an object"))?;
        object.insert(
            "tags".to_string(),
            serde_json::to_value(&tags).map_err(|e| ApiError::server(e.to_string()))?,
        );
        Ok(record)
    })
    .await
    .map(|_| ())
}

/// Adds tags to a resource; a key it already has takes the new value.
pub async fn tag_resource(ctx: Ctx, req: TagResourceRequest) -> Result<Empty, ApiError> {
    validate_tags(&req.tags).map_err(ApiError::invalid_parameter)?;
    let target = target_of(&req.resource_arn)?;
    edit_tags(&ctx, target, |tags| {
        merge_tags(tags, &req.tags);
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid_parameter(format!(
                "The resource would have {} tags: a resource can have at most {MAX_TAGS}.",
                tags.len()
            )));
        }
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

/// Removes the tags with the given keys from a resource.
pub async fn untag_resource(ctx: Ctx, req: UntagResourceRequest) -> Result<Empty, ApiError> {
    if req.tag_keys.is_empty() {
        return Err(ApiError::invalid_parameter(
            "tagKeys must name at least one tag key.",
        ));
    }
    let target = target_of(&req.resource_arn)?;
    edit_tags(&ctx, target, |tags| {
        tags.retain(|t| !req.tag_keys.iter().any(|k| Some(k) == t.key.as_ref()));
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

/// Lists the tags of a resource.
pub async fn list_tags_for_resource(
    ctx: Ctx,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let target = target_of(&req.resource_arn)?;
    match ctx.get::<Value>(&target.key)? {
        Some(record) if is_live(&record.value) => Ok(ListTagsForResourceResponse {
            tags: tags_of(&record.value)?,
        }),
        _ => Err(target.missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_of_each_taggable_type_map_to_their_keys() {
        let p = "arn:aws:ecs:us-east-1:000000000000:";
        assert_eq!(
            target_of(&format!("{p}cluster/demo")).expect("cluster").key,
            keys::cluster("demo")
        );
        assert_eq!(
            target_of(&format!("{p}task-definition/web:3"))
                .expect("td")
                .key,
            keys::task_definition("web", 3)
        );
        assert_eq!(
            target_of(&format!("{p}container-instance/demo/abc"))
                .expect("ci")
                .key,
            keys::instance("demo", "abc")
        );
        assert_eq!(
            target_of(&format!("{p}capacity-provider/web-cp"))
                .expect("capacity provider")
                .key,
            keys::capacity_provider("web-cp")
        );
    }

    #[test]
    fn malformed_or_foreign_arns_are_invalid_parameters() {
        for arn in [
            "demo",
            "arn:aws:s3:::bucket",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:x",
            "arn:aws:ecs:us-east-1:000000000000:capacity-provider/a/b",
        ] {
            assert_eq!(
                target_of(arn).err().map(|e| e.name),
                Some("InvalidParameterException"),
                "{arn}"
            );
        }
    }
}
