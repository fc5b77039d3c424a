//! The agent gateway protocol: what the server streams to each agent (its desired tasks) and
//! what agents report back through SubmitTaskStateChange. Shared by `berth-server` and
//! `berth-agent` so both sides read and write the same shapes.
//!
//! # The desired-state stream
//!
//! `GET /v1/agent/desired?cluster=NAME&containerInstance=ID&protocol=2[&since=REVISION]`
//! answers `application/x-ndjson`: one [`DesiredUpdate`] per line, for as long as the
//! connection lasts.
//!
//! - `protocol` is [`STREAM_PROTOCOL`], the version of the line format the agent reads. A
//!   server answers only agents that name its own version; any other (an agent from before
//!   versions were named sends none) gets `InvalidParameterException` saying which to run, so
//!   a server and its agents of different versions fail loudly rather than misread lines.
//! - `assigned` on every line lists every task of the instance that is not yet STOPPED, as of
//!   store revision `revision`: a task no longer listed is no longer the agent's.
//! - `tasks` holds the tasks the agent does not know in their current form: on the first line
//!   of a connection without `since`, all of them; after that (and on a connection that
//!   resumes with `since`, the revision of the last line the agent applied), only those placed,
//!   asked to stop or stopped since. A task's own progress reports change nothing the agent
//!   acts on, so they send no line.
//! - `taskDefinition` comes with a task only when the agent does not already hold that task
//!   definition (none of the tasks it was told about uses it).
//! - A line is sent when the instance's tasks change, and at least every 15 s as a keepalive.
//! - The stream ends when the instance is deregistered.
//!
//! [`DesiredTracker`] folds the lines back into the full [`DesiredState`] the task engine
//! converges to.

use crate::model::common::Timestamp;
use crate::model::task::{ContainerStateChange, Task};
use crate::model::task_definition::TaskDefinition;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The version of the desired-state line format: agents name it in `protocol`.
pub const STREAM_PROTOCOL: u32 = 2;

/// Path of the desired-state stream: `GET` with query `cluster`, `containerInstance`,
/// `protocol`, `since`.
pub const DESIRED_PATH: &str = "/v1/agent/desired";
/// Path of scale-in protection asked by a task through its metadata endpoint: `POST` with
/// `cluster`, `containerInstance`, `task` and, to change it, `protectionEnabled` and
/// `expiresInMinutes`; answered as UpdateTaskProtection (GetTaskProtection) answers.
pub const TASK_PROTECTION_PATH: &str = "/v1/agent/task-protection";
/// Path of a task's role credentials, asked by its agent for the task's containers: `POST`
/// with a [`AgentTaskRequest`]; answered with [`TaskCredentials`].
pub const TASK_CREDENTIALS_PATH: &str = "/v1/agent/task-credentials";
/// Path of a task's secrets, asked by its agent as the task starts: `POST` with an
/// [`AgentTaskRequest`]; answered with [`TaskSecrets`]. The values are resolved for the asking
/// agent only, and stored nowhere.
pub const TASK_SECRETS_PATH: &str = "/v1/agent/task-secrets";
/// Path of the vault's master key rotation, for the account's root user (`berth
/// rotate-vault-key`): `POST` with an empty body; answered with a [`VaultRotation`].
pub const VAULT_ROTATE_PATH: &str = "/v1/admin/vault/rotate-key";
/// Path of the heartbeat: `POST` with a [`Heartbeat`] body.
pub const HEARTBEAT_PATH: &str = "/v1/agent/heartbeat";

/// One task assigned to an instance, with the task definition it runs. Shared with the
/// tracker that folded it: each line's whole desired state costs a count per task, not a copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task: Arc<Task>,
    pub task_definition: Arc<TaskDefinition>,
}

/// Every task of an instance that is not yet STOPPED, as of store revision `revision`: what
/// the task engine converges to (level-triggered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    pub revision: u64,
    pub tasks: Vec<AssignedTask>,
}

/// A task on a line of the stream, with its task definition when the agent lacks it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedTask {
    pub task: Task,
    pub task_definition: Option<TaskDefinition>,
}

/// One line of the desired-state stream (see the module documentation).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredUpdate {
    pub revision: u64,
    /// ARNs of every task of the instance not yet STOPPED.
    pub assigned: Vec<String>,
    /// Tasks new to the agent or changed since the last line.
    #[serde(default)]
    pub tasks: Vec<UpdatedTask>,
    /// Commands to run in the instance's containers (exec sessions whose client is ready):
    /// each is sent once, and the agent connects back to run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<crate::exec::ExecRequest>,
}

