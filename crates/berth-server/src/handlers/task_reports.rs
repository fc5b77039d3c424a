//! The agent-facing operations SubmitTaskStateChange and SubmitContainerStateChange: agents
//! report what their containers did; the task moves forward only, and when it reaches STOPPED
//! its resources go back to the instance in the same transaction.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::task_lookup::{resolve_task_definition, task_key_of};
use berth_core::arn::id_of;
use berth_core::awsvpc::record_interface;
use berth_core::gateway::{SubmitContainerStateChange, SubmitTaskStateChange};
use berth_core::model::task::ContainerStateChange;
use berth_core::task_state::apply_report;
use berth_store::typed::encode;
use serde::Serialize;

/// Output of both operations.
#[derive(Debug, Serialize)]
pub struct Acknowledgment {
    acknowledgment: String,
}

fn ack() -> Acknowledgment {
    Acknowledgment {
        acknowledgment: "ACK".to_string(),
    }
}

/// Applies a task state change an agent reports.
pub async fn submit_task_state_change(
    ctx: Ctx,
    req: SubmitTaskStateChange,
) -> Result<Acknowledgment, ApiError> {
    apply(&ctx, req).await?;
    Ok(ack())
}

/// Applies one container's state change an agent reports.
pub async fn submit_container_state_change(
    ctx: Ctx,
    req: SubmitContainerStateChange,
) -> Result<Acknowledgment, ApiError> {
    let report = SubmitTaskStateChange {
        cluster: req.cluster,
        task: req.task,
        containers: Some(vec![ContainerStateChange {
            container_name: req.container_name,
            runtime_id: req.runtime_id,
            status: req.status,
            exit_code: req.exit_code,
            reason: req.reason,
            network_bindings: req.network_bindings,
            ..ContainerStateChange::default()
        }]),
        ..SubmitTaskStateChange::default()
    };
    apply(&ctx, report).await?;
    Ok(ack())
}

async fn apply(ctx: &Ctx, report: SubmitTaskStateChange) -> Result<(), ApiError> {
    let cluster = ctx.cluster_name(report.cluster.as_deref())?;
    let reference = report
        .task
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("Missing required parameter 'task'."))?;
    let key = task_key_of(&cluster, &reference)?;
    loop {
        let Some(current) = ctx.task(&key) else {
            return Err(ApiError::invalid_parameter(
                "The referenced task was not found.",
            ));
        };
        // Only the agent of the task's instance reports on it.
        let instance = current
            .value
            .container_instance_arn
            .as_deref()
            .unwrap_or_default();
        let instance_id = id_of(instance, "container-instance").unwrap_or_default();
        crate::auth::instances::check_owner(ctx, &cluster, &instance_id)?;
        let td_arn = current
            .value
            .task_definition_arn
            .clone()
            .unwrap_or_default();
        let record = resolve_task_definition(ctx, &td_arn)?;
        let definitions = record
            .task_definition
            .container_definitions
            .as_deref()
            .unwrap_or_default();
        let mut task = current.value.clone();
        let mut changed = apply_report(&mut task, &report, definitions, ctx.now())
            .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
        if let Some(interface) = &report.network_interface {
            changed |= record_interface(&mut task, interface, &ctx.config.region);
        }
        if !changed {
            return Ok(());
        }
        // Only the task is written: what its instance has left derives from its tasks. With
        // the reports of other tasks that arrive meanwhile, in one transaction.
        let written =
            crate::group_write::put(&ctx.app, key.clone(), current.mod_revision, encode(&task))
                .await?;
        if written {
            return Ok(());
        }
    }
}
