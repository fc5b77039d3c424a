//! `POST /v1/agent/logs`: a container's output from its agent, stored in the log stream its
//! task definition's `awslogs` options name. The agent may ship only for tasks on its own
//! instance, and only where their definitions say.

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::gateway::task_on_instance;
use crate::logs::SourcedEvent;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use berth_core::telemetry::awslogs::AwsLogs;
use berth_core::telemetry::{LogBatch, LogBatchAnswer};
use std::sync::Arc;

/// The route's handler.
pub async fn ship(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    match store(app, caller, &body).await {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(json) => (axum::http::StatusCode::OK, json).into_response(),
            Err(e) => ApiError::server(format!("answer encoding: {e}")).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn store(app: Arc<App>, caller: Principal, body: &[u8]) -> Result<LogBatchAnswer, ApiError> {
    let batch: LogBatch = crate::protocol::parse_input(body)?;
    let instance =
        crate::gateway::agent_instance(&app, caller, &batch.cluster, &batch.container_instance)?;
    let entry = task_on_instance(&app, &batch.cluster, &batch.task, &instance)?;
    let options = awslogs_options(&app, &entry.task, &batch.container)?;
    let group = options.group.clone();
    let stream = options.stream_name(&batch.container, &batch.task, &batch.runtime_id);
    if stream.is_empty() || stream.len() > 512 || stream.contains([':', '*']) {
        return Err(ApiError::invalid_parameter(format!(
            "'{stream}' cannot name a log stream: use 1 to 512 characters without ':' or '*'."
        )));
    }
    let create_group = options.create_group;
    let events: Vec<SourcedEvent> = batch
        .events
        .into_iter()
        .map(|e| SourcedEvent {
            position: e.position,
            timestamp: e.timestamp,
            message: e.message,
        })
        .collect();
    let logs = Arc::clone(&app.logs);
    let (group, stream, outcome) = tokio::task::spawn_blocking(move || {
        logs.ensure_stream(&group, &stream, create_group)?;
        let outcome = if events.is_empty() {
            crate::logs::AppendOutcome {
                position: logs.source_position(&group, &stream)?,
                ..Default::default()
            }
        } else {
            logs.append_sourced(&group, &stream, &events)?
        };
        Ok::<_, ApiError>((group, stream, outcome))
    })
    .await
    .map_err(|e| ApiError::server(format!("log append: {e}")))??;
    app.metrics.observe_log_events(outcome.accepted);
    Ok(LogBatchAnswer {
        log_group_name: group,
        log_stream_name: stream,
        position: outcome.position,
        accepted: outcome.accepted,
        skipped: outcome.skipped,
    })
}

/// The `awslogs` options of container `container` of `task`, from its task definition.
fn awslogs_options(
    app: &App,
    task: &berth_core::model::task::Task,
    container: &str,
) -> Result<AwsLogs, ApiError> {
    let snapshot = app.snapshot();
    let definition = task
        .task_definition_arn
        .as_deref()
        .and_then(|arn| snapshot.definition(arn))
        .ok_or_else(|| ApiError::server("the task's definition is not stored"))?;
    let def = definition
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(container))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("The task has no container named '{container}'."))
        })?;
    let config = def
        .log_configuration
        .as_ref()
        .filter(|l| l.log_driver == "awslogs")
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "Container '{container}' does not log with the awslogs driver."
            ))
        })?;
    AwsLogs::from_options(&config.options.clone().unwrap_or_default())
        .map_err(ApiError::invalid_parameter)
}
