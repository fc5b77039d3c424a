//! Tags of load balancers, target groups, listeners and rules: AddTags, RemoveTags,
//! DescribeTags, and the `Tags` the Create* actions accept. At most 50 tags a resource; keys
//! of 1 to 128 characters not starting with `aws:`, values of at most 256.

use super::model::{write, Config, Tag};
use super::{arn_prefix, authorize, strings, validation};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::Txn;
use std::collections::BTreeSet;

/// The most tags a resource may have.
const MAX_TAGS: usize = 50;
/// The most resources AddTags, RemoveTags and DescribeTags take at once.
const MAX_RESOURCES: usize = 20;

/// The checked tags of the request's `Tags.member.N`.
pub(super) fn tags_of(request: &QueryRequest) -> Result<Vec<Tag>, ApiError> {
    let mut tags: Vec<Tag> = Vec::new();
    for (i, fields) in request.structures("Tags").into_iter().enumerate() {
        let key = fields.get("Key").cloned().unwrap_or_default();
        let value = fields.get("Value").cloned().unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(validation(format!(
                "The tag key of Tags.member.{} must be 1 to 128 characters long.",
                i + 1
            )));
        }
        if key.starts_with("aws:") {
            return Err(validation(format!(
                "The tag key '{key}' is not valid: keys starting with 'aws:' are reserved."
            )));
        }
        if value.chars().count() > 256 {
            return Err(validation(format!(
                "The value of tag '{key}' must be at most 256 characters long."
            )));
        }
        if tags.iter().any(|t| t.key == key) {
            return Err(ApiError::new(
                "DuplicateTagKeys",
                format!("The tag key '{key}' is given more than once."),
            ));
        }
        tags.push(Tag { key, value });
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(tags)
}

fn too_many_tags() -> ApiError {
    ApiError::new(
        "TooManyTags",
        format!("A resource can have at most {MAX_TAGS} tags."),
    )
}

/// `<Tags>` of a resource, when it has some (the model's `TagList` has at least one member).
pub(super) fn write_tags(xml: &mut Xml, name: &str, tags: &[Tag]) {
    if !tags.is_empty() {
        xml.list(name, tags, |xml, tag| {
            xml.field("Key", &tag.key).field("Value", &tag.value);
        });
    }
}

/// The tags of resource `arn` in `config`, its store key, and the record to write back.
fn tags_mut<'a>(
    ctx: &Ctx,
    config: &'a mut Config,
    arn: &str,
) -> Result<(&'a mut Vec<Tag>, String), ApiError> {
    let prefix = arn_prefix(ctx);
    let kind = arn
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once('/'))
        .map_or("", |(kind, _)| kind);
    match kind {
        "loadbalancer" => config
            .load_balancers
            .iter_mut()
            .find(|lb| lb.arn == arn)
            .map(|lb| (lb.key(), &mut lb.tags))
            .map(|(k, t)| (t, k))
            .ok_or_else(|| super::load_balancers::not_found(arn)),
        "targetgroup" => config
            .target_groups
            .iter_mut()
            .find(|tg| tg.arn == arn)
            .map(|tg| (tg.key(), &mut tg.tags))
            .map(|(k, t)| (t, k))
            .ok_or_else(|| super::target_groups::not_found(arn)),
        "listener" => config
            .listeners
            .iter_mut()
            .find(|l| l.arn == arn)
            .map(|l| (l.key(), &mut l.tags))
            .map(|(k, t)| (t, k))
            .ok_or_else(|| super::listeners::not_found(arn)),
        "listener-rule" => config
            .listeners
            .iter_mut()
            .find_map(|l| {
                let key = l.key();
                if l.default_rule_arn == arn {
                    return Some((&mut l.default_rule_tags, key));
                }
                l.rules
                    .iter_mut()
                    .find(|r| r.arn == arn)
                    .map(|r| (&mut r.tags, key))
            })
            .ok_or_else(|| super::rules::not_found(arn)),
        _ => Err(validation(format!(
            "'{arn}' is not the ARN of a load balancer, target group, listener or rule."
        ))),
    }
}

/// Every record of `config` whose key is in `keys`, as puts.
fn put_records(config: &Config, keys: &BTreeSet<String>) -> Txn {
    let mut txn = Txn::new();
    for lb in config
        .load_balancers
        .iter()
        .filter(|r| keys.contains(&r.key()))
    {
        txn = txn.put(lb.key(), encode(lb));
    }
    for tg in config
        .target_groups
        .iter()
        .filter(|r| keys.contains(&r.key()))
    {
        txn = txn.put(tg.key(), encode(tg));
    }
    for l in config.listeners.iter().filter(|r| keys.contains(&r.key())) {
        txn = txn.put(l.key(), encode(l));
    }
    txn
}

/// The request's `ResourceArns`: 1 to 20 of them.
fn resource_arns(request: &QueryRequest) -> Result<Vec<String>, ApiError> {
    let arns = strings(request, "ResourceArns");
    if arns.is_empty() {
        return Err(super::missing("resourceArns"));
    }
    if arns.len() > MAX_RESOURCES {
        return Err(validation(format!(
            "At most {MAX_RESOURCES} resource ARNs may be given at once."
        )));
    }
    Ok(arns)
}

/// AddTags: adds the tags to every resource named, replacing the values of keys it has.
pub(super) async fn add(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arns = resource_arns(request)?;
    let new = tags_of(request)?;
    if new.is_empty() {
        return Err(super::missing("tags"));
    }
    authorize(
        ctx,
        "AddTags",
        &arns.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    write(ctx, |config| {
        let mut config = config.clone();
        let mut keys = BTreeSet::new();
        for arn in &arns {
            let (tags, key) = tags_mut(ctx, &mut config, arn)?;
            for tag in &new {
                match tags.iter_mut().find(|t| t.key == tag.key) {
                    Some(old) => old.value = tag.value.clone(),
                    None => tags.push(tag.clone()),
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            keys.insert(key);
        }
        Ok((put_records(&config, &keys), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// RemoveTags: removes the tags with the keys given from every resource named.
pub(super) async fn remove(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arns = resource_arns(request)?;
    let keys_gone = strings(request, "TagKeys");
    if keys_gone.is_empty() {
        return Err(super::missing("tagKeys"));
    }
    authorize(
        ctx,
        "RemoveTags",
        &arns.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    write(ctx, |config| {
        let mut config = config.clone();
        let mut keys = BTreeSet::new();
        for arn in &arns {
            let (tags, key) = tags_mut(ctx, &mut config, arn)?;
            tags.retain(|t| !keys_gone.contains(&t.key));
            keys.insert(key);
        }
        Ok((put_records(&config, &keys), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// DescribeTags: the tags of every resource named, in the order named.
pub(super) fn describe(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arns = resource_arns(request)?;
    authorize(
        ctx,
        "DescribeTags",
        &arns.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut config = Config::read(ctx)?;
    let mut found = Vec::new();
    for arn in &arns {
        let (tags, _) = tags_mut(ctx, &mut config, arn)?;
        found.push((arn.clone(), tags.clone()));
    }
    let mut xml = Xml::new();
    xml.list("TagDescriptions", &found, |xml, (arn, tags)| {
        xml.field("ResourceArn", arn);
        write_tags(xml, "Tags", tags);
    });
    Ok(Some(xml))
}