impl DesiredUpdate {
    /// The line that tells an agent that knows nothing all of `state`.
    pub fn full(state: &DesiredState) -> DesiredUpdate {
        let mut sent: HashSet<&str> = HashSet::new();
        DesiredUpdate {
            revision: state.revision,
            assigned: state
                .tasks
                .iter()
                .filter_map(|a| a.task.task_arn.clone())
                .collect(),
            tasks: state
                .tasks
                .iter()
                .map(|a| UpdatedTask {
                    task: Task::clone(&a.task),
                    task_definition: sent
                        .insert(
                            a.task_definition
                                .task_definition_arn
                                .as_deref()
                                .unwrap_or(""),
                        )
                        .then(|| TaskDefinition::clone(&a.task_definition)),
                })
                .collect(),
            exec: Vec::new(),
        }
    }
}

/// A line named a task, or a task definition, that the agent was never sent: it must
/// reconnect without `since` to get everything again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the desired-state stream named {0} without sending it")]
pub struct UnknownTask(pub String);

/// The agent's side of the stream: what it was told so far, folded into a [`DesiredState`].
#[derive(Debug, Clone, Default)]
pub struct DesiredTracker {
    tasks: BTreeMap<String, Arc<Task>>,
    definitions: HashMap<String, Arc<TaskDefinition>>,
}

impl DesiredTracker {
    /// Applies one line; the result is the instance's whole desired state as of the line.
    pub fn apply(&mut self, update: DesiredUpdate) -> Result<DesiredState, UnknownTask> {
        for UpdatedTask {
            task,
            task_definition,
        } in update.tasks
        {
            if let Some(td) = task_definition {
                let arn = td.task_definition_arn.clone().unwrap_or_default();
                self.definitions.insert(arn, Arc::new(td));
            }
            if let Some(arn) = task.task_arn.clone() {
                self.tasks.insert(arn, Arc::new(task));
            }
        }
        let assigned: HashSet<&str> = update.assigned.iter().map(String::as_str).collect();
        self.tasks.retain(|arn, _| assigned.contains(arn.as_str()));
        let used: HashSet<&str> = self
            .tasks
            .values()
            .filter_map(|t| t.task_definition_arn.as_deref())
            .collect();
        self.definitions
            .retain(|arn, _| used.contains(arn.as_str()));
        let mut tasks = Vec::with_capacity(update.assigned.len());
        for arn in &update.assigned {
            let task = self
                .tasks
                .get(arn)
                .ok_or_else(|| UnknownTask(format!("task {arn}")))?;
            let td_arn = task.task_definition_arn.as_deref().unwrap_or_default();
            let definition = self
                .definitions
                .get(td_arn)
                .ok_or_else(|| UnknownTask(format!("task definition {td_arn}")))?;
            tasks.push(AssignedTask {
                task: Arc::clone(task),
                task_definition: Arc::clone(definition),
            });
        }
        Ok(DesiredState {
            revision: update.revision,
            tasks,
        })
    }

    /// Forgets everything (before a connection without `since`).
    pub fn reset(&mut self) {
        *self = DesiredTracker::default();
    }
}

/// Body of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub cluster: String,
    pub container_instance: String,
}

/// Which task an agent asks for (its role credentials, its secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTaskRequest {
    pub cluster: String,
    pub container_instance: String,
    /// The task's ARN.
    pub task: String,
}

/// What a master key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultRotation {
    /// Id of the new master key (not the key).
    pub key_id: String,
    /// Id of the key it replaced, now forgotten.
    pub previous_key_id: String,
    /// Secret and parameter records whose data keys were re-wrapped.
    pub rewrapped: usize,
}

/// Temporary credentials of a task's role, in the shape ECS's credentials endpoint answers
/// (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), which the AWS SDKs read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskCredentials {
    pub role_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: String,
    /// RFC 3339 (`2026-12-01T06:00:00Z`).
    pub expiration: String,
}

/// The resolved secrets of a task's containers (`secrets`, `logConfiguration.secretOptions`,
/// `repositoryCredentials`). Never shown: its `Debug` names containers and variables only.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSecrets {
    pub containers: Vec<ContainerSecrets>,
}

