//! The `awslogs` log driver. Containers that log with `awslogs` are created with Docker's
//! `json-file` driver, so Docker keeps their output; the agent follows each one's output
//! through the runtime (`ContainerRuntime::logs`, a stream, not a poll of files), makes
//! events of it (`assemble`), buffers them (`buffer`) and ships them in batches to the
//! server, which stores them in the log group and stream the task definition names
//! (`berth_core::telemetry`).
//!
//! - **No loss.** Reading resumes after the last position the server stored: after an agent
//!   restart, a server outage or a container restarted in place, the output is read again
//!   from there, and the server skips what it holds, so nothing is stored twice.
//! - **Modes.** In blocking mode (`mode=blocking`) a full buffer makes reading wait; in
//!   non-blocking mode (ECS's default) events read while the buffer (`max-buffer-size`, 1 MiB
//!   by default) is full are dropped and counted.
//! - **What the container keeps.** The runtime keeps at most [`KEPT_OUTPUT`] of a container's
//!   output (in [`KEPT_FILES`] files); output older than that is gone once the agent has been
//!   away for that much of it.

mod assemble;
mod buffer;
mod follow;

pub use assemble::Assembler;
pub use buffer::Buffer;

use crate::client::{ClientError, ServerClient};
use crate::runtime::ContainerRuntime;
use berth_core::telemetry::awslogs::AwsLogs;
use berth_core::telemetry::{LogBatch, LogBatchAnswer, LOGS_PATH};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The runtime log driver an awslogs container is created with.
pub const RUNTIME_DRIVER: &str = "json-file";
/// The size of each file of output the runtime keeps.
pub const KEPT_FILE_SIZE: &str = "64m";
/// How many such files it keeps.
pub const KEPT_FILES: &str = "4";
/// Output kept per container: [`KEPT_FILES`] × [`KEPT_FILE_SIZE`].
pub const KEPT_OUTPUT: &str = "256 MiB";

/// The driver's options of the runtime for an awslogs container.
pub fn runtime_options() -> std::collections::BTreeMap<String, String> {
    [("max-size", KEPT_FILE_SIZE), ("max-file", KEPT_FILES)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Figures of the driver since the agent started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events the server stored.
    pub events_shipped: AtomicU64,
    /// Message bytes of those events.
    pub bytes_shipped: AtomicU64,
    /// Events dropped: read while the buffer was full (non-blocking mode), or refused by the
    /// server.
    pub events_dropped: AtomicU64,
    /// Containers whose output is followed now.
    pub following: AtomicU64,
}

/// Which container of which task a follower ships for.
#[derive(Debug, Clone)]
pub struct Source {
    pub task_arn: String,
    pub container: String,
    pub runtime_id: String,
}

/// Follows the output of this instance's awslogs containers and ships it.
#[derive(Debug)]
pub struct LogShipper {
    client: ServerClient,
    cluster: String,
    instance_id: String,
    followers: Mutex<HashMap<String, JoinHandle<()>>>,
    pub counters: Counters,
}

impl LogShipper {
    pub fn new(client: ServerClient, cluster: &str, instance_id: &str) -> LogShipper {
        LogShipper {
            client,
            cluster: cluster.to_string(),
            instance_id: instance_id.to_string(),
            followers: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    fn batch(&self, source: &Source) -> LogBatch {
        LogBatch {
            cluster: self.cluster.clone(),
            container_instance: self.instance_id.clone(),
            task: source.task_arn.clone(),
            container: source.container.clone(),
            runtime_id: source.runtime_id.clone(),
            events: Vec::new(),
        }
    }

    /// Opens the container's log stream (creating its group when the options say so); the
    /// position to resume after. Docker's awslogs driver does this as the container starts,
    /// and the container fails to start when it cannot.
    pub async fn open(&self, source: &Source) -> Result<LogBatchAnswer, ClientError> {
        self.client.post(LOGS_PATH, &self.batch(source)).await
    }

    /// Follows the output of `source` (unless it is followed already) until its container
    /// stops for good, shipping it as `options` say.
    pub fn follow(
        self: &Arc<Self>,
        runtime: Arc<dyn ContainerRuntime>,
        source: Source,
        options: AwsLogs,
    ) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        followers.retain(|_, handle| !handle.is_finished());
        if followers.contains_key(&source.runtime_id) {
            return;
        }
        let id = source.runtime_id.clone();
        let shipper = Arc::clone(self);
        let handle = tokio::spawn(async move {
            shipper.counters.following.fetch_add(1, Ordering::Relaxed);
            follow::follow(&shipper, runtime.as_ref(), &source, &options).await;
            shipper.counters.following.fetch_sub(1, Ordering::Relaxed);
        });
        followers.insert(id, handle);
    }

    /// Stops every follower (the agent is stopping; the next run resumes where the server's
    /// positions say).
    pub fn stop_all(&self) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, handle) in followers.drain() {
            handle.abort();
        }
    }
}
