//! What agents send the server besides task state: their containers' output for the
//! `awslogs` log driver, and their tasks' resource use. Shared by `berth-server` and
//! `berth-agent` so both sides read and write the same shapes.
//!
//! # Logs
//!
//! `POST /v1/agent/logs` with a [`LogBatch`]: events of one container of a task on the
//! agent's instance, in order. The server finds the log group and stream from the task's
//! definition (`awslogs-group`, `awslogs-stream-prefix`), so an agent can write only where
//! its tasks' definitions say. Each event carries its **position** in the container's
//! output, strictly increasing: the server keeps the last one stored per stream and skips
//! events at or before it, so an agent that ships a batch again (it restarted, or lost the
//! answer) stores nothing twice. A batch without events opens the stream (creating the group
//! when `awslogs-create-group` is `true`) and answers the position to resume after.
//!
//! # Usage
//!
//! `POST /v1/agent/stats` with a [`UsageReport`]: each running task's CPU and memory use
//! over the agent's last sampling interval.

pub mod awslogs;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Path of log shipping: `POST` with a [`LogBatch`]; answered with a [`LogBatchAnswer`].
pub const LOGS_PATH: &str = "/v1/agent/logs";
/// Path of usage reports: `POST` with a [`UsageReport`]; answered with `{}`.
pub const STATS_PATH: &str = "/v1/agent/stats";

/// Largest total message size of one batch, in bytes (CloudWatch's PutLogEvents limit counts
/// 26 bytes per event on top of its message).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes CloudWatch Logs counts per event besides its message.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Largest message of one event, in bytes (CloudWatch Logs' limit); longer ones are cut.
pub const MAX_EVENT_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD_BYTES;

/// Events of one container, to store in its awslogs stream.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatch {
    pub cluster: String,
    pub container_instance: String,
    /// The task's ARN.
    pub task: String,
    /// The container's name in the task definition.
    pub container: String,
    /// The container's runtime id: the stream name when the definition sets no
    /// `awslogs-stream-prefix` (as Docker's awslogs driver names it).
    pub runtime_id: String,
    #[serde(default)]
    pub events: Vec<ShippedEvent>,
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippedEvent {
    /// Its place in the container's output (see the module's documentation).
    pub position: u64,
    /// When the container wrote it, in milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// What the server did with a [`LogBatch`].
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatchAnswer {
    pub log_group_name: String,
    pub log_stream_name: String,
    /// The position of the last event the stream holds from the agent, if any.
    pub position: Option<u64>,
    /// Events stored.
    pub accepted: usize,
    /// Events already stored by an earlier batch.
    pub skipped: usize,
}

/// The resource use of an instance's running tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub cluster: String,
    pub container_instance: String,
    pub tasks: Vec<TaskUsage>,
}

/// One task's use over the last sampling interval: its containers' sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskUsage {
    /// The task's ARN.
    pub task: String,
    /// CPU in use, in ECS CPU units (1,024 per core), averaged over the interval.
    pub cpu_units: f64,
    /// Memory in use, in MiB (without the page cache).
    pub memory_mib: f64,
    /// Bytes received and sent over the network per second, over the interval.
    #[serde(default)]
    pub network_rx_bytes_per_second: f64,
    #[serde(default)]
    pub network_tx_bytes_per_second: f64,
    /// Bytes read from and written to block devices per second, over the interval.
    #[serde(default)]
    pub storage_read_bytes_per_second: f64,
    #[serde(default)]
    pub storage_write_bytes_per_second: f64,
}

/// The position of the `ordinal`-th line (from 0) written at `timestamp_ns` nanoseconds
/// since the epoch: distinct lines of one container get distinct, increasing positions, and
/// reading the output again gives each line the same one.
pub fn position(timestamp_ns: u64, ordinal: u32) -> u64 {
    timestamp_ns
        .saturating_mul(POSITIONS_PER_NANOSECOND)
        .saturating_add(u64::from(ordinal.min(POSITIONS_PER_NANOSECOND as u32 - 1)))
}

/// Lines one nanosecond can tell apart (Docker stamps lines in nanoseconds; more than this
/// many in one are not told apart). Positions last until the year 2116.
const POSITIONS_PER_NANOSECOND: u64 = 4;

/// The timestamp, in nanoseconds since the epoch, a position was made from.
pub fn position_timestamp_ns(position: u64) -> u64 {
    position / POSITIONS_PER_NANOSECOND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_lines_by_time_then_by_ordinal() {
        let now = 1_780_000_000_123_456_789u64;
        assert!(position(now, 0) < position(now, 1));
        assert!(position(now, 3) < position(now + 1, 0));
        assert_eq!(position(now, 9), position(now, 3));
        assert_eq!(position_timestamp_ns(position(now, 3)), now);
        // Beyond the year 2116 the position saturates rather than wraps.
        assert_eq!(position(u64::MAX / 2, 0), u64::MAX);
    }

    #[test]
    fn a_batch_reads_back_as_written() {
        let batch = LogBatch {
            cluster: "default".into(),
            container_instance: "i-1".into(),
            task: "arn:aws:ecs:us-east-1:000000000000:task/default/abc".into(),
            container: "web".into(),
            runtime_id: "f00".into(),
            events: vec![ShippedEvent {
                position: 42,
                timestamp: 1,
                message: "hello".into(),
            }],
        };
        let text = serde_json::to_string(&batch).expect("encodes");
        assert!(text.contains("\"runtimeId\":\"f00\""), "{text}");
        assert_eq!(
            serde_json::from_str::<LogBatch>(&text).expect("decodes"),
            batch
        );
    }
}
