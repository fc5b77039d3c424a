//! Labels on parameter versions: LabelParameterVersion and UnlabelParameterVersion. A
//! label names one version at a time (it moves when put on another) and can stand for the
//! version in a `name:label` selector.

use super::{authorized, error, parameter_key, parameter_not_found, Parameter};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// How many labels one version may carry.
const MAX_LABELS: usize = 10;

/// LabelParameterVersion's and UnlabelParameterVersion's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelRequest {
    pub name: String,
    pub parameter_version: Option<i64>,
    pub labels: Vec<String>,
}

/// LabelParameterVersion's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelParameterVersionResponse {
    pub invalid_labels: Vec<String>,
    pub parameter_version: i64,
}

/// UnlabelParameterVersion's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlabelParameterVersionResponse {
    pub removed_labels: Vec<String>,
    pub invalid_labels: Vec<String>,
}

/// A label: 1 to 100 of letters, digits and `_.-`, not only digits, not beginning with
/// `aws` or `ssm`.
fn valid_label(label: &str) -> bool {
    let lower = label.to_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !label.chars().all(|c| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

fn check_labels(labels: &[String]) -> Result<(), ApiError> {
    if labels.is_empty() || labels.len() > MAX_LABELS {
        return Err(error(
            "ValidationException",
            format!("Labels must list 1 to {MAX_LABELS} labels."),
        ));
    }
    Ok(())
}

/// LabelParameterVersion: puts labels on a version (the latest by default), moving each
/// from the version that had it. Malformed labels come back in InvalidLabels.
pub async fn label(
    ctx: Ctx,
    input: LabelRequest,
) -> Result<LabelParameterVersionResponse, ApiError> {
    check_labels(&input.labels)?;
    let found = authorized(&ctx, "LabelParameterVersion", &input.name)?
        .ok_or_else(|| parameter_not_found(&input.name))?;
    let (valid, invalid): (Vec<String>, Vec<String>) =
        input.labels.iter().cloned().partition(|l| valid_label(l));
    let mut labelled = 0;
    ctx.update::<Parameter, _>(&parameter_key(&found.value.name), |current| {
        let mut parameter = current.ok_or_else(|| parameter_not_found(&input.name))?;
        let target = match input.parameter_version {
            Some(v) => v,
            None => parameter.latest().map_or(0, |v| v.version),
        };
        let index = parameter
            .versions
            .iter()
            .position(|v| v.version == target)
            .ok_or_else(|| {
                error(
                    "ParameterVersionNotFound",
                    format!(
                        "Systems Manager could not find version {target} of {}.",
                        parameter.name
                    ),
                )
            })?;
        for version in &mut parameter.versions {
            version.labels.retain(|l| !valid.contains(l));
        }
        let labels = &mut parameter.versions[index].labels;
        labels.extend(valid.iter().cloned());
        if labels.len() > MAX_LABELS {
            return Err(error(
                "ParameterVersionLabelLimitExceeded",
                format!("A parameter version can have at most {MAX_LABELS} labels."),
            ));
        }
        labelled = target;
        Ok(parameter)
    })
    .await?;
    Ok(LabelParameterVersionResponse {
        invalid_labels: invalid,
        parameter_version: labelled,
    })
}

/// UnlabelParameterVersion: removes labels from a version; labels it does not carry come
/// back in InvalidLabels.
pub async fn unlabel(
    ctx: Ctx,
    input: LabelRequest,
) -> Result<UnlabelParameterVersionResponse, ApiError> {
    check_labels(&input.labels)?;
    let target = input
        .parameter_version
        .ok_or_else(|| error("ValidationException", "ParameterVersion is required."))?;
    let found = authorized(&ctx, "UnlabelParameterVersion", &input.name)?
        .ok_or_else(|| parameter_not_found(&input.name))?;
    let mut answer = UnlabelParameterVersionResponse {
        removed_labels: Vec::new(),
        invalid_labels: Vec::new(),
    };
    ctx.update::<Parameter, _>(&parameter_key(&found.value.name), |current| {
        let mut parameter = current.ok_or_else(|| parameter_not_found(&input.name))?;
        let name = parameter.name.clone();
        let version = parameter
            .versions
            .iter_mut()
            .find(|v| v.version == target)
            .ok_or_else(|| {
                error(
                    "ParameterVersionNotFound",
                    format!("Systems Manager could not find version {target} of {name}."),
                )
            })?;
        let (removed, invalid) = input
            .labels
            .iter()
            .cloned()
            .partition(|l| version.labels.contains(l));
        version.labels.retain(|l| !input.labels.contains(l));
        answer.removed_labels = removed;
        answer.invalid_labels = invalid;
        Ok(parameter)
    })
    .await?;
    Ok(answer)
}
