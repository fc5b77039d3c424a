//! The task lifecycle as pure functions: building a new task, asking it to stop, and applying
//! what an agent reports — forward-only, with ECS's timestamps, stop codes and health.

use crate::gateway::SubmitTaskStateChange;
use crate::model::common::{Tag, Timestamp};
pub use crate::model::status::TaskStatus;
use crate::model::status::{Connectivity, HealthStatus};
use crate::model::task::{Container, ContainerStateChange, Task, TaskOverride};
use crate::model::task_definition::{ContainerDefinition, TaskDefinition};

impl TaskStatus {
    /// The status of `task`, PROVISIONING when unset.
    pub fn of(task: &Task) -> TaskStatus {
        task.last_status.unwrap_or(TaskStatus::Provisioning)
    }
}

/// The statuses a container goes through, in order.
const CONTAINER_STATUSES: [TaskStatus; 3] = [
    TaskStatus::Pending,
    TaskStatus::Running,
    TaskStatus::Stopped,
];

/// ECS stop codes.
pub mod stop_code {
    pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "EssentialContainerExited";
    pub const USER_INITIATED: &str = "UserInitiated";
    pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";
}

/// What goes into a new task.
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    pub task_arn: String,
    pub cluster_arn: String,
    pub container_instance_arn: String,
    pub task_definition: &'a TaskDefinition,
    /// One ARN per container definition, in order.
    pub container_arns: Vec<String>,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    pub group: String,
    pub launch_type: String,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    pub now: Timestamp,
}

/// A new task as RunTask returns it: PROVISIONING, desired RUNNING, every container PENDING.
pub fn new_task(new: NewTask<'_>) -> Task {
    let td = new.task_definition;
    let definitions = td.container_definitions.clone().unwrap_or_default();
    let containers = definitions
        .iter()
        .zip(new.container_arns)
        .map(|(def, arn)| {
            let o = container_override(&new.overrides, def.name.as_deref().unwrap_or(""));
            Container {
                container_arn: Some(arn),
                task_arn: Some(new.task_arn.clone()),
                name: def.name.clone(),
                image: def.image.clone(),
                last_status: Some(TaskStatus::Pending),
                network_bindings: Some(Vec::new()),
                network_interfaces: Some(Vec::new()),
                health_status: def.health_check.as_ref().map(|_| HealthStatus::Unknown),
                cpu: Some(o.and_then(|o| o.cpu).or(def.cpu).unwrap_or(0).to_string()),
                memory: o
                    .and_then(|o| o.memory)
                    .or(def.memory)
                    .map(|m| m.to_string()),
                memory_reservation: o
                    .and_then(|o| o.memory_reservation)
                    .or(def.memory_reservation)
                    .map(|m| m.to_string()),
                ..Container::default()
            }
        })
        .collect();
    Task {
        attachments: Some(Vec::new()),
        attributes: Some(Vec::new()),
        cluster_arn: Some(new.cluster_arn),
        connectivity: Some(Connectivity::Connected),
        connectivity_at: Some(new.now),
        container_instance_arn: Some(new.container_instance_arn),
        containers: Some(containers),
        cpu: new.overrides.cpu.clone().or_else(|| td.cpu.clone()),
        memory: new.overrides.memory.clone().or_else(|| td.memory.clone()),
        created_at: Some(new.now),
        desired_status: Some(TaskStatus::Running),
        enable_execute_command: Some(new.enable_execute_command),
        group: Some(new.group),
        health_status: Some(HealthStatus::Unknown),
        last_status: Some(TaskStatus::Provisioning),
        launch_type: Some(new.launch_type),
        overrides: Some(TaskOverride {
            container_overrides: Some(
                new.overrides
                    .container_overrides
                    .clone()
                    .unwrap_or_default(),
            ),
            inference_accelerator_overrides: Some(
                new.overrides
                    .inference_accelerator_overrides
                    .clone()
                    .unwrap_or_default(),
            ),
            ..new.overrides
        }),
        started_by: new.started_by,
        tags: Some(new.tags),
        task_arn: Some(new.task_arn),
        task_definition_arn: td.task_definition_arn.clone(),
        version: Some(1),
        ..Task::default()
    }
}

/// The override for container `name`, if the task has one.
pub fn container_override<'a>(
    overrides: &'a TaskOverride,
    name: &str,
) -> Option<&'a crate::model::task::ContainerOverride> {
    overrides
        .container_overrides
        .as_deref()?
        .iter()
        .find(|o| o.name.as_deref() == Some(name))
}

/// Asks a task to stop. Returns false when it was already asked to (the first stop's code
/// and reason stand, as in ECS).
pub fn request_stop(task: &mut Task, code: &str, reason: Option<String>, now: Timestamp) -> bool {
    if task.desired_status == Some(TaskStatus::Stopped) {
        return false;
    }
    task.desired_status = Some(TaskStatus::Stopped);
    task.stop_code = Some(code.to_string());
    task.stopped_reason = Some(reason.unwrap_or_else(|| match code {
        stop_code::USER_INITIATED => "Task stopped by user".to_string(),
        stop_code::SERVICE_SCHEDULER_INITIATED => {
            "Scaling activity initiated by (deployment)".to_string()
        }
        _ => "Task stopped".to_string(),
    }));
    if TaskStatus::of(task) >= TaskStatus::Running && task.stopping_at.is_none() {
        task.stopping_at = Some(now);
    }
    true
}

/// Why a report was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The status is not one of ECS's task statuses.
    #[error("'{0}' is not a task status: use PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING or STOPPED.")]
    UnknownStatus(String),
    /// A container the task does not have.
    #[error("the task has no container named '{0}'.")]
    UnknownContainer(String),
    /// A container status that is not PENDING, RUNNING or STOPPED.
    #[error("'{0}' is not a container status: use PENDING, RUNNING or STOPPED.")]
    UnknownContainerStatus(String),
}

