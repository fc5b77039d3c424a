//! A parameter's past: GetParameterHistory.

use super::{authorized, error, parameter_not_found, Parameter};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::pagination::{PageError, PageRequest};
use serde::{Deserialize, Serialize};

/// GetParameterHistory's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterHistoryRequest {
    pub name: String,
    pub with_decryption: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// One version in GetParameterHistory.
// No Debug: it may hold a value.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterHistory {
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub last_modified_date: f64,
    pub last_modified_user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    pub version: i64,
    pub labels: Vec<String>,
    pub tier: String,
    pub policies: Vec<serde_json::Value>,
    pub data_type: String,
}

/// GetParameterHistory's answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterHistoryResponse {
    pub parameters: Vec<ParameterHistory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// The paging of SSM's list operations: MaxResults 1 to `max`, InvalidNextToken.
pub(super) fn page_of(
    next_token: Option<&str>,
    max_results: Option<i64>,
    max: usize,
) -> Result<PageRequest, ApiError> {
    PageRequest::parse(next_token, max_results, max).map_err(|e| match e {
        PageError::Token => error("InvalidNextToken", e.to_string()),
        other => error("ValidationException", other.to_string()),
    })
}

/// GetParameterHistory: every kept version of a parameter, oldest first, each value shown
/// as GetParameter would show it (a SecureString decrypted only `WithDecryption`).
pub async fn history(
    ctx: Ctx,
    input: GetParameterHistoryRequest,
) -> Result<GetParameterHistoryResponse, ApiError> {
    let page = page_of(input.next_token.as_deref(), input.max_results, 50)?;
    let parameter: Parameter = authorized(&ctx, "GetParameterHistory", &input.name)?
        .ok_or_else(|| parameter_not_found(&input.name))?
        .value;
    let with_decryption = input.with_decryption.unwrap_or(false);
    let versions: Vec<_> = parameter.versions.iter().collect();
    let (versions, next_token) = page.page(versions, |v| format!("{:020}", v.version));
    let parameters = versions
        .into_iter()
        .map(|v| {
            Ok(ParameterHistory {
                name: parameter.name.clone(),
                kind: v.kind.clone(),
                key_id: v.key_id.clone(),
                last_modified_date: v.last_modified_date,
                last_modified_user: v.last_modified_user.clone(),
                description: v.description.clone(),
                value: parameter.shown(&ctx.vault, v, with_decryption)?,
                allowed_pattern: v.allowed_pattern.clone(),
                version: v.version,
                labels: v.labels.clone(),
                tier: v.tier.clone(),
                policies: Vec::new(),
                data_type: v.data_type.clone(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(GetParameterHistoryResponse {
        parameters,
        next_token,
    })
}
