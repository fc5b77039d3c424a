//! CloudWatch Logs on the endpoint (AWS JSON 1.1, `Logs_20140328`): log groups, streams and
//! events over an append-only segment store; and the ingest the agents' `awslogs` driver
//! ships through the gateway.

mod events;
mod filter;
mod groups;
mod streams;
mod tags;

use crate::authz::Keys;
use crate::dispatch::{call, Ctx};
use crate::error::ApiError;
use berth_store::logs::{self as store, LogError};
use std::path::Path;
use std::sync::Arc;

/// One event as an agent ships it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedEvent {
    /// Its place in the container's output: strictly increasing along a stream.
    pub position: u64,
    /// When it was written, in milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// What an agent's append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events stored.
    pub accepted: usize,
    /// Events at or before the stream's position, already stored by an earlier append.
    pub skipped: usize,
    /// The stream's position after the append.
    pub position: Option<u64>,
}

/// The log groups, streams and events of the server.
#[derive(Debug)]
pub struct LogStore {
    inner: store::LogStore,
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::GroupNotFound { .. } | LogError::StreamNotFound { .. } => {
                ApiError::new("ResourceNotFoundException", e.to_string())
            }
            LogError::GroupExists { .. } | LogError::StreamExists { .. } => {
                ApiError::new("ResourceAlreadyExistsException", e.to_string())
            }
            LogError::Io(io) => {
                tracing::error!(error = %io, "log store failure");
                ApiError::server(format!(
                    "The log store could not complete the request: {io}"
                ))
            }
        }
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LogStore {
    /// Opens the store under `data_dir` (in memory without one).
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<LogStore> {
        Ok(LogStore {
            inner: store::LogStore::open(data_dir)?,
        })
    }

    /// The segment store underneath.
    pub fn store(&self) -> &store::LogStore {
        &self.inner
    }

    /// Makes sure `stream` exists in `group`; creates the group too when `create_group`.
    /// `ResourceNotFoundException` when the group does not exist and may not be created.
    pub fn ensure_stream(
        &self,
        group: &str,
        stream: &str,
        create_group: bool,
    ) -> Result<(), ApiError> {
        validate_group_name(group)?;
        validate_stream_name(stream)?;
        self.inner
            .ensure_stream(group, stream, create_group, now_ms())?;
        Ok(())
    }

    /// Appends `events` (ordered by position) to `stream` of `group`, skipping those at or
    /// before the stream's position; durable when it returns.
    pub fn append_sourced(
        &self,
        group: &str,
        stream: &str,
        events: &[SourcedEvent],
    ) -> Result<AppendOutcome, ApiError> {
        let s = self.inner.stream(group, stream)?;
        let batch: Vec<(u64, i64, &str)> = events
            .iter()
            .map(|e| (e.position, e.timestamp, e.message.as_str()))
            .collect();
        let (accepted, skipped, position) = s.append_sourced(&batch, now_ms())?;
        Ok(AppendOutcome {
            accepted,
            skipped,
            position,
        })
    }

    /// The position of the last event an agent appended to `stream` of `group`.
    pub fn source_position(&self, group: &str, stream: &str) -> Result<Option<u64>, ApiError> {
        Ok(self
            .inner
            .stream(group, stream)?
            .info()
            .map_err(io_error)?
            .position)
    }
}

/// A failure of the log store's files: a fault of the server.
fn io_error(e: std::io::Error) -> ApiError {
    LogError::Io(e).into()
}

/// Runs `work` on the log store off the async threads (the store does blocking file I/O).
async fn blocking<T, F>(ctx: &Ctx, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&store::LogStore) -> Result<T, ApiError> + Send + 'static,
{
    let logs = Arc::clone(&ctx.logs);
    tokio::task::spawn_blocking(move || work(logs.store()))
        .await
        .map_err(|e| ApiError::server(format!("log store task: {e}")))?
}

