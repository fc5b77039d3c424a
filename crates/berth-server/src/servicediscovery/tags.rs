//! Tags of namespaces and services: TagResource, UntagResource and ListTagsForResource, by
//! the resource's ARN (`…:namespace/ns-…` or `…:service/srv-…`); at most [`MAX_TAGS`] a
//! resource. Also the checks of the Tags a creation carries.

use super::model::{namespace_key, service_key, Namespace, Service, Tag};
use super::{authorize, invalid, required};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

/// The most tags one resource may have.
pub const MAX_TAGS: usize = 50;

/// A tag as the API spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    key: Option<String>,
    value: Option<String>,
}

/// Checks a request's Tags: keys 1 to 128 characters that do not start with `aws:`, values
/// at most 256, each key once, at most [`MAX_TAGS`].
pub fn checked(tags: Option<Vec<TagIn>>) -> Result<Vec<Tag>, ApiError> {
    let mut out: Vec<Tag> = Vec::new();
    for tag in tags.unwrap_or_default() {
        let key = required(tag.key, "Tags.Key")?;
        let value = required(tag.value, "Tags.Value")?;
        check_key(&key)?;
        if value.chars().count() > 256 {
            return Err(invalid(format!(
                "The value of tag {key} is longer than 256 characters."
            )));
        }
        if out.iter().any(|t| t.key == key) {
            return Err(invalid(format!(
                "The tag key {key} appears more than once."
            )));
        }
        out.push(Tag { key, value });
    }
    if out.len() > MAX_TAGS {
        return Err(too_many(""));
    }
    Ok(out)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(invalid("Tag keys are 1 to 128 characters long."));
    }
    if key.starts_with("aws:") {
        return Err(invalid(format!(
            "The tag key {key} starts with aws:, which is reserved for AWS's own tags."
        )));
    }
    Ok(())
}

fn too_many(arn: &str) -> ApiError {
    let of = if arn.is_empty() {
        String::new()
    } else {
        format!(" {arn}")
    };
    ApiError::new(
        "TooManyTagsException",
        format!("A resource may have at most {MAX_TAGS} tags: the resource{of} would have more."),
    )
}

/// The resource an ARN names.
enum Resource {
    Namespace(String),
    Service(String),
}

fn resource_of(ctx: &Ctx, arn: &str) -> Result<Resource, ApiError> {
    let prefix = format!(
        "arn:aws:servicediscovery:{}:{}:",
        ctx.arns.region, ctx.arns.account_id
    );
    let not_found = || {
        ApiError::new(
            "ResourceNotFoundException",
            format!("No namespace or service has the ARN {arn}."),
        )
    };
    let Some(rest) = arn.strip_prefix(&prefix) else {
        return if arn.starts_with("arn:") {
            Err(not_found())
        } else {
            Err(invalid(format!(
                "'{arn}' is not an ARN: name a namespace or service by its ARN."
            )))
        };
    };
    match rest.split_once('/') {
        Some(("namespace", id)) => super::id_of(id, "namespace", "ns-")
            .map(Resource::Namespace)
            .map_err(|_| not_found()),
        Some(("service", id)) => super::id_of(id, "service", "srv-")
            .map(Resource::Service)
            .map_err(|_| not_found()),
        _ => Err(not_found()),
    }
}

/// Applies `change` to the tags of the resource `arn` names, under compare-on-revision.
async fn change_tags(ctx: &Ctx, arn: &str, change: impl Fn(&mut Vec<Tag>)) -> Result<(), ApiError> {
    let resource = resource_of(ctx, arn)?;
    let not_found = || {
        ApiError::new(
            "ResourceNotFoundException",
            format!("No namespace or service has the ARN {arn}."),
        )
    };
    loop {
        let (key, revision, bytes) = match &resource {
            Resource::Namespace(id) => {
                let key = namespace_key(id);
                let found = ctx.get::<Namespace>(&key)?.ok_or_else(not_found)?;
                let mut namespace = found.value;
                change(&mut namespace.tags);
                if namespace.tags.len() > MAX_TAGS {
                    return Err(too_many(arn));
                }
                (key, found.mod_revision, encode(&namespace))
            }
            Resource::Service(id) => {
                let key = service_key(id);
                let found = ctx.get::<Service>(&key)?.ok_or_else(not_found)?;
                let mut service = found.value;
                change(&mut service.tags);
                if service.tags.len() > MAX_TAGS {
                    return Err(too_many(arn));
                }
                (key, found.mod_revision, encode(&service))
            }
        };
        let txn = Txn::new()
            .when(Compare::at(&key, revision))
            .put(&key, bytes);
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
    tags: Option<Vec<TagIn>>,
}

/// TagResource: adds tags to a namespace or service, replacing the values of keys it has.
pub async fn tag(ctx: &Ctx, input: TagRequest) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "ResourceARN")?;
    let tags = checked(Some(required(input.tags, "Tags")?))?;
    authorize(ctx, "TagResource", &arn)?;
    change_tags(ctx, &arn, |current| {
        for tag in &tags {
            match current.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => current.push(tag.clone()),
            }
        }
    })
    .await?;
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

/// UntagResource: removes the named tags (keys the resource lacks are ignored).
pub async fn untag(ctx: &Ctx, input: UntagRequest) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "ResourceARN")?;
    let keys = required(input.tag_keys, "TagKeys")?;
    for key in &keys {
        check_key(key)?;
    }
    authorize(ctx, "UntagResource", &arn)?;
    change_tags(ctx, &arn, |current| {
        current.retain(|t| !keys.contains(&t.key))
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

/// ListTagsForResource: the tags of a namespace or service.
pub fn list(ctx: &Ctx, input: ListRequest) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "ResourceARN")?;
    authorize(ctx, "ListTagsForResource", &arn)?;
    let not_found = || {
        ApiError::new(
            "ResourceNotFoundException",
            format!("No namespace or service has the ARN {arn}."),
        )
    };
    let tags = match resource_of(ctx, &arn)? {
        Resource::Namespace(id) => {
            ctx.get::<Namespace>(&namespace_key(&id))?
                .ok_or_else(not_found)?
                .value
                .tags
        }
        Resource::Service(id) => {
            ctx.get::<Service>(&service_key(&id))?
                .ok_or_else(not_found)?
                .value
                .tags
        }
    };
    Ok(json!({ "Tags": described(&tags) }))
}

/// Tags as the API shows them.
pub fn described(tags: &[Tag]) -> Vec<Value> {
    tags.iter()
        .map(|t| json!({ "Key": t.key, "Value": t.value }))
        .collect()
}
