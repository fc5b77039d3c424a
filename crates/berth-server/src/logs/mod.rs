//! CloudWatch Logs on the endpoint (AWS JSON 1.1, `Logs_20140328`): log groups, streams and
//! events over an append-only segment store; and the ingest the agents' `awslogs` driver
//! ships through the gateway.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use std::path::Path;

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
// SKELETON: the CloudWatch Logs work fills this in.
#[derive(Debug, Default)]
pub struct LogStore {}

impl LogStore {
    /// Opens the store under `data_dir` (in memory without one).
    pub fn open(_data_dir: Option<&Path>) -> std::io::Result<LogStore> {
        Ok(LogStore {})
    }

    /// Makes sure `stream` exists in `group`; creates the group too when `create_group`.
    /// `ResourceNotFoundException` when the group does not exist and may not be created.
    pub fn ensure_stream(
        &self,
        _group: &str,
        _stream: &str,
        _create_group: bool,
    ) -> Result<(), ApiError> {
        Err(ApiError::server("log store not built yet"))
    }

    /// Appends `events` (ordered by position) to `stream` of `group`, skipping those at or
    /// before the stream's position; durable when it returns.
    pub fn append_sourced(
        &self,
        _group: &str,
        _stream: &str,
        _events: &[SourcedEvent],
    ) -> Result<AppendOutcome, ApiError> {
        Err(ApiError::server("log store not built yet"))
    }

    /// The position of the last event an agent appended to `stream` of `group`.
    pub fn source_position(&self, _group: &str, _stream: &str) -> Result<Option<u64>, ApiError> {
        Ok(None)
    }
}

/// Runs CloudWatch Logs operation `op` on the JSON `body`; returns the JSON answer.
pub async fn dispatch(_ctx: Ctx, op: &str, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::new(
        "UnknownOperationException",
        format!("'{op}' is not an operation of Logs_20140328."),
    ))
}

/// Starts the background work of the log store (retention).
pub fn spawn(_app: std::sync::Arc<crate::app::App>) {}
