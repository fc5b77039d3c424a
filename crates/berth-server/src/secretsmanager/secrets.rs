//! Secrets themselves: CreateSecret, DescribeSecret, ListSecrets, UpdateSecret, DeleteSecret
//! and RestoreSecret. None of these answers carries a value.

use super::{
    authorize, authorized, invalid_parameter, marked_for_deletion, not_found, secret_key, Secret,
    SecretValue, Tag, AWSCURRENT,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest value Secrets Manager stores (SecretString or SecretBinary).
const MAX_VALUE_BYTES: usize = 65536;

/// CreateSecret's input.
// No Debug: it holds a value.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretRequest {
    pub name: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// What CreateSecret, UpdateSecret and PutSecretValue answer about the secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretVersionAnswer {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_stages: Option<Vec<String>>,
}

/// The value a request carries in `SecretString` or `SecretBinary` (base64 on the wire), if
/// any; both at once is an error.
pub(super) fn value_of(
    string: Option<String>,
    binary: Option<String>,
) -> Result<Option<SecretValue>, ApiError> {
    use base64::Engine as _;
    let value = match (string, binary) {
        (Some(_), Some(_)) => {
            return Err(invalid_parameter(
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ))
        }
        (Some(s), None) => SecretValue::String(s),
        (None, Some(b)) => SecretValue::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|_| invalid_parameter("SecretBinary must be base64-encoded."))?,
        ),
        (None, None) => return Ok(None),
    };
    if value.bytes().is_empty() || value.bytes().len() > MAX_VALUE_BYTES {
        return Err(invalid_parameter(format!(
            "The secret value must be between 1 and {MAX_VALUE_BYTES} bytes."
        )));
    }
    Ok(Some(value))
}

/// A ClientRequestToken (the new version's id): 32 to 64 characters; a UUID when absent.
pub(super) fn version_id_of(token: Option<String>) -> Result<String, ApiError> {
    match token {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(t) if (32..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) => Ok(t),
        Some(_) => Err(invalid_parameter(
            "ClientRequestToken must be 32 to 64 printable characters.",
        )),
    }
}

/// Secret names: 1 to 512 of letters, digits and `/_+=.@-`.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ))
    }
}

fn validate_description(description: Option<&str>) -> Result<(), ApiError> {
    match description {
        Some(d) if d.chars().count() > 2048 => Err(invalid_parameter(
            "The description must be at most 2048 characters.",
        )),
        _ => Ok(()),
    }
}

/// Tags: at most 50, keys 1–128 and values up to 256 characters, keys unique, none `aws:`.
pub(super) fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(invalid_parameter("A secret can have at most 50 tags."));
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.value.chars().count() > 256 {
            return Err(invalid_parameter(format!(
                "The tag key '{}' or its value is empty or too long.",
                tag.key
            )));
        }
        if tag.key.to_lowercase().starts_with("aws:") {
            return Err(invalid_parameter(
                "Tag keys beginning with aws: are reserved.",
            ));
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(invalid_parameter(format!(
                "The tag key '{}' is repeated.",
                tag.key
            )));
        }
    }
    Ok(())
}

/// `aws:RequestTag/...` and `aws:TagKeys` of the tags a request brings.
pub(super) fn request_keys(tags: &[Tag]) -> crate::authz::Keys {
    tags.iter()
        .flat_map(|t| {
            [
                (format!("aws:RequestTag/{}", t.key), t.value.clone()),
                ("aws:TagKeys".to_string(), t.key.clone()),
            ]
        })
        .collect()
}

