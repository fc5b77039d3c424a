//! A task as the state cache keeps it: decoded once when its event is applied, with the facts
//! the indexes and aggregates are built from worked out at the same time.

use berth_core::arn::id_of;
use berth_core::model::task::Task;
use berth_core::resources::TaskResources;
use berth_core::task_state::TaskStatus;
use std::sync::Arc;

/// A key or name the state files things under. Shared, not copied: the persistent maps copy
/// keys whenever they copy a node, and an `Arc<str>` copies as a count.
pub type Key = Arc<str>;

/// A stored task and what the cache derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEntry {
    /// Its store key, `/tasks/{cluster}/{id}`.
    pub key: Key,
    /// The cluster's name.
    pub cluster: Key,
    /// The task as stored.
    pub task: Task,
    /// Revision of its last write.
    pub mod_revision: u64,
    /// Revision of the last write that changed what its agent must do: its placement, its
    /// desired status, its leaving DEACTIVATING (a stop waits for that) or its reaching
    /// STOPPED. Reports of its own progress leave it alone,
    /// so they wake no agent stream.
    pub desired_revision: u64,
    /// Its `lastStatus`.
    pub status: TaskStatus,
    /// Whether its `desiredStatus` is STOPPED.
    pub desired_stopped: bool,
    /// The ARN of the instance it is placed on.
    pub instance_arn: Option<Key>,
    /// What it holds on that instance while it is not STOPPED (`None` when its task
    /// definition is not stored).
    pub resources: Option<TaskResources>,
}

impl TaskEntry {
    /// The entry of `task` stored at `key` at `mod_revision`, holding `resources`; `previous` is the entry it
    /// replaces, whose `desired_revision` carries over when nothing its agent acts on changed.
    pub fn new(
        key: &Key,
        task: Task,
        mod_revision: u64,
        resources: Option<TaskResources>,
        previous: Option<&TaskEntry>,
    ) -> TaskEntry {
        let cluster = key
            .strip_prefix(berth_store::keys::TASKS)
            .and_then(|rest| rest.split_once('/'))
            .map_or_else(|| Key::from(""), |(cluster, _)| Key::from(cluster));
        let mut entry = TaskEntry {
            key: Arc::clone(key),
            cluster,
            status: TaskStatus::of(&task),
            desired_stopped: task.desired_status == Some(TaskStatus::Stopped),
            instance_arn: task.container_instance_arn.as_deref().map(Key::from),
            task,
            mod_revision,
            desired_revision: mod_revision,
            resources,
        };
        if let Some(previous) = previous {
            if previous.agent_facts() == entry.agent_facts() {
                entry.desired_revision = previous.desired_revision;
            }
        }
        entry
    }

    /// What the agent of its instance acts on.
    fn agent_facts(&self) -> (Option<&str>, bool, bool, bool) {
        (
            self.instance_arn.as_deref(),
            self.desired_stopped,
            self.status == TaskStatus::Deactivating,
            self.is_stopped(),
        )
    }

    /// Whether it has reached STOPPED.
    pub fn is_stopped(&self) -> bool {
        self.status == TaskStatus::Stopped
    }

    /// Its id (the last part of its ARN and key).
    pub fn id(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// Its ARN.
    pub fn arn(&self) -> &str {
        self.task.task_arn.as_deref().unwrap_or_default()
    }

    /// The family of its task definition.
    pub fn family(&self) -> Option<&str> {
        let arn = self.task.task_definition_arn.as_deref()?;
        let name = arn.rsplit('/').next()?;
        Some(name.rsplit_once(':').map_or(name, |(family, _)| family))
    }

    /// The service whose deployment started it (group `service:NAME` and `startedBy`
    /// `ecs-svc/...`; a RunTask that merely names the group is not the service's).
    pub fn service(&self) -> Option<&str> {
        let started_by_service = self
            .task
            .started_by
            .as_deref()
            .is_some_and(|s| s.starts_with("ecs-svc/"));
        if !started_by_service {
            return None;
        }
        self.task.group.as_deref()?.strip_prefix("service:")
    }

    /// Its task group, counted on its instance while it is not STOPPED and not asked to
    /// stop (ECS counts groups by desired status for distinctInstance).
    pub fn placed_group(&self) -> Option<&str> {
        if self.is_stopped() || self.desired_stopped {
            return None;
        }
        self.task.group.as_deref()
    }

    /// The task id of an ARN or key.
    pub fn id_of(reference: &str) -> Option<String> {
        id_of(reference, "task")
    }
}
