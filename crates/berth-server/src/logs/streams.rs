//! Log streams: CreateLogStream, DeleteLogStream and DescribeLogStreams.

use super::groups::Empty;
use super::{
    authorize, blocking, decode_token, encode_token, io_error, limit_of, now_ms, resolve_group,
    stream_arn, validate_group_name, validate_stream_name,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// The input of CreateLogStream and DeleteLogStream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRequest {
    log_group_name: String,
    log_stream_name: String,
}

/// CreateLogStream: creates an empty stream in an existing group.
pub async fn create_log_stream(ctx: Ctx, input: StreamRequest) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    validate_stream_name(&input.log_stream_name)?;
    let arn = stream_arn(&ctx, &input.log_group_name, &input.log_stream_name);
    authorize(&ctx, "CreateLogStream", &arn, &Vec::new())?;
    blocking(&ctx, move |logs| {
        logs.create_stream(&input.log_group_name, &input.log_stream_name, now_ms())?;
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

/// DeleteLogStream: deletes the stream and its events.
pub async fn delete_log_stream(ctx: Ctx, input: StreamRequest) -> Result<Empty, ApiError> {
    validate_group_name(&input.log_group_name)?;
    validate_stream_name(&input.log_stream_name)?;
    let arn = stream_arn(&ctx, &input.log_group_name, &input.log_stream_name);
    authorize(&ctx, "DeleteLogStream", &arn, &Vec::new())?;
    blocking(&ctx, move |logs| {
        Ok(logs.delete_stream(&input.log_group_name, &input.log_stream_name)?)
    })
    .await?;
    Ok(Empty {})
}

/// The input of DescribeLogStreams.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsRequest {
    #[serde(default)]
    log_group_name: Option<String>,
    #[serde(default)]
    log_group_identifier: Option<String>,
    #[serde(default)]
    log_stream_name_prefix: Option<String>,
    #[serde(default)]
    order_by: Option<String>,
    #[serde(default)]
    descending: Option<bool>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// One stream as DescribeLogStreams shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    log_stream_name: String,
    creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_ingestion_time: Option<i64>,
    upload_sequence_token: String,
    arn: String,
    stored_bytes: u64,
}

/// The answer of DescribeLogStreams.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    log_streams: Vec<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DescribeLogStreams: the group's streams ordered by name (optionally filtered by a name
/// prefix) or by last event time (no prefix allowed then), ascending unless `descending`,
/// at most `limit` (50) a page.
pub async fn describe_log_streams(
    ctx: Ctx,
    input: DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, ApiError> {
    let group = resolve_group(&ctx, input.log_group_name, input.log_group_identifier)?;
    let by_time = match input.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )))
        }
    };
    if let Some(prefix) = &input.log_stream_name_prefix {
        if by_time {
            return Err(ApiError::invalid_parameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        validate_stream_name(prefix)?;
    }
    let limit = limit_of(input.limit, 50)?;
    let offset: usize = match input.next_token.as_deref() {
        None => 0,
        Some(token) => decode_token(token)?
            .parse()
            .map_err(|_| ApiError::invalid_parameter("The specified nextToken is invalid."))?,
    };
    let arn = super::group_resource(&ctx, &group);
    authorize(&ctx, "DescribeLogStreams", &arn, &Vec::new())?;
    let prefix = input.log_stream_name_prefix.unwrap_or_default();
    let descending = input.descending.unwrap_or(false);
    let group_name = group.clone();
    let mut infos = blocking(&ctx, move |logs| {
        let mut out = Vec::new();
        for stream in logs.group(&group_name)?.streams().map_err(io_error)? {
            if stream.name.starts_with(&prefix) {
                out.push(stream.info().map_err(io_error)?);
            }
        }
        Ok(out)
    })
    .await?;
    if by_time {
        infos.sort_by(|a, b| {
            (a.last_event_timestamp.unwrap_or(0), &a.name)
                .cmp(&(b.last_event_timestamp.unwrap_or(0), &b.name))
        });
    }
    if descending {
        infos.reverse();
    }
    let more = infos.len() > offset.saturating_add(limit);
    let log_streams = infos
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|info| LogStream {
            arn: stream_arn(&ctx, &group, &info.name),
            upload_sequence_token: format!("{:056}", info.next_seq),
            log_stream_name: info.name,
            creation_time: info.creation_time,
            first_event_timestamp: info.first_event_timestamp,
            last_event_timestamp: info.last_event_timestamp,
            last_ingestion_time: info.last_ingestion_time,
            stored_bytes: info.stored_bytes,
        })
        .collect();
    Ok(DescribeLogStreamsResponse {
        log_streams,
        next_token: more.then(|| encode_token(&(offset + limit).to_string())),
    })
}