/// The resolved secrets of one container.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecrets {
    pub name: String,
    /// `secrets`: environment variables, by name.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `logConfiguration.secretOptions`: log driver options, by name.
    #[serde(default)]
    pub log_options: BTreeMap<String, String>,
    /// `repositoryCredentials`: the user name and password for its image's registry.
    pub registry: Option<(String, String)>,
}

impl std::fmt::Debug for TaskSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.containers).finish()
    }
}

impl std::fmt::Debug for ContainerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerSecrets")
            .field("name", &self.name)
            .field("environment", &self.environment.keys().collect::<Vec<_>>())
            .field("log_options", &self.log_options.keys().collect::<Vec<_>>())
            .field("registry", &self.registry.as_ref().map(|(user, _)| user))
            .finish()
    }
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
    /// Berth's addition: the awsvpc interface the agent set up for the task.
    pub network_interface: Option<crate::awsvpc::InterfaceReport>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;

    fn task(id: &str, td: &str, desired: TaskStatus) -> Task {
        Task {
            task_arn: Some(format!("arn:task/{id}")),
            task_definition_arn: Some(format!("arn:td/{td}")),
            desired_status: Some(desired),
            ..Task::default()
        }
    }

    fn definition(td: &str) -> TaskDefinition {
        TaskDefinition {
            task_definition_arn: Some(format!("arn:td/{td}")),
            ..TaskDefinition::default()
        }
    }

    fn line(revision: u64, assigned: &[&str], tasks: Vec<UpdatedTask>) -> DesiredUpdate {
        DesiredUpdate {
            revision,
            assigned: assigned.iter().map(|id| format!("arn:task/{id}")).collect(),
            tasks,
            exec: Vec::new(),
        }
    }

    #[test]
    fn the_tracker_folds_changes_into_the_whole_desired_state() {
        let mut tracker = DesiredTracker::default();
        let first = line(
            3,
            &["a", "b"],
            vec![
                UpdatedTask {
                    task: task("a", "web:1", TaskStatus::Running),
                    task_definition: Some(definition("web:1")),
                },
                UpdatedTask {
                    task: task("b", "web:1", TaskStatus::Running),
                    task_definition: None,
                },
            ],
        );
        let state = tracker.apply(first).expect("applies");
        assert_eq!(state.revision, 3);
        assert_eq!(state.tasks.len(), 2);
        assert_eq!(
            state.tasks[1].task_definition,
            Arc::new(definition("web:1"))
        );

        // b is asked to stop; a is gone; nothing resends the task definition.
        let second = line(
            5,
            &["b"],
            vec![UpdatedTask {
                task: task("b", "web:1", TaskStatus::Stopped),
                task_definition: None,
            }],
        );
        let state = tracker.apply(second).expect("applies");
        assert_eq!(state.tasks.len(), 1);
        assert_eq!(
            state.tasks[0].task.desired_status,
            Some(TaskStatus::Stopped)
        );

        // A keepalive changes nothing.
        let state = tracker.apply(line(6, &["b"], Vec::new())).expect("applies");
        assert_eq!(state.tasks.len(), 1);
    }

    #[test]
    fn a_line_naming_a_task_never_sent_asks_for_everything_again() {
        let mut tracker = DesiredTracker::default();
        let err = tracker
            .apply(line(1, &["x"], Vec::new()))
            .expect_err("unknown task");
        assert!(err.to_string().contains("arn:task/x"));
        let missing_definition = line(
            2,
            &["y"],
            vec![UpdatedTask {
                task: task("y", "db:2", TaskStatus::Running),
                task_definition: None,
            }],
        );
        assert!(tracker.apply(missing_definition).is_err());
    }

    #[test]
    fn a_full_line_carries_each_task_definition_once() {
        let state = DesiredState {
            revision: 9,
            tasks: ["a", "b"]
                .iter()
                .map(|id| AssignedTask {
                    task: Arc::new(task(id, "web:1", TaskStatus::Running)),
                    task_definition: Arc::new(definition("web:1")),
                })
                .collect(),
        };
        let update = DesiredUpdate::full(&state);
        let sent = update
            .tasks
            .iter()
            .filter(|t| t.task_definition.is_some())
            .count();
        assert_eq!(sent, 1);
        assert_eq!(
            DesiredTracker::default().apply(update).expect("applies"),
            state
        );
    }
}