/// Six random letters and digits: the suffix AWS appends to a secret's ARN so a secret
/// re-created under an old name does not inherit permissions granted on the old one.
fn arn_suffix() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::server(format!("the OS random source failed: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// CreateSecret: a new secret, with a first version (labelled AWSCURRENT) when a value is
/// given. Retrying with the same ClientRequestToken and value answers the same secret.
pub async fn create(ctx: Ctx, input: CreateSecretRequest) -> Result<SecretVersionAnswer, ApiError> {
    validate_name(&input.name)?;
    validate_description(input.description.as_deref())?;
    validate_tags(&input.tags)?;
    let value = value_of(input.secret_string, input.secret_binary)?;
    let version_id = version_id_of(input.client_request_token)?;
    let now = ctx.now();
    let arn = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{}-{}",
        ctx.arns.region,
        ctx.arns.account_id,
        input.name,
        arn_suffix()?
    );
    authorize(&ctx, "CreateSecret", &arn, &request_keys(&input.tags))?;
    let key = secret_key(&input.name);
    let existing = ctx.get::<Secret>(&key)?;
    if let Some(existing) = &existing {
        let purged = existing.value.deletion_date.is_some_and(|d| d <= now);
        if !purged {
            return retried_create(&ctx, &existing.value, &version_id, value.as_ref());
        }
    }
    let mut secret = Secret {
        name: input.name.clone(),
        arn,
        description: input.description,
        tags: input.tags,
        created_date: now,
        last_changed_date: now,
        deleted_date: None,
        deletion_date: None,
        versions: Vec::new(),
    };
    if let Some(value) = &value {
        secret.add_version(&ctx.vault, &version_id, value, vec![AWSCURRENT.into()], now)?;
    }
    let guard = match &existing {
        Some(purged) => Compare::at(&key, purged.mod_revision),
        None => Compare::absent(&key),
    };
    let txn = Txn::new().when(guard).put(&key, encode(&secret));
    if !ctx.commit(txn).await?.succeeded {
        return Err(exists(&input.name));
    }
    Ok(SecretVersionAnswer {
        arn: secret.arn,
        name: secret.name,
        version_id: value.map(|_| version_id),
        version_stages: None,
    })
}

fn exists(name: &str) -> ApiError {
    ApiError::new(
        "ResourceExistsException",
        format!("The operation failed because the secret {name} already exists."),
    )
}

/// A CreateSecret on a name that exists: a retry (same token, same value) succeeds again;
/// anything else is ResourceExistsException.
fn retried_create(
    ctx: &Ctx,
    secret: &Secret,
    version_id: &str,
    value: Option<&SecretValue>,
) -> Result<SecretVersionAnswer, ApiError> {
    if let (Some(version), Some(value)) = (secret.version(version_id), value) {
        if !secret.is_deleted() && secret.open(&ctx.vault, version)? == *value {
            return Ok(SecretVersionAnswer {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
                version_id: Some(version_id.to_string()),
                version_stages: None,
            });
        }
    }
    Err(exists(&secret.name))
}

/// A request naming one secret.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretIdRequest {
    pub secret_id: String,
}

/// DescribeSecret's answer (and one ListSecrets entry): everything but the value.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretDescription {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub last_changed_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<f64>,
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_ids_to_stages: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_versions_to_stages: Option<BTreeMap<String, Vec<String>>>,
    pub created_date: f64,
}

fn description_of(secret: &Secret, listed: bool) -> SecretDescription {
    let stages = Some(secret.versions_to_stages());
    SecretDescription {
        arn: secret.arn.clone(),
        name: secret.name.clone(),
        description: secret.description.clone(),
        last_changed_date: secret.last_changed_date,
        deleted_date: secret.deleted_date,
        tags: secret.tags.clone(),
        version_ids_to_stages: if listed { None } else { stages.clone() },
        secret_versions_to_stages: if listed { stages } else { None },
        created_date: secret.created_date,
    }
}

/// DescribeSecret: the secret's metadata and which version holds which label.
pub async fn describe(ctx: Ctx, input: SecretIdRequest) -> Result<SecretDescription, ApiError> {
    let secret = authorized(&ctx, "DescribeSecret", &input.secret_id)?;
    Ok(description_of(&secret.value, false))
}

