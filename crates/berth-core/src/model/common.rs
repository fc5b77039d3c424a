//! Shapes shared by many operations: tags, key/value pairs, attributes, failures, resources.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// ECS timestamps are epoch seconds, fractions allowed.
pub type Timestamp = f64;

/// A resource tag (`{"key": ..., "value": ...}`).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A `name`/`value` pair (environment variables, statistics, properties).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// An attribute of a container instance (or a requirement of a task definition).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
}

/// One entry of a `failures` list: what could not be done for which resource, and why.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub arn: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

impl Failure {
    /// A failure for `arn` with ECS's reason code (`MISSING`, `RESOURCE:MEMORY`, ...).
    pub fn new(arn: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            arn: Some(arn.into()),
            reason: Some(reason.into()),
            detail: None,
        }
    }
}

/// A resource of a container instance: CPU, MEMORY, PORTS, PORTS_UDP and the like.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub double_value: Option<f64>,
    pub long_value: Option<i64>,
    pub integer_value: Option<i32>,
    pub string_set_value: Option<Vec<String>>,
}

/// An attachment (network interfaces and the like) of a cluster, task or instance.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub details: Option<Vec<KeyValuePair>>,
}

/// Maximum number of tags on one resource, as ECS documents.
pub const MAX_TAGS: usize = 50;

/// Checks a list of tags as ECS does: at most 50, keys 1–128 characters, values at most 256,
/// no key twice, and the `aws:` prefix reserved. Returns the message for the user.
pub fn validate_tags(tags: &[Tag]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "Too many tags: a resource can have at most {MAX_TAGS} tags."
        ));
    }
    let mut keys = std::collections::HashSet::new();
    for tag in tags {
        let key = tag.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return Err("Tag keys must be between 1 and 128 characters long.".to_string());
        }
        if tag.value.as_deref().unwrap_or("").chars().count() > 256 {
            return Err(format!(
                "The value of tag '{key}' is longer than 256 characters."
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!(
                "Tag key '{key}' is invalid: the 'aws:' prefix is reserved."
            ));
        }
        if !keys.insert(key) {
            return Err(format!("Tag key '{key}' appears more than once."));
        }
    }
    Ok(())
}

/// Merges `new` tags into `existing`: a key already present takes the new value.
pub fn merge_tags(existing: &mut Vec<Tag>, new: &[Tag]) {
    for tag in new {
        match existing.iter_mut().find(|t| t.key == tag.key) {
            Some(old) => old.value = tag.value.clone(),
            None => existing.push(tag.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn tags_with_reserved_prefix_duplicates_or_empty_keys_are_rejected() {
        assert!(validate_tags(&[tag("team", "a")]).is_ok());
        assert!(validate_tags(&[tag("aws:x", "a")]).is_err());
        assert!(validate_tags(&[tag("k", "a"), tag("k", "b")]).is_err());
        assert!(validate_tags(&[tag("", "a")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&many).is_err());
    }

    #[test]
    fn merging_tags_overwrites_values_of_existing_keys() {
        let mut tags = vec![tag("a", "1"), tag("b", "2")];
        merge_tags(&mut tags, &[tag("b", "3"), tag("c", "4")]);
        assert_eq!(tags, vec![tag("a", "1"), tag("b", "3"), tag("c", "4")]);
    }

    #[test]
    fn absent_optional_fields_are_left_out_of_json() {
        let failure = Failure::new("arn:x", "MISSING");
        assert_eq!(
            serde_json::to_string(&failure).expect("serializes"),
            r#"{"arn":"arn:x","reason":"MISSING"}"#
        );
    }
}
