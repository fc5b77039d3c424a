//! A secret's values and their versions: GetSecretValue, BatchGetSecretValue,
//! PutSecretValue, ListSecretVersionIds and UpdateSecretVersionStage.

use super::secrets::{selected, value_of, version_id_of, Filter};
use super::{
    authorize, authorized, invalid_parameter, marked_for_deletion, not_found, secret_key, Secret,
    SecretValue, AWSCURRENT,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// GetSecretValue's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueRequest {
    pub secret_id: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

/// GetSecretValue's answer: the one place a value leaves the server.
// No Debug: it holds a value.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretValueAnswer {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    pub version_stages: Vec<String>,
    pub created_date: f64,
}

/// The value of the version of `secret` that `version_id` / `version_stage` select.
fn value_answer(
    ctx: &Ctx,
    secret: &Secret,
    version_id: Option<&str>,
    version_stage: Option<&str>,
) -> Result<SecretValueAnswer, ApiError> {
    use base64::Engine as _;
    if secret.is_deleted() {
        return Err(marked_for_deletion());
    }
    let version = secret.select(version_id, version_stage)?;
    let (secret_string, secret_binary) = match secret.open(&ctx.vault, version)? {
        SecretValue::String(s) => (Some(s), None),
        SecretValue::Binary(b) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
    Ok(SecretValueAnswer {
        arn: secret.arn.clone(),
        name: secret.name.clone(),
        version_id: version.version_id.clone(),
        secret_binary,
        secret_string,
        version_stages: version.stages.clone(),
        created_date: version.created_date,
    })
}

/// GetSecretValue: the value of the secret's AWSCURRENT version, or of the version a
/// VersionId or VersionStage names. A secret scheduled for deletion has none to give.
pub async fn get(ctx: Ctx, input: GetSecretValueRequest) -> Result<SecretValueAnswer, ApiError> {
    let secret = authorized(&ctx, "GetSecretValue", &input.secret_id)?;
    value_answer(
        &ctx,
        &secret.value,
        input.version_id.as_deref(),
        input.version_stage.as_deref(),
    )
}

/// BatchGetSecretValue's input: a list of secrets or filters, not both.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueRequest {
    pub secret_id_list: Option<Vec<String>>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// One secret BatchGetSecretValue could not read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorType {
    pub secret_id: String,
    pub error_code: String,
    pub message: String,
}

/// BatchGetSecretValue's answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueResponse {
    pub secret_values: Vec<SecretValueAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub errors: Vec<ApiErrorType>,
}

/// BatchGetSecretValue: the AWSCURRENT values of up to 20 named secrets, or of the secrets
/// the filters select (paged); each secret the caller may not read or that is missing is
/// listed under Errors instead.
pub async fn batch_get(
    ctx: Ctx,
    input: BatchGetSecretValueRequest,
) -> Result<BatchGetSecretValueResponse, ApiError> {
    let mut answer = BatchGetSecretValueResponse {
        secret_values: Vec::new(),
        next_token: None,
        errors: Vec::new(),
    };
    let ids: Vec<String> = match (input.secret_id_list, input.filters.is_empty()) {
        (Some(_), false) => {
            return Err(invalid_parameter(
                "Either SecretIdList or Filters must be specified, not both.",
            ))
        }
        (Some(ids), true) => {
            if ids.is_empty() || ids.len() > 20 {
                return Err(invalid_parameter("SecretIdList must name 1 to 20 secrets."));
            }
            if input.max_results.is_some() || input.next_token.is_some() {
                return Err(invalid_parameter(
                    "MaxResults and NextToken apply to Filters only.",
                ));
            }
            ids
        }
        (None, true) => {
            return Err(invalid_parameter(
                "Either SecretIdList or Filters must be specified.",
            ))
        }
        (None, false) => {
            authorize(&ctx, "ListSecrets", "*", &Vec::new())?;
            let page = super::page_of(input.next_token.as_deref(), input.max_results, 20)?;
            let secrets = selected(&ctx, &input.filters, false, None)?;
            let (secrets, next_token) = page.page(secrets, |(key, _)| key.clone());
            answer.next_token = next_token;
            secrets.into_iter().map(|(_, s)| s.arn).collect()
        }
    };
    for id in ids {
        let read = authorized(&ctx, "GetSecretValue", &id)
            .and_then(|secret| value_answer(&ctx, &secret.value, None, None));
        match read {
            Ok(value) => answer.secret_values.push(value),
            Err(e) if e.name == "ServerException" => return Err(e),
            Err(e) => answer.errors.push(ApiErrorType {
                secret_id: id,
                error_code: e.name.to_string(),
                message: e.message,
            }),
        }
    }
    Ok(answer)
}

/// PutSecretValue's input.
// No Debug: it holds a value.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
    pub version_stages: Option<Vec<String>>,
}