/// Applies an agent's report to a task. Statuses only move forward; a stale report changes
/// nothing it would move back. Returns whether the task changed.
pub fn apply_report(
    task: &mut Task,
    report: &SubmitTaskStateChange,
    definitions: &[ContainerDefinition],
    now: Timestamp,
) -> Result<bool, ReportError> {
    let before = task.clone();
    let status = match report.status.as_deref() {
        None => None,
        Some(text) => {
            // Agents report up to STOPPED; DELETED is ECS's own, not a report.
            let status = TaskStatus::parse(text).filter(|s| *s != TaskStatus::Deleted);
            Some(status.ok_or_else(|| ReportError::UnknownStatus(text.into()))?)
        }
    };
    for change in report.containers.as_deref().unwrap_or_default() {
        apply_container_change(task, change)?;
    }
    if report.pull_started_at.is_some() && task.pull_started_at.is_none() {
        task.pull_started_at = report.pull_started_at;
    }
    if report.pull_stopped_at.is_some() && task.pull_stopped_at.is_none() {
        task.pull_stopped_at = report.pull_stopped_at;
    }
    if let Some(status) = status.filter(|s| *s > TaskStatus::of(task)) {
        advance(task, status, report, definitions, now);
    }
    task.health_status = Some(task_health(task, definitions));
    Ok(*task != before)
}

/// Whether an essential container of the task ran and exited (it has an exit code).
fn essential_container_exited(task: &Task, definitions: &[ContainerDefinition]) -> bool {
    task.containers.iter().flatten().any(|c| {
        c.exit_code.is_some()
            && definitions
                .iter()
                .any(|d| d.name == c.name && d.essential.unwrap_or(true))
    })
}

fn advance(
    task: &mut Task,
    status: TaskStatus,
    report: &SubmitTaskStateChange,
    definitions: &[ContainerDefinition],
    now: Timestamp,
) {
    task.last_status = Some(status);
    if status >= TaskStatus::Running && task.started_at.is_none() && status == TaskStatus::Running {
        task.started_at = Some(now);
    }
    if status >= TaskStatus::Deactivating && task.stopping_at.is_none() {
        task.stopping_at = Some(now);
    }
    if status >= TaskStatus::Deactivating && task.desired_status != Some(TaskStatus::Stopped) {
        // The agent stopped the task on its own: an essential container exited (even one
        // that exited before the task was ever reported RUNNING), or it never started.
        let code = if task.started_at.is_some() || essential_container_exited(task, definitions) {
            stop_code::ESSENTIAL_CONTAINER_EXITED
        } else {
            stop_code::TASK_FAILED_TO_START
        };
        let reason = report.reason.clone().unwrap_or_else(|| match code {
            stop_code::TASK_FAILED_TO_START => "Task failed to start".to_string(),
            _ => "Essential container in task exited".to_string(),
        });
        task.desired_status = Some(TaskStatus::Stopped);
        task.stop_code = Some(code.into());
        task.stopped_reason = Some(reason);
    }
    if status == TaskStatus::Stopped {
        task.stopped_at = Some(now);
        task.execution_stopped_at = Some(report.execution_stopped_at.unwrap_or(now));
        for container in task.containers.iter_mut().flatten() {
            container.last_status = Some(TaskStatus::Stopped);
        }
        crate::awsvpc::release(task);
    }
}

fn apply_container_change(
    task: &mut Task,
    change: &ContainerStateChange,
) -> Result<(), ReportError> {
    let name = change.container_name.as_deref().unwrap_or("");
    let container = task
        .containers
        .iter_mut()
        .flatten()
        .find(|c| c.name.as_deref() == Some(name))
        .ok_or_else(|| ReportError::UnknownContainer(name.to_string()))?;
    if let Some(text) = change.status.as_deref() {
        let status = TaskStatus::parse(text)
            .filter(|s| CONTAINER_STATUSES.contains(s))
            .ok_or_else(|| ReportError::UnknownContainerStatus(text.to_string()))?;
        if container
            .last_status
            .is_some_and(|current| status < current)
        {
            return Ok(());
        }
        container.last_status = Some(status);
    }
    if change.runtime_id.is_some() {
        container.runtime_id = change.runtime_id.clone();
    }
    if change.image_digest.is_some() {
        container.image_digest = change.image_digest.clone();
    }
    if change.exit_code.is_some() {
        container.exit_code = change.exit_code;
    }
    if change.reason.is_some() {
        container.reason = change.reason.clone();
    }
    if let Some(bindings) = &change.network_bindings {
        container.network_bindings = Some(bindings.clone());
    }
    if let Some(health) = change
        .health_status
        .as_deref()
        .and_then(HealthStatus::parse)
    {
        if container.health_status.is_some() {
            container.health_status = Some(health);
        }
    }
    Ok(())
}

/// A task's health as ECS derives it: UNHEALTHY when any essential container with a health
/// check is, HEALTHY when all of them are, otherwise UNKNOWN.
pub fn task_health(task: &Task, definitions: &[ContainerDefinition]) -> HealthStatus {
    let checked: Vec<HealthStatus> = definitions
        .iter()
        .filter(|d| d.essential.unwrap_or(true) && d.health_check.is_some())
        .filter_map(|d| {
            task.containers
                .iter()
                .flatten()
                .find(|c| c.name == d.name)
                .map(|c| c.health_status.unwrap_or(HealthStatus::Unknown))
        })
        .collect();
    if checked.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

#[cfg(test)]
mod tests;
