//! Parameter metadata: DescribeParameters. It never shows a value.

use super::history::page_of;
use super::parameters::{under_path, ParameterStringFilter};
use super::{authorize, error, validation, Parameter};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// A legacy `Filters` entry (`Name`, `Type` or `KeyId`; Name matches as a prefix).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParametersFilter {
    pub key: String,
    pub values: Vec<String>,
}

/// DescribeParameters' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeParametersRequest {
    #[serde(default)]
    pub filters: Vec<ParametersFilter>,
    #[serde(default)]
    pub parameter_filters: Vec<ParameterStringFilter>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// One parameter's metadata.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterMetadata {
    pub name: String,
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub last_modified_date: f64,
    pub last_modified_user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    pub version: i64,
    pub tier: String,
    pub policies: Vec<serde_json::Value>,
    pub data_type: String,
}

/// DescribeParameters' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeParametersResponse {
    pub parameters: Vec<ParameterMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Whether `parameter` passes a ParameterStringFilter of DescribeParameters: `Name`
/// (Equals, BeginsWith, Contains), `Path` (OneLevel, Recursive), `Type`, `KeyId`, `Tier`,
/// `DataType` (Equals, BeginsWith) or `tag:KEY` (the tag exists, or has one of the values).
fn passes(parameter: &Parameter, filter: &ParameterStringFilter) -> Result<bool, ApiError> {
    let Some(latest) = parameter.latest() else {
        return Ok(false);
    };
    let values = filter.values.clone().unwrap_or_default();
    let option = filter.option.as_deref();
    let bad_option = || {
        error(
            "InvalidFilterOption",
            format!(
                "The filter option {} is not valid for {}.",
                option.unwrap_or_default(),
                filter.key
            ),
        )
    };
    if let Some(tag) = filter.key.strip_prefix("tag:") {
        if !matches!(option, None | Some("Equals")) {
            return Err(bad_option());
        }
        return Ok(parameter
            .tags
            .iter()
            .any(|t| t.key == tag && (values.is_empty() || values.contains(&t.value))));
    }
    if values.is_empty() {
        return Err(error(
            "InvalidFilterValue",
            format!("The filter {} needs at least one value.", filter.key),
        ));
    }
    if filter.key == "Path" {
        let recursive = match option {
            None | Some("OneLevel") => false,
            Some("Recursive") => true,
            Some(_) => return Err(bad_option()),
        };
        return Ok(values
            .iter()
            .any(|path| under_path(&parameter.name, path, recursive)));
    }
    let field: Option<&str> = match filter.key.as_str() {
        "Name" => Some(&parameter.name),
        "Type" => Some(&latest.kind),
        "KeyId" => latest.key_id.as_deref(),
        "Tier" => Some(&latest.tier),
        "DataType" => Some(&latest.data_type),
        other => {
            return Err(error(
                "InvalidFilterKey",
                format!("The filter key {other} is not valid: use Name, Path, Type, KeyId, Tier, DataType or tag:KEY."),
            ))
        }
    };
    let Some(field) = field else {
        return Ok(false);
    };
    let matches = |v: &String| match option {
        None | Some("Equals") => Ok(field == v),
        Some("BeginsWith") => Ok(field.starts_with(v.as_str())),
        // Names match anywhere as AWS does, ignoring case; a leading slash is not needed.
        Some("Contains") if filter.key == "Name" => {
            Ok(field.to_lowercase().contains(&v.to_lowercase()))
        }
        Some(_) => Err(bad_option()),
    };
    for v in &values {
        if matches(v)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `parameter` passes a legacy `Filters` entry.
fn passes_legacy(parameter: &Parameter, filter: &ParametersFilter) -> Result<bool, ApiError> {
    let Some(latest) = parameter.latest() else {
        return Ok(false);
    };
    Ok(match filter.key.as_str() {
        "Name" => filter
            .values
            .iter()
            .any(|v| parameter.name.starts_with(v.as_str())),
        "Type" => filter.values.contains(&latest.kind),
        "KeyId" => latest
            .key_id
            .as_ref()
            .is_some_and(|k| filter.values.contains(k)),
        other => {
            return Err(error(
                "InvalidFilterKey",
                format!("The filter key {other} is not valid: use Name, Type or KeyId."),
            ))
        }
    })
}

/// DescribeParameters: the parameters' metadata (never their values), filtered by either
/// Filters or ParameterFilters, in name order, at most 50 a page.
pub async fn describe(
    ctx: Ctx,
    input: DescribeParametersRequest,
) -> Result<DescribeParametersResponse, ApiError> {
    if !input.filters.is_empty() && !input.parameter_filters.is_empty() {
        return Err(validation(
            "You can use either Filters or ParameterFilters in a single request, not both.",
        ));
    }
    let page = page_of(input.next_token.as_deref(), input.max_results, 50)?;
    authorize(&ctx, "DescribeParameters", "*", &Vec::new())?;
    let mut selected = Vec::new();
    for parameter in ctx.list::<Parameter>(super::PARAMETERS)? {
        let parameter = parameter.value;
        let mut keep = true;
        for filter in &input.filters {
            keep &= passes_legacy(&parameter, filter)?;
        }
        for filter in &input.parameter_filters {
            keep &= passes(&parameter, filter)?;
        }
        if keep {
            selected.push(parameter);
        }
    }
    let (parameters, next_token) = page.page(selected, |p| p.name.clone());
    Ok(DescribeParametersResponse {
        parameters: parameters
            .iter()
            .filter_map(|p| {
                let v = p.latest()?;
                Some(ParameterMetadata {
                    name: p.name.clone(),
                    arn: p.arn.clone(),
                    kind: v.kind.clone(),
                    key_id: v.key_id.clone(),
                    last_modified_date: v.last_modified_date,
                    last_modified_user: v.last_modified_user.clone(),
                    description: v.description.clone(),
                    allowed_pattern: v.allowed_pattern.clone(),
                    version: v.version,
                    tier: v.tier.clone(),
                    policies: Vec::new(),
                    data_type: v.data_type.clone(),
                })
            })
            .collect(),
        next_token,
    })
}