/// PutSecretValue: a new version (its id the ClientRequestToken), labelled AWSCURRENT unless
/// VersionStages says otherwise; the version that was AWSCURRENT becomes AWSPREVIOUS.
/// Repeating a request with the same token and value changes nothing; the same token with
/// another value is refused, since versions never change.
pub async fn put(
    ctx: Ctx,
    input: PutSecretValueRequest,
) -> Result<super::secrets::SecretVersionAnswer, ApiError> {
    let value = value_of(input.secret_string, input.secret_binary)?.ok_or_else(|| {
        invalid_parameter("You must provide either SecretString or SecretBinary.")
    })?;
    let version_id = version_id_of(input.client_request_token)?;
    let stages = input
        .version_stages
        .unwrap_or_else(|| vec![AWSCURRENT.to_string()]);
    if stages.len() > 20 || stages.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(invalid_parameter(
            "VersionStages takes 1 to 20 labels of 1 to 256 characters.",
        ));
    }
    let found = authorized(&ctx, "PutSecretValue", &input.secret_id)?;
    let key = secret_key(&found.value.name);
    let now = ctx.now();
    let secret = ctx
        .update::<Secret, _>(&key, |current| {
            let mut secret = current
                .filter(|s| s.arn == found.value.arn)
                .ok_or_else(not_found)?;
            if secret.is_deleted() {
                return Err(marked_for_deletion());
            }
            if let Some(existing) = secret.version(&version_id) {
                return if secret.open(&ctx.vault, existing)? == value {
                    Ok(secret)
                } else {
                    Err(ApiError::new(
                        "ResourceExistsException",
                        "You can't modify an existing version, you can only create a new version.",
                    ))
                };
            }
            secret.add_version(&ctx.vault, &version_id, &value, stages.clone(), now)?;
            Ok(secret)
        })
        .await?;
    let version_stages = secret
        .version(&version_id)
        .map(|v| v.stages.clone())
        .unwrap_or_default();
    Ok(super::secrets::SecretVersionAnswer {
        arn: secret.arn,
        name: secret.name,
        version_id: Some(version_id),
        version_stages: Some(version_stages),
    })
}

/// ListSecretVersionIds' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsRequest {
    pub secret_id: String,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub include_deprecated: Option<bool>,
}

/// One version in ListSecretVersionIds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionEntry {
    pub version_id: String,
    pub version_stages: Vec<String>,
    pub created_date: f64,
}

/// ListSecretVersionIds' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsResponse {
    pub versions: Vec<VersionEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

/// ListSecretVersionIds: the secret's versions (those without a label only with
/// IncludeDeprecated), oldest first; no values.
pub async fn list_version_ids(
    ctx: Ctx,
    input: ListSecretVersionIdsRequest,
) -> Result<ListSecretVersionIdsResponse, ApiError> {
    let page = super::page_of(input.next_token.as_deref(), input.max_results, 100)?;
    let secret = authorized(&ctx, "ListSecretVersionIds", &input.secret_id)?.value;
    let versions: Vec<(String, VersionEntry)> = secret
        .versions
        .iter()
        .enumerate()
        .filter(|(_, v)| input.include_deprecated.unwrap_or(false) || !v.stages.is_empty())
        .map(|(i, v)| {
            let entry = VersionEntry {
                version_id: v.version_id.clone(),
                version_stages: v.stages.clone(),
                created_date: v.created_date,
            };
            (format!("{i:06}"), entry)
        })
        .collect();
    let (versions, next_token) = page.page(versions, |(key, _)| key.clone());
    Ok(ListSecretVersionIdsResponse {
        versions: versions.into_iter().map(|(_, v)| v).collect(),
        next_token,
        arn: secret.arn,
        name: secret.name,
    })
}

/// UpdateSecretVersionStage's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretVersionStageRequest {
    pub secret_id: String,
    pub version_stage: String,
    pub remove_from_version_id: Option<String>,
    pub move_to_version_id: Option<String>,
}

/// UpdateSecretVersionStage: moves a label to another version (or removes it). Moving
/// AWSCURRENT leaves AWSPREVIOUS on the version that held it.
pub async fn update_stage(
    ctx: Ctx,
    input: UpdateSecretVersionStageRequest,
) -> Result<super::secrets::SecretName, ApiError> {
    let found = authorized(&ctx, "UpdateSecretVersionStage", &input.secret_id)?;
    let key = secret_key(&found.value.name);
    let stage = input.version_stage.clone();
    let secret = ctx
        .update::<Secret, _>(&key, |current| {
            let mut secret = current
                .filter(|s| s.arn == found.value.arn)
                .ok_or_else(not_found)?;
            if secret.is_deleted() {
                return Err(marked_for_deletion());
            }
            let holder = secret.staged(&stage).map(|v| v.version_id.clone());
            if holder.is_some() && holder != input.remove_from_version_id && holder != input.move_to_version_id {
                return Err(invalid_parameter(format!(
                    "The staging label {stage} is attached to version {}; name it in RemoveFromVersionId to move it.",
                    holder.unwrap_or_default()
                )));
            }
            if let Some(to) = &input.move_to_version_id {
                if secret.version(to).is_none() {
                    return Err(invalid_parameter(format!("The version {to} does not exist.")));
                }
            }
            if stage == AWSCURRENT && input.move_to_version_id.is_none() {
                return Err(invalid_parameter(
                    "AWSCURRENT cannot be removed; move it to another version instead.",
                ));
            }
            let moving_current = stage == AWSCURRENT && holder != input.move_to_version_id;
            for version in &mut secret.versions {
                let held = version.stages.contains(&stage);
                version.stages.retain(|s| *s != stage);
                if moving_current {
                    version.stages.retain(|s| s != super::AWSPREVIOUS);
                    if held {
                        version.stages.push(super::AWSPREVIOUS.to_string());
                    }
                }
                if Some(&version.version_id) == input.move_to_version_id.as_ref() {
                    version.stages.push(stage.clone());
                }
            }
            secret.last_changed_date = ctx.now();
            Ok(secret)
        })
        .await?;
    Ok(super::secrets::SecretName {
        arn: secret.arn,
        name: secret.name,
    })
}
