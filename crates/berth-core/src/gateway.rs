//! The agent gateway protocol: what the server streams to each agent (its desired tasks) and
//! what agents report back through SubmitTaskStateChange. Shared by `berth-server` and
//! `berth-agent` so both sides read and write the same shapes.

use crate::model::common::Timestamp;
use crate::model::task::{ContainerStateChange, Task};
use crate::model::task_definition::TaskDefinition;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Path of the desired-state stream: `GET` with query `cluster`, `containerInstance`, `since`.
pub const DESIRED_PATH: &str = "/v1/agent/desired";
/// Path of the heartbeat: `POST` with a [`Heartbeat`] body.
pub const HEARTBEAT_PATH: &str = "/v1/agent/heartbeat";

/// One task assigned to an instance, with the task definition it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task: Task,
    pub task_definition: TaskDefinition,
}

/// One line of the desired-state stream: every task of the instance that is not yet STOPPED,
/// as of store revision `revision`. Each line replaces the previous one (level-triggered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    pub revision: u64,
    pub tasks: Vec<AssignedTask>,
}

/// Body of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub cluster: String,
    pub container_instance: String,
}

/// Input of SubmitTaskStateChange, as agents send it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTaskStateChange {
    pub cluster: Option<String>,
    pub task: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub containers: Option<Vec<ContainerStateChange>>,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
}

/// Input of SubmitContainerStateChange.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitContainerStateChange {
    pub cluster: Option<String>,
    pub task: Option<String>,
    pub container_name: Option<String>,
    pub runtime_id: Option<String>,
    pub status: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub network_bindings: Option<Vec<crate::model::task::NetworkBinding>>,
}
