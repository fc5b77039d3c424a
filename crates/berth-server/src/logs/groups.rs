//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups, PutRetentionPolicy and
//! DeleteRetentionPolicy.

use super::tags::{tag_keys, validate_tags, Tags};
use super::{
    authorize, blocking, decode_token, encode_token, group_arn, group_resource, io_error, limit_of,
    now_ms, validate_group_name,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// The retention periods, in days, the service allows.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// An empty answer.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// The input of CreateLogGroup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupRequest {
    log_group_name: String,
    /// Accepted for compatibility; Berth does not encrypt with KMS.
    #[serde(default)]
    #[allow(dead_code)]
    kms_key_id: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    log_group_class: Option<String>,
}

/// CreateLogGroup: creates an empty log group, optionally tagged. A group name is unique in
/// the account and region.
pub async fn create_log_group(ctx: Ctx, input: CreateLogGroupRequest) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    if let Some(class) = &input.log_group_class {
        if class != "STANDARD" {
            return Err(ApiError::invalid_parameter(format!(
                "Berth stores every log group as STANDARD; logGroupClass '{class}' is not supported."
            )));
        }
    }
    let tags = input.tags.unwrap_or_default();
    validate_tags(&tags, "InvalidParameterException")?;
    let arn = group_resource(&ctx, &input.log_group_name);
    authorize(&ctx, "CreateLogGroup", &arn, &tag_keys(&tags))?;
    let name = input.log_group_name;
    blocking(&ctx, move |logs| {
        Ok(logs.create_group(&name, now_ms(), tags)?)
    })
    .await?;
    Ok(Empty {})
}

/// The input of DeleteLogGroup and DeleteRetentionPolicy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupNameRequest {
    log_group_name: String,
}

/// DeleteLogGroup: deletes the group, its streams and all their events.
pub async fn delete_log_group(ctx: Ctx, input: LogGroupNameRequest) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    authorize(
        &ctx,
        "DeleteLogGroup",
        &group_resource(&ctx, &input.log_group_name),
        &Vec::new(),
    )?;
    let name = input.log_group_name;
    blocking(&ctx, move |logs| Ok(logs.delete_group(&name)?)).await?;
    Ok(Empty {})
}

/// The input of DescribeLogGroups.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsRequest {
    #[serde(default)]
    log_group_name_prefix: Option<String>,
    #[serde(default)]
    log_group_name_pattern: Option<String>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    log_group_identifiers: Option<Vec<String>>,
}

/// One group as DescribeLogGroups shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    log_group_name: String,
    creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_in_days: Option<i32>,
    metric_filter_count: i32,
    arn: String,
    stored_bytes: u64,
    log_group_class: &'static str,
    log_group_arn: String,
    deletion_protection_enabled: bool,
}

/// The answer of DescribeLogGroups.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    log_groups: Vec<LogGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DescribeLogGroups: the groups in name order, filtered by a name prefix or by a
/// case-insensitive substring (`logGroupNamePattern`), at most `limit` (50) a page.
pub async fn describe_log_groups(
    ctx: Ctx,
    input: DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, ApiError> {
    if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
        return Err(ApiError::invalid_parameter(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    if let Some(prefix) = &input.log_group_name_prefix {
        validate_group_name(prefix)?;
    }
    let limit = limit_of(input.limit, 50)?;
    let after = input.next_token.as_deref().map(decode_token).transpose()?;
    let arn = format!(
        "arn:aws:logs:{}:{}:log-group:*",
        ctx.arns.region, ctx.arns.account_id
    );
    authorize(&ctx, "DescribeLogGroups", &arn, &Vec::new())?;
    let prefix = input.log_group_name_prefix.unwrap_or_default();
    let pattern = input.log_group_name_pattern.map(|p| p.to_lowercase());
    let identifiers = input.log_group_identifiers;
    let infos = blocking(&ctx, move |logs| {
        let mut out = Vec::new();
        for group in logs.groups().map_err(io_error)? {
            let meta = group.meta().map_err(io_error)?;
            let name = &meta.name;
            let wanted = name.starts_with(&prefix)
                && pattern
                    .as_ref()
                    .is_none_or(|p| name.to_lowercase().contains(p))
                && after.as_ref().is_none_or(|a| name > a)
                && identifiers.as_ref().is_none_or(|ids| {
                    ids.iter()
                        .any(|id| id == name || id.ends_with(&format!(":log-group:{name}")))
                });
            if wanted {
                out.push(logs.group_info(&group).map_err(io_error)?);
                if out.len() > limit {
                    break;
                }
            }
        }
        Ok(out)
    })
    .await?;
    let more = infos.len() > limit;
    let log_groups: Vec<LogGroup> = infos
        .into_iter()
        .take(limit)
        .map(|info| {
            let log_group_arn = group_arn(&ctx, &info.meta.name);
            LogGroup {
                arn: format!("{log_group_arn}:*"),
                log_group_arn,
                log_group_name: info.meta.name,
                creation_time: info.meta.creation_time,
                retention_in_days: info.meta.retention_in_days,
                metric_filter_count: 0,
                stored_bytes: info.stored_bytes,
                log_group_class: "STANDARD",
                deletion_protection_enabled: false,
            }
        })
        .collect();
    let next_token = if more {
        log_groups.last().map(|g| encode_token(&g.log_group_name))
    } else {
        None
    };
    Ok(DescribeLogGroupsResponse {
        log_groups,
        next_token,
    })
}

/// The input of PutRetentionPolicy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicyRequest {
    log_group_name: String,
    retention_in_days: i64,
}

/// PutRetentionPolicy: events older than `retentionInDays` (one of [`RETENTION_DAYS`]) are
/// deleted from the group's streams.
pub async fn put_retention_policy(
    ctx: Ctx,
    input: PutRetentionPolicyRequest,
) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    let days = i32::try_from(input.retention_in_days)
        .ok()
        .filter(|d| RETENTION_DAYS.contains(d))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {:?}",
                input.retention_in_days, RETENTION_DAYS
            ))
        })?;
    let arn = group_resource(&ctx, &input.log_group_name);
    authorize(&ctx, "PutRetentionPolicy", &arn, &Vec::new())?;
    let name = input.log_group_name;
    blocking(&ctx, move |logs| Ok(logs.set_retention(&name, Some(days))?)).await?;
    Ok(Empty {})
}

/// DeleteRetentionPolicy: the group's events never expire again.
pub async fn delete_retention_policy(
    ctx: Ctx,
    input: LogGroupNameRequest,
) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    let arn = group_resource(&ctx, &input.log_group_name);
    authorize(&ctx, "DeleteRetentionPolicy", &arn, &Vec::new())?;
    let name = input.log_group_name;
    blocking(&ctx, move |logs| Ok(logs.set_retention(&name, None)?)).await?;
    Ok(Empty {})
}
