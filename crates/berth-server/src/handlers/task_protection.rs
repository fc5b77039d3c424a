//! Task scale-in protection: UpdateTaskProtection protects a service's tasks from being stopped
//! to scale in or to finish a deployment, for `expiresInMinutes` (default 120, 1 to 2880) or
//! until turned off; GetTaskProtection shows it. Protection is stored with the task as the time
//! it ends, and lapses on its own (see `berth_core::task_protection`); only these operations
//! show it, never DescribeTasks, as in ECS.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::task_lookup::task_key_of;
use crate::state::{scoped, TaskEntry, TaskIndex};
use berth_core::arn::id_of;
use berth_core::model::task::{ProtectedTask, Task};
use berth_core::model::Failure;
use berth_core::task_protection::{
    self as protection, DETAIL_NOT_A_SERVICE_TASK, DETAIL_TASK_STOPPED, FAILURE_MISSING,
    FAILURE_TASK_NOT_VALID, MAX_GET_TASKS, MAX_UPDATE_TASKS,
};
use berth_core::task_state::TaskStatus;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Input of UpdateTaskProtection.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskProtectionRequest {
    pub cluster: Option<String>,
    pub tasks: Vec<String>,
    pub protection_enabled: bool,
    pub expires_in_minutes: Option<i32>,
}

/// Input of GetTaskProtection.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskProtectionRequest {
    pub cluster: Option<String>,
    pub tasks: Option<Vec<String>>,
}

/// Output of both operations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProtectionResponse {
    protected_tasks: Vec<ProtectedTask>,
    failures: Vec<Failure>,
}

/// What a task reference of a request names: a task of a service that may carry protection,
/// or a failure entry.
enum Lookup {
    Found(Arc<TaskEntry>),
    Failed(Failure),
}

/// Finds the task `reference` names in `cluster`: `MISSING` when it is not stored,
/// `TASK_NOT_VALID` when no service started it or (with `live`) it is stopped or stopping.
fn look_up(ctx: &Ctx, cluster: &str, reference: &str, live: bool) -> Lookup {
    let entry = task_key_of(cluster, reference)
        .ok()
        .and_then(|key| ctx.snapshot().task(&key).cloned());
    let Some(entry) = entry else {
        let arn = match id_of(reference, "task") {
            Some(id) if !reference.starts_with("arn:") => ctx.arns.task(cluster, &id),
            _ => reference.to_string(),
        };
        return Lookup::Failed(Failure::new(arn, FAILURE_MISSING));
    };
    let not_valid = |detail: &str| {
        Lookup::Failed(Failure {
            detail: Some(detail.to_string()),
            ..Failure::new(entry.arn(), FAILURE_TASK_NOT_VALID)
        })
    };
    if entry.service().is_none() {
        return not_valid(DETAIL_NOT_A_SERVICE_TASK);
    }
    if live && !protection::may_be_protected(&entry.task) {
        return not_valid(DETAIL_TASK_STOPPED);
    }
    Lookup::Found(entry)
}

/// UpdateTaskProtection: turns scale-in protection on (until `expiresInMinutes` from now,
/// which a repeated call resets) or off for up to 10 tasks of services.
pub async fn update(
    ctx: Ctx,
    req: UpdateTaskProtectionRequest,
) -> Result<TaskProtectionResponse, ApiError> {
    protection::check_task_count(req.tasks.len(), MAX_UPDATE_TASKS)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let now = ctx.now();
    let expires_at = protection::expiry(now, req.protection_enabled, req.expires_in_minutes)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.unwrap_or_default();
    loop {
        let mut failures = Vec::new();
        let mut updated: Vec<Task> = Vec::new();
        let mut txn = Txn::new();
        for reference in &req.tasks {
            match look_up(&ctx, &cluster_name, reference, true) {
                Lookup::Failed(failure) => failures.push(failure),
                Lookup::Found(entry) => {
                    if updated
                        .iter()
                        .any(|t| t.task_arn.as_deref() == Some(entry.arn()))
                    {
                        continue;
                    }
                    let mut task = entry.task.clone();
                    task.protection_expires_at = expires_at;
                    txn = txn
                        .when(Compare::at(entry.key.as_ref(), entry.mod_revision))
                        .put(entry.key.as_ref(), encode(&task));
                    updated.push(task);
                }
            }
        }
        // All or nothing against the revisions read: a task changed meanwhile (a report, a
        // stop) makes the whole update read again, so a task asked to stop is never protected.
        if !updated.is_empty() && !ctx.commit(txn).await?.succeeded {
            continue;
        }
        let protected_tasks = updated
            .iter()
            .map(|t| protection::protected_task(t, now))
            .collect();
        return Ok(TaskProtectionResponse {
            protected_tasks,
            failures,
        });
    }
}

/// GetTaskProtection: the protection of the named tasks (up to 100); without `tasks`, every
/// task of the cluster's services that is protected now.
pub async fn get(
    ctx: Ctx,
    req: GetTaskProtectionRequest,
) -> Result<TaskProtectionResponse, ApiError> {
    if let Some(tasks) = &req.tasks {
        protection::check_task_count(tasks.len(), MAX_GET_TASKS)
            .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    }
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.unwrap_or_default();
    let now = ctx.now();
    let mut protected_tasks = Vec::new();
    let mut failures = Vec::new();
    match &req.tasks {
        Some(references) => {
            for reference in references {
                match look_up(&ctx, &cluster_name, reference, false) {
                    Lookup::Failed(failure) => failures.push(failure),
                    Lookup::Found(entry) => {
                        protected_tasks.push(protection::protected_task(&entry.task, now))
                    }
                }
            }
        }
        None => {
            let state = ctx.snapshot();
            let running = scoped(&cluster_name, TaskStatus::Running.as_str());
            protected_tasks.extend(
                state
                    .tasks_by(TaskIndex::Desired, &running, None)
                    .filter(|entry| entry.service().is_some())
                    .filter(|entry| protection::is_protected(&entry.task, now))
                    .map(|entry| protection::protected_task(&entry.task, now)),
            );
        }
    }
    Ok(TaskProtectionResponse {
        protected_tasks,
        failures,
    })
}

// Tested with the service controller: controllers/services/tests/protection.rs.
