//! Resolving a container definition's `secrets[].valueFrom` to its plaintext, for the
//! server's own use when a task starts (no authorisation here: the caller checks the task's
//! execution role). The forms ECS accepts:
//!
//! - a Secrets Manager ARN, full or without its random suffix, optionally followed by
//!   `:json-key:version-stage:version-id` (each part may be empty; AWSCURRENT by default);
//! - an SSM parameter name (`/a/b` or `x`) or ARN, optionally with a `:version` selector.

use super::{find, SecretValue};
use crate::app::App;
use crate::error::ApiError;

/// A Secrets Manager `valueFrom`, split into the secret's ARN and the optional parts ECS
/// adds after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference<'a> {
    /// `arn:aws:secretsmanager:{region}:{account}:secret:{name}[-XXXXXX]`
    pub arn: String,
    pub json_key: Option<&'a str>,
    pub version_stage: Option<&'a str>,
    pub version_id: Option<&'a str>,
}

/// Splits a Secrets Manager `valueFrom`; `None` when it is not a Secrets Manager ARN.
pub fn parse_secret_reference(value_from: &str) -> Option<SecretReference<'_>> {
    let parts: Vec<&str> = value_from.split(':').collect();
    let is_secret = parts.len() >= 7
        && parts[0] == "arn"
        && parts[2] == "secretsmanager"
        && parts[5] == "secret"
        && !parts[6].is_empty();
    if !is_secret || parts.len() > 10 {
        return None;
    }
    let part = |i: usize| parts.get(i).copied().filter(|p| !p.is_empty());
    Some(SecretReference {
        arn: parts[..7].join(":"),
        json_key: part(7),
        version_stage: part(8),
        version_id: part(9),
    })
}

/// The plaintext `value_from` names: a secret's value (or one key of its JSON), or a
/// parameter's value (a SecureString decrypted). Errors name the secret or parameter, in
/// the words ECS uses when it cannot fetch one.
pub fn resolve_value_from(app: &App, value_from: &str) -> Result<String, ApiError> {
    if value_from.starts_with("arn:") && value_from.split(':').nth(2) == Some("secretsmanager") {
        let reference = parse_secret_reference(value_from).ok_or_else(|| {
            ApiError::new(
                "InvalidParameterException",
                format!("{value_from} is not a Secrets Manager ARN of the form arn:aws:secretsmanager:region:account:secret:name[:json-key:version-stage:version-id]"),
            )
        })?;
        return resolve_secret(app, &reference);
    }
    resolve_parameter(app, value_from)
}

fn resolve_secret(app: &App, reference: &SecretReference<'_>) -> Result<String, ApiError> {
    let arn = &reference.arn;
    let named = |e: ApiError| {
        ApiError::new(
            e.name,
            format!(
                "failed to fetch secret {arn} from secrets manager: {}: {}",
                e.name, e.message
            ),
        )
    };
    let secret = find(app, arn, app.now())
        .map_err(named)?
        .secret
        .ok_or_else(|| named(super::not_found()))?
        .value;
    if secret.is_deleted() {
        return Err(named(super::marked_for_deletion()));
    }
    let version = secret
        .select(reference.version_id, reference.version_stage)
        .map_err(named)?;
    let text = match secret.open(&app.vault, version)? {
        SecretValue::String(text) => text,
        SecretValue::Binary(_) => {
            return Err(ApiError::new(
                "InvalidRequestException",
                format!("secret {arn} holds a binary value (SecretBinary); only string secrets can be injected"),
            ))
        }
    };
    let Some(key) = reference.json_key else {
        return Ok(text);
    };
    // Never echo the value in an error: it is the secret.
    let document: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        ApiError::new(
            "InvalidRequestException",
            format!("unable to unmarshal secret value of secret {arn}: it is not a JSON object, so json key {key} cannot be read"),
        )
    })?;
    match document.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) if !other.is_null() => Ok(other.to_string()),
        _ => Err(ApiError::new(
            "InvalidRequestException",
            format!("retrieved secret from Secrets Manager did not contain json key {key} (secret {arn})"),
        )),
    }
}

fn resolve_parameter(app: &App, value_from: &str) -> Result<String, ApiError> {
    let (reference, selector) = crate::ssm::split_selector(value_from);
    let named = |e: ApiError| {
        ApiError::new(
            e.name,
            format!(
                "failed to fetch parameter {value_from} from SSM Parameter Store: {}: {}",
                e.name, e.message
            ),
        )
    };
    let parameter = crate::ssm::find(app, reference)
        .map_err(named)?
        .ok_or_else(|| named(crate::ssm::parameter_not_found(reference)))?
        .value;
    let version = crate::ssm::select(&parameter, selector).map_err(named)?;
    parameter.plaintext(&app.vault, version)
}