/// Runs CloudWatch Logs operation `op` on the JSON `body`; returns the JSON answer.
pub async fn dispatch(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match op {
        "CreateLogGroup" => call(ctx, body, groups::create_log_group).await,
        "DeleteLogGroup" => call(ctx, body, groups::delete_log_group).await,
        "DescribeLogGroups" => call(ctx, body, groups::describe_log_groups).await,
        "PutRetentionPolicy" => call(ctx, body, groups::put_retention_policy).await,
        "DeleteRetentionPolicy" => call(ctx, body, groups::delete_retention_policy).await,

        "CreateLogStream" => call(ctx, body, streams::create_log_stream).await,
        "DeleteLogStream" => call(ctx, body, streams::delete_log_stream).await,
        "DescribeLogStreams" => call(ctx, body, streams::describe_log_streams).await,

        "PutLogEvents" => call(ctx, body, events::put_log_events).await,
        "GetLogEvents" => call(ctx, body, events::get_log_events).await,
        "FilterLogEvents" => call(ctx, body, filter::filter_log_events).await,

        "TagResource" => call(ctx, body, tags::tag_resource).await,
        "UntagResource" => call(ctx, body, tags::untag_resource).await,
        "ListTagsForResource" => call(ctx, body, tags::list_tags_for_resource).await,
        "TagLogGroup" => call(ctx, body, tags::tag_log_group).await,
        "UntagLogGroup" => call(ctx, body, tags::untag_log_group).await,
        "ListTagsLogGroup" => call(ctx, body, tags::list_tags_log_group).await,

        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("'{other}' is not an operation of Logs_20140328 that Berth serves."),
        )),
    }
}

/// How often retention is applied.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the background work of the log store: every minute, whole segments older than
/// their group's retention are deleted.
pub fn spawn(app: Arc<crate::app::App>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_SWEEP);
        loop {
            tick.tick().await;
            let logs = Arc::clone(&app.logs);
            match tokio::task::spawn_blocking(move || logs.store().sweep_retention(now_ms())).await
            {
                Ok(Ok(0)) => {}
                Ok(Ok(freed)) => tracing::info!(freed, "log retention reclaimed bytes"),
                Ok(Err(e)) => tracing::error!(error = %e, "log retention sweep failed"),
                Err(e) => tracing::error!(error = %e, "log retention sweep panicked"),
            }
        }
    });
}

/// Checks `logs:<action>` on `resource` for the caller.
fn authorize(ctx: &Ctx, action: &str, resource: &str, keys: &Keys) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("logs:{action}"),
        resource,
        keys,
        "AccessDeniedException",
    )
}

/// The ARN of log group `group` (as `logGroupArn`; DescribeLogGroups' `arn` adds `:*`).
fn group_arn(ctx: &Ctx, group: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{group}",
        ctx.arns.region, ctx.arns.account_id
    )
}

/// The resource IAM policies see for actions on log group `group`: its ARN with `:*`, the
/// form DescribeLogGroups' `arn` shows and policies name (`log-group:/ecs/app:*`).
fn group_resource(ctx: &Ctx, group: &str) -> String {
    format!("{}:*", group_arn(ctx, group))
}

/// The ARN of stream `stream` of `group`.
fn stream_arn(ctx: &Ctx, group: &str, stream: &str) -> String {
    format!("{}:log-stream:{stream}", group_arn(ctx, group))
}

/// A log group name must be 1 to 512 of `[.\-_/#A-Za-z0-9]`.
fn validate_group_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+ and have length 1 to 512"
        )))
    }
}

/// A log stream name must be 1 to 512 characters without `:` or `*`.
fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    if (1..=512).contains(&name.chars().count()) && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must be 1 to 512 characters without ':' or '*'"
        )))
    }
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an ARN),
/// exactly one of them.
fn resolve_group(
    ctx: &Ctx,
    name: Option<String>,
    identifier: Option<String>,
) -> Result<String, ApiError> {
    let name = match (name, identifier) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "LogGroupName and LogGroupIdentifier are mutually exclusive: give one of them.",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid_parameter(
                "Either logGroupName or logGroupIdentifier must be given.",
            ))
        }
        (Some(name), None) => name,
        (None, Some(id)) if id.starts_with("arn:") => group_of_arn(ctx, &id)?,
        (None, Some(id)) => id,
    };
    validate_group_name(&name)?;
    Ok(name)
}

/// The group name in a log group ARN of this region and account (`...:log-group:NAME`,
/// optionally ending `:*`).
fn group_of_arn(ctx: &Ctx, arn: &str) -> Result<String, ApiError> {
    let prefix = format!(
        "arn:aws:logs:{}:{}:log-group:",
        ctx.arns.region, ctx.arns.account_id
    );
    match arn.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => Ok(rest.strip_suffix(":*").unwrap_or(rest).to_string()),
        _ => Err(ApiError::new(
            "ResourceNotFoundException",
            format!(
                "'{arn}' is not the ARN of a log group of this account and region ({prefix}NAME)."
            ),
        )),
    }
}

/// Opaque page tokens: base64 of an internal cursor.
fn encode_token(cursor: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor)
}

/// The cursor in a token from [`encode_token`].
fn decode_token(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid_parameter("The specified nextToken is invalid."))
}

/// Checks a `limit` against its allowed range; the default when absent.
fn limit_of(limit: Option<i64>, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(max),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

#[cfg(test)]
mod tests;
