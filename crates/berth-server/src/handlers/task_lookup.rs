//! Finding tasks and task definitions from the references requests carry, and showing tasks
//! as DescribeTasks does. Shared by the task operations and the agent-facing ones.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::arn::{id_of, Arn};
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::model::{Failure, TaskDefinitionStatus, TaskStatus};
use berth_core::task_definition::{parse_reference, TaskDefinitionRef};
use berth_store::keys;
use serde::Serialize;
use std::sync::Arc;

/// Output of DescribeTasks.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksResponse {
    tasks: Vec<Task>,
    failures: Vec<Failure>,
}

/// Fresh identifiers of a new task in `cluster`: its id (32 hex digits), its ARN, and one
/// container ARN (`...:container/{cluster}/{task id}/{uuid}`) for each of `containers`.
pub fn new_task_ids(
    arns: &berth_core::ArnContext,
    cluster: &str,
    containers: usize,
) -> (String, String, Vec<String>) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let task_arn = arns.task(cluster, &id);
    let container_arns = (0..containers)
        .map(|_| {
            format!(
                "arn:aws:ecs:{}:{}:container/{cluster}/{id}/{}",
                arns.region,
                arns.account_id,
                uuid::Uuid::new_v4()
            )
        })
        .collect();
    (id, task_arn, container_arns)
}

/// A task as the API shows it: its `version` set from the store revision of its last write,
/// and without Berth's own records: its scale-in protection, which ECS shows only through
/// GetTaskProtection (`handlers::task_protection`), and its awsvpc network.
pub fn with_version(mut task: Task, revision: u64) -> Task {
    task.version = Some(i64::try_from(revision).unwrap_or(i64::MAX));
    task.protection_expires_at = None;
    task.task_network = None;
    if task.enable_execute_command == Some(true) {
        let started_at = task.started_at;
        for container in task.containers.iter_mut().flatten() {
            container.managed_agents = Some(vec![exec_agent(container, started_at)]);
        }
    }
    task
}

/// The `ExecuteCommandAgent` of a container of a task run with `enableExecuteCommand`: exec
/// sessions are served by the server and the container's agent, so it runs while the
/// container does.
fn exec_agent(
    container: &berth_core::model::task::Container,
    started_at: Option<berth_core::model::common::Timestamp>,
) -> berth_core::model::task::ManagedAgent {
    let status = match container.last_status {
        Some(TaskStatus::Running) => "RUNNING",
        Some(TaskStatus::Stopped) => "STOPPED",
        _ => "PENDING",
    };
    berth_core::model::task::ManagedAgent {
        last_started_at: started_at.filter(|_| status != "PENDING"),
        name: Some("ExecuteCommandAgent".into()),
        reason: None,
        last_status: Some(status.into()),
    }
}

/// The store key of the task a reference (id or ARN) names in `cluster`.
pub fn task_key_of(cluster: &str, reference: &str) -> Result<String, ApiError> {
    let id = id_of(reference, "task")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("'{reference}' is not a task id or task ARN."))
        })?;
    if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .ok_or_else(|| ApiError::invalid_parameter("Invalid task ARN."))?;
        if arn.path.len() == 2 && arn.path[0] != cluster {
            return Err(ApiError::invalid_parameter(format!(
                "Task '{reference}' does not belong to cluster '{cluster}'."
            )));
        }
    }
    Ok(keys::task(cluster, &id))
}

/// The task definition revision a reference names: `family` (latest ACTIVE revision),
/// `family:revision` or a task definition ARN.
pub fn resolve_task_definition(
    ctx: &Ctx,
    reference: &str,
) -> Result<Arc<TaskDefinitionRecord>, ApiError> {
    let parsed = parse_reference(reference)?;
    let not_found = || ApiError::client(format!("Unable to find task definition '{reference}'."));
    let state = ctx.snapshot();
    match parsed {
        TaskDefinitionRef::Revision { family, revision } => state
            .definition_at(&keys::task_definition(&family, revision))
            .cloned()
            .ok_or_else(not_found),
        TaskDefinitionRef::Family(family) => {
            let prefix = keys::task_definitions_of(&family);
            let found = state
                .definitions_under(&prefix)
                .find(|r| r.task_definition.status == Some(TaskDefinitionStatus::Active))
                .cloned();
            found.ok_or_else(not_found)
        }
    }
}

/// DescribeTasks: tasks by id or ARN; unknown ones are `MISSING` failures; tags only with
/// `include: ["TAGS"]`.
pub fn describe(
    ctx: &Ctx,
    cluster: Option<&str>,
    references: &[String],
    include: &[String],
) -> Result<DescribeTasksResponse, ApiError> {
    if let Some(bad) = include.iter().find(|i| i.as_str() != "TAGS") {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use TAGS."
        )));
    }
    // The cluster first, as ECS: an empty `tasks` in an unknown cluster is
    // ClusterNotFoundException, not a complaint about the list.
    let cluster = ctx.active_cluster(cluster)?;
    if references.is_empty() || references.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "tasks must name 1 to 100 tasks.",
        ));
    }
    let cluster_name = cluster.value.cluster_name.unwrap_or_default();
    let with_tags = include.iter().any(|i| i == "TAGS");
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for reference in references {
        let found = match task_key_of(&cluster_name, reference) {
            Ok(key) => ctx.task(&key),
            Err(_) => None,
        };
        match found {
            Some(v) => {
                let mut task = with_version(v.value, v.mod_revision);
                if !with_tags {
                    task.tags = Some(Vec::new());
                }
                tasks.push(task);
            }
            None => {
                let arn = match id_of(reference, "task") {
                    Some(id) if !reference.starts_with("arn:") => ctx.arns.task(&cluster_name, &id),
                    _ => reference.clone(),
                };
                failures.push(Failure::new(arn, "MISSING"));
            }
        }
    }
    Ok(DescribeTasksResponse { tasks, failures })
}
