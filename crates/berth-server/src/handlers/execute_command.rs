//! ExecuteCommand: a session that runs a command in a running container of a task started
//! with `enableExecuteCommand`, over the data channel `crate::exec` serves. The answer's
//! `streamUrl` is this server's `/v1/data-channel/{session}` as the caller reached it (`ws://`,
//! or `wss://` over TLS); its `tokenValue` opens the session once. Every session is audited:
//! who, which task and container, what command, when (server log, target `berth::audit`, and
//! an event of the task's service when it has one).

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::exec::SessionSpec;
use crate::handlers::task_lookup::task_key_of;
use berth_core::exec::words;
use berth_core::task_state::TaskStatus;
use serde::{Deserialize, Serialize};

/// Input of ExecuteCommand.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandRequest {
    cluster: Option<String>,
    container: Option<String>,
    command: String,
    interactive: bool,
    task: String,
}

/// The session of the answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    session_id: String,
    stream_url: String,
    token_value: String,
}

/// Output of ExecuteCommand.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandResponse {
    cluster_arn: String,
    container_arn: String,
    container_name: String,
    interactive: bool,
    session: Session,
    task_arn: String,
}

/// What ECS answers for a task whose exec was not enabled (or whose exec agent is not up).
pub const NOT_ENABLED: &str = "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try again or run a new task with execute command enabled and try again.";

pub async fn execute_command(
    ctx: Ctx,
    req: ExecuteCommandRequest,
) -> Result<ExecuteCommandResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    if !req.interactive {
        return Err(ApiError::invalid_parameter(
            "Interactive is the only mode supported currently.",
        ));
    }
    if req.command.chars().count() > 4096 {
        return Err(ApiError::invalid_parameter(
            "command can be at most 4096 characters long.",
        ));
    }
    let command = words::split(&req.command)
        .map_err(|e| ApiError::invalid_parameter(format!("command: {e}.")))?;
    let key = task_key_of(&cluster_name, &req.task)?;
    let task = ctx
        .task(&key)
        .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))?
        .value;
    let task_arn = task.task_arn.clone().unwrap_or_default();
    if task.enable_execute_command != Some(true) {
        return Err(ApiError::invalid_parameter(NOT_ENABLED));
    }
    if TaskStatus::of(&task) != TaskStatus::Running
        || task.desired_status == Some(TaskStatus::Stopped)
    {
        return Err(ApiError::invalid_parameter(format!(
            "The execute command failed because the task is not RUNNING (it is {}).",
            TaskStatus::of(&task).as_str()
        )));
    }
    let containers = task.containers.clone().unwrap_or_default();
    let container = match req.container.as_deref() {
        Some(name) => containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The container '{name}' is not a container of task {task_arn}."
                ))
            })?,
        None => match containers.as_slice() {
            [only] => only,
            _ => return Err(ApiError::invalid_parameter(
                "The task has more than one container: name the container to run the command in.",
            )),
        },
    };
    let container_name = container.name.clone().unwrap_or_default();
    let runtime_id = match (container.last_status, container.runtime_id.clone()) {
        (Some(TaskStatus::Running), Some(id)) => id,
        _ => {
            return Err(ApiError::invalid_parameter(format!(
                "The execute command failed because container '{container_name}' is not RUNNING."
            )))
        }
    };
    let instance_arn = task.container_instance_arn.clone().unwrap_or_default();
    let connected = ctx
        .agents
        .last_seen(&instance_arn)
        .is_some_and(|seen| seen.elapsed() < ctx.config.agent_grace);
    if !connected {
        return Err(ApiError::new(
            "TargetNotConnectedException",
            "The execute command failed because the agent of the task's container instance is not connected. Wait and try again.",
        ));
    }
    let session_id = format!(
        "ecs-execute-command-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..17]
    );
    let token = crate::auth::keys::random_token()
        .map_err(|e| ApiError::server(format!("exec session token: {e}")))?;
    let spec = SessionSpec {
        cluster: cluster_name.clone(),
        task_arn: task_arn.clone(),
        container_name: container_name.clone(),
        runtime_id,
        command,
        command_text: req.command.clone(),
        instance_arn,
        caller_arn: ctx.caller.arn.clone(),
    };
    tracing::info!(
        target: "berth::audit",
        session = %session_id,
        principal = %spec.caller_arn,
        task = %task_arn,
        container = %container_name,
        command = %req.command,
        "ExecuteCommand"
    );
    if let Some(service) = task
        .group
        .as_deref()
        .and_then(|g| g.strip_prefix("service:"))
    {
        let message = format!(
            "(service {service}) {} started an execute command session {session_id} in container {container_name} of task {}: {}",
            spec.caller_arn,
            berth_core::arn::id_of(&task_arn, "task").unwrap_or_default(),
            req.command
        );
        crate::handlers::services::record_event(&ctx, &cluster_name, service, message).await;
    }
    ctx.exec.issue(spec, session_id.clone(), token.clone());
    let scheme = if ctx.caller.secure_transport {
        "wss"
    } else {
        "ws"
    };
    let host = ctx
        .caller
        .host
        .clone()
        .unwrap_or_else(|| ctx.config.listen.to_string());
    Ok(ExecuteCommandResponse {
        cluster_arn: ctx.arns.cluster(&cluster_name),
        container_arn: container.container_arn.clone().unwrap_or_default(),
        container_name,
        interactive: true,
        session: Session {
            stream_url: format!(
                "{scheme}://{host}{}{session_id}?role=publish_subscribe&cell-number=1",
                berth_core::exec::DATA_CHANNEL_PATH
            ),
            session_id,
            token_value: token,
        },
        task_arn,
    })
}
