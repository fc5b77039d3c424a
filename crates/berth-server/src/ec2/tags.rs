//! Tags of security groups: the `TagSpecifications` of CreateSecurityGroup, and CreateTags /
//! DeleteTags on `sg-` resources (the only EC2 resources Berth has). At most 50 tags a group;
//! keys of 1 to 127 characters not starting with `aws:`, values of at most 255.

use super::security_groups::{find, group_arn};
use super::{authorize, dry_run, invalid, missing, strings, structures, Ec2Request, Fields};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::Xml;
use berth_core::security_group::{security_group_key, GroupTag, SecurityGroup};
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};

/// The most tags a resource may have.
const MAX_TAGS: usize = 50;

/// The checked tags of `Tag.N` of `fields` (a request, or one of its TagSpecifications).
fn tags_of(fields: &Fields) -> Result<Vec<GroupTag>, ApiError> {
    let mut tags: Vec<GroupTag> = Vec::new();
    for tag in structures(fields, "Tag") {
        let key = tag.get("Key").cloned().unwrap_or_default();
        let value = tag.get("Value").cloned().unwrap_or_default();
        check_key(&key)?;
        if value.chars().count() > 255 {
            return Err(invalid(format!(
                "The value of tag '{key}' is too long: at most 255 characters."
            )));
        }
        if tags.iter().any(|t| t.key == key) {
            return Err(invalid(format!("Duplicate tag key '{key}'.")));
        }
        tags.push(GroupTag { key, value });
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(tags)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 127 {
        return Err(invalid(format!(
            "Tag key '{key}' is not valid: keys are 1 to 127 characters long."
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid(format!(
            "Tag key '{key}' is not valid: keys starting with 'aws:' are reserved for internal use."
        )));
    }
    Ok(())
}

fn too_many() -> ApiError {
    ApiError::new(
        "TagLimitExceeded",
        format!("A resource can have at most {MAX_TAGS} tags."),
    )
}

/// The tags of the request's `TagSpecification.N` for resources of type `resource_type`
/// (another type is refused).
pub fn tags_from_specifications(
    request: &Ec2Request,
    resource_type: &str,
) -> Result<Vec<GroupTag>, ApiError> {
    let mut tags = Vec::new();
    for spec in structures(&request.params, "TagSpecification") {
        let kind = spec.get("ResourceType").map(String::as_str).unwrap_or("");
        if kind != resource_type {
            return Err(invalid(format!(
                "'{kind}' is not a valid taggable resource type for this operation: use '{resource_type}'."
            )));
        }
        tags.extend(tags_of(&spec)?);
    }
    let mut seen: Vec<&str> = Vec::new();
    for tag in &tags {
        if seen.contains(&tag.key.as_str()) {
            return Err(invalid(format!("Duplicate tag key '{}'.", tag.key)));
        }
        seen.push(&tag.key);
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(tags)
}

/// `<tagSet>` of a resource, when it has tags.
pub fn write_tags(xml: &mut Xml, tags: &[GroupTag]) {
    if !tags.is_empty() {
        super::items(xml, "tagSet", tags, |xml, tag| {
            xml.field("key", &tag.key).field("value", &tag.value);
        });
    }
}

/// The groups `ResourceId.N` names, authorised for `action`: security groups only.
fn resources(ctx: &Ctx, request: &Ec2Request, action: &str) -> Result<Vec<String>, ApiError> {
    let ids = strings(&request.params, "ResourceId");
    if ids.is_empty() {
        return Err(missing("resourceIdSet"));
    }
    for id in &ids {
        if !id.starts_with("sg-") {
            return Err(ApiError::new(
                "InvalidID",
                format!("The ID '{id}' is not valid: Berth's EC2 resources are security groups (sg-...)."),
            ));
        }
        authorize(ctx, action, &group_arn(ctx, id))?;
    }
    Ok(ids)
}

/// Writes every group `change` changes, each guarded on the revision it was read at; retried
/// until no other writer came between. Nothing is written when `change` fails for any.
async fn change_all(
    ctx: &Ctx,
    request: &Ec2Request,
    ids: &[String],
    change: impl Fn(&mut SecurityGroup) -> Result<(), ApiError>,
) -> Result<Option<Xml>, ApiError> {
    loop {
        let mut found: Vec<Versioned<SecurityGroup>> = Vec::new();
        for id in ids {
            if !found.iter().any(|g| g.value.group_id == *id) {
                found.push(find(ctx, id)?);
            }
        }
        for group in &mut found {
            change(&mut group.value)?;
        }
        dry_run(request)?;
        let mut txn = Txn::new();
        for group in &found {
            let key = security_group_key(&group.value.group_id);
            txn = txn
                .when(Compare::at(&key, group.mod_revision))
                .put(&key, encode(&group.value));
        }
        if ctx.commit(txn).await?.succeeded {
            // The model gives CreateTags and DeleteTags no output.
            return Ok(None);
        }
    }
}

/// CreateTags: adds the tags to each group, replacing the value of a key it has.
pub async fn create(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    let ids = resources(ctx, request, "CreateTags")?;
    let tags = tags_of(&request.params)?;
    if tags.is_empty() {
        return Err(missing("tagSet"));
    }
    change_all(ctx, request, &ids, |group| {
        for tag in &tags {
            match group.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(held) => held.value = tag.value.clone(),
                None => group.tags.push(tag.clone()),
            }
        }
        if group.tags.len() > MAX_TAGS {
            return Err(too_many());
        }
        Ok(())
    })
    .await
}

/// DeleteTags: removes each key given (only where its value is the one given, when a
/// value is), or every tag when no key is given.
pub async fn delete(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    let ids = resources(ctx, request, "DeleteTags")?;
    let mut doomed: Vec<(String, Option<String>)> = Vec::new();
    for tag in structures(&request.params, "Tag") {
        let key = tag.get("Key").cloned().unwrap_or_default();
        check_key(&key)?;
        doomed.push((key, tag.get("Value").cloned()));
    }
    change_all(ctx, request, &ids, |group| {
        group.tags.retain(|t| {
            !doomed.is_empty()
                && !doomed.iter().any(|(key, value)| {
                    *key == t.key && value.as_ref().is_none_or(|v| *v == t.value)
                })
        });
        Ok(())
    })
    .await
}