/// One ListSecrets filter.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// ListSecrets' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsRequest {
    pub include_planned_deletion: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub sort_order: Option<String>,
}

/// ListSecrets' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsResponse {
    pub secret_list: Vec<SecretDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Whether `secret` passes `filter`: any of its values matches (as a prefix of the field;
/// a value starting with `!` matches when the prefix does not).
pub(super) fn passes(secret: &Secret, filter: &Filter) -> Result<bool, ApiError> {
    let fields: Vec<&str> = match filter.key.as_str() {
        "name" => vec![&secret.name],
        "description" => secret.description.iter().map(String::as_str).collect(),
        "tag-key" => secret.tags.iter().map(|t| t.key.as_str()).collect(),
        "tag-value" => secret.tags.iter().map(|t| t.value.as_str()).collect(),
        "primary-region" | "owning-service" => Vec::new(),
        "all" => std::iter::once(secret.name.as_str())
            .chain(secret.description.as_deref())
            .chain(secret.tags.iter().flat_map(|t| [t.key.as_str(), t.value.as_str()]))
            .collect(),
        other => {
            return Err(invalid_parameter(format!(
                "Invalid filter key '{other}': use description, name, tag-key, tag-value, primary-region, owning-service or all."
            )))
        }
    };
    if filter.values.is_empty() {
        return Err(invalid_parameter(format!(
            "The filter {} needs at least one value.",
            filter.key
        )));
    }
    Ok(filter
        .values
        .iter()
        .any(|value| match value.strip_prefix('!') {
            Some(not) => !fields.iter().any(|f| f.starts_with(not)),
            None => fields.iter().any(|f| f.starts_with(value.as_str())),
        }))
}

/// The secrets the caller's filters select, oldest first (or newest first with
/// `desc`), each with the key pages are cut on.
pub(super) fn selected(
    ctx: &Ctx,
    filters: &[Filter],
    include_planned_deletion: bool,
    sort_order: Option<&str>,
) -> Result<Vec<(String, Secret)>, ApiError> {
    let descending = match sort_order {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(invalid_parameter(format!(
                "SortOrder must be asc or desc, not '{other}'."
            )))
        }
    };
    let now = ctx.now();
    let mut out = Vec::new();
    for secret in ctx.list::<Secret>(super::SECRETS)? {
        let secret = secret.value;
        if secret.deletion_date.is_some_and(|d| d <= now)
            || (secret.is_deleted() && !include_planned_deletion)
        {
            continue;
        }
        let mut keep = true;
        for filter in filters {
            keep &= passes(&secret, filter)?;
        }
        if keep {
            let millis = (secret.created_date * 1000.0) as u64;
            let order = if descending {
                u64::MAX - millis
            } else {
                millis
            };
            out.push((format!("{order:020}/{}", secret.name), secret));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// ListSecrets: the secrets, filtered and paged; no values.
pub async fn list(ctx: Ctx, input: ListSecretsRequest) -> Result<ListSecretsResponse, ApiError> {
    authorize(&ctx, "ListSecrets", "*", &Vec::new())?;
    let page = super::page_of(input.next_token.as_deref(), input.max_results, 100)?;
    let secrets = selected(
        &ctx,
        &input.filters,
        input.include_planned_deletion.unwrap_or(false),
        input.sort_order.as_deref(),
    )?;
    let (secrets, next_token) = page.page(secrets, |(key, _)| key.clone());
    Ok(ListSecretsResponse {
        secret_list: secrets
            .iter()
            .map(|(_, s)| description_of(s, true))
            .collect(),
        next_token,
    })
}

/// UpdateSecret's input.
// No Debug: it holds a value.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
}

/// UpdateSecret: a new description and/or a new value (a new AWSCURRENT version).
pub async fn update(ctx: Ctx, input: UpdateSecretRequest) -> Result<SecretVersionAnswer, ApiError> {
    validate_description(input.description.as_deref())?;
    let value = value_of(input.secret_string, input.secret_binary)?;
    let version_id = version_id_of(input.client_request_token)?;
    let found = authorized(&ctx, "UpdateSecret", &input.secret_id)?;
    let key = secret_key(&found.value.name);
    let now = ctx.now();
    let mut created = false;
    let secret = ctx
        .update::<Secret, _>(&key, |current| {
            let mut secret = current
                .filter(|s| s.arn == found.value.arn)
                .ok_or_else(not_found)?;
            if secret.is_deleted() {
                return Err(marked_for_deletion());
            }
            if let Some(description) = &input.description {
                secret.description = Some(description.clone());
                secret.last_changed_date = now;
            }
            created = false;
            if let Some(value) = &value {
                if secret.version(&version_id).is_some() {
                    return Err(ApiError::new(
                        "ResourceExistsException",
                        "You can't modify an existing version, you can only create a new version.",
                    ));
                }
                secret.add_version(&ctx.vault, &version_id, value, vec![AWSCURRENT.into()], now)?;
                created = true;
            }
            Ok(secret)
        })
        .await?;
    Ok(SecretVersionAnswer {
        arn: secret.arn,
        name: secret.name,
        version_id: created.then_some(version_id),
        version_stages: None,
    })
}

/// DeleteSecret's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretRequest {
    pub secret_id: String,
    pub recovery_window_in_days: Option<i64>,
    pub force_delete_without_recovery: Option<bool>,
}

/// DeleteSecret's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub deletion_date: f64,
}

/// DeleteSecret: schedules the secret's deletion after a recovery window (7–30 days, 30 by
/// default), during which RestoreSecret brings it back; or, with
/// ForceDeleteWithoutRecovery, deletes it with all its versions now.
pub async fn delete(
    ctx: Ctx,
    input: DeleteSecretRequest,
) -> Result<DeleteSecretResponse, ApiError> {
    let force = input.force_delete_without_recovery.unwrap_or(false);
    if force && input.recovery_window_in_days.is_some() {
        return Err(invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = input.recovery_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let found = authorized(&ctx, "DeleteSecret", &input.secret_id)?;
    let key = secret_key(&found.value.name);
    let now = ctx.now();
    if force {
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .delete(&key);
        if !ctx.commit(txn).await?.succeeded {
            return Err(ApiError::new(
                "InvalidRequestException",
                "The secret changed while it was being deleted; try again.",
            ));
        }
        return Ok(DeleteSecretResponse {
            arn: found.value.arn,
            name: found.value.name,
            deletion_date: now,
        });
    }
    let secret = ctx
        .update::<Secret, _>(&key, |current| {
            let mut secret = current
                .filter(|s| s.arn == found.value.arn)
                .ok_or_else(not_found)?;
            if secret.is_deleted() {
                return Err(ApiError::new(
                    "InvalidRequestException",
                    "You can't perform this operation on the secret because it was already scheduled for deletion.",
                ));
            }
            secret.deleted_date = Some(now);
            secret.deletion_date = Some(now + (days * 86400) as f64);
            Ok(secret)
        })
        .await?;
    Ok(DeleteSecretResponse {
        arn: secret.arn,
        name: secret.name,
        deletion_date: secret.deletion_date.unwrap_or(now),
    })
}

/// RestoreSecret's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretName {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

/// RestoreSecret: cancels a scheduled deletion.
pub async fn restore(ctx: Ctx, input: SecretIdRequest) -> Result<SecretName, ApiError> {
    let found = authorized(&ctx, "RestoreSecret", &input.secret_id)?;
    let key = secret_key(&found.value.name);
    let secret = ctx
        .update::<Secret, _>(&key, |current| {
            let mut secret = current
                .filter(|s| s.arn == found.value.arn)
                .ok_or_else(not_found)?;
            secret.deleted_date = None;
            secret.deletion_date = None;
            Ok(secret)
        })
        .await?;
    Ok(SecretName {
        arn: secret.arn,
        name: secret.name,
    })
}
