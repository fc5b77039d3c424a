//! `POST /v1/agent/task-credentials`: temporary credentials of a task's role (`taskRoleArn`),
//! asked by the agent of the task's instance for the task's containers, which read them from
//! the agent's credentials endpoint as the AWS SDKs do on ECS. They are an STS session of the
//! role named after the task (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/TASK_ID`), so Berth's
//! APIs authorise them with the role's policies. The role's trust policy must let the ECS
//! tasks service (`ecs-tasks.amazonaws.com`) assume it, as on AWS.

use crate::app::App;
use crate::auth::session::Session;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use berth_core::gateway::{AgentTaskRequest, TaskCredentials};
use berth_core::iam::{Decision, Policy, Request};
use berth_core::model::iam::Role;
use berth_store::keys;
use std::sync::Arc;

/// The service principal tasks assume their roles as.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";
/// How long the credentials last; the agent asks again well before.
pub const LIFETIME_SECONDS: u64 = 6 * 3600;

/// The route's handler.
pub async fn issue(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    match credentials(&app, caller, &body) {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(json) => (axum::http::StatusCode::OK, json).into_response(),
            Err(e) => ApiError::server(format!("answer encoding: {e}")).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

fn credentials(
    app: &Arc<App>,
    caller: Principal,
    body: &[u8],
) -> Result<TaskCredentials, ApiError> {
    let asked: AgentTaskRequest = crate::protocol::parse_input(body)?;
    let instance =
        crate::gateway::agent_instance(app, caller, &asked.cluster, &asked.container_instance)?;
    let entry = crate::gateway::task_on_instance(app, &asked.cluster, &asked.task, &instance)?;
    let role_arn = task_role(app, &entry.task)?;
    let role = role_of(app, &role_arn)?;
    let trust = Policy::parse(&role.assume_role_policy_document)
        .map_err(|e| ApiError::server(format!("stored trust policy of {}: {e}", role.arn)))?;
    let context = berth_core::iam::Context::new();
    let request = Request {
        principal_arn: ECS_TASKS,
        action: "sts:AssumeRole",
        resource: &role.arn,
        context: &context,
    };
    if berth_core::iam::evaluate(&[&trust], &request) != Decision::Allow {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "The trust policy of role {} does not let {ECS_TASKS} assume it: add a statement allowing sts:AssumeRole to the service principal {ECS_TASKS}.",
                role.arn
            ),
        ));
    }
    let task_id = entry
        .arn()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let now = app.now().floor() as u64;
    let session = Session {
        access_key_id: crate::auth::keys::new_id("ASIA")
            .map_err(|e| ApiError::server(format!("making an access key id: {e}")))?,
        role_name: role.role_name.clone(),
        role_id: role.role_id.clone(),
        session_name: task_id,
        expires: now + LIFETIME_SECONDS,
    };
    Ok(TaskCredentials {
        role_arn: role.arn.clone(),
        secret_access_key: app.keys.secret_of(&session.access_key_id),
        token: session.token(&app.keys),
        expiration: berth_core::civil::iso8601(session.expires as i64, None),
        access_key_id: session.access_key_id,
    })
}

/// The task's role: its override, else its definition's.
fn task_role(app: &App, task: &berth_core::model::task::Task) -> Result<String, ApiError> {
    let overridden = task
        .overrides
        .as_ref()
        .and_then(|o| o.task_role_arn.clone());
    let defined = || {
        let snapshot = app.snapshot();
        task.task_definition_arn
            .as_deref()
            .and_then(|arn| snapshot.definition(arn))
            .and_then(|d| d.task_definition.task_role_arn.clone())
    };
    overridden
        .or_else(defined)
        .filter(|arn| !arn.is_empty())
        .ok_or_else(|| ApiError::invalid_parameter("The task has no task role (taskRoleArn)."))
}

/// The role `arn` names (by its name; the stored ARN, path included, must match).
fn role_of(app: &App, arn: &str) -> Result<Role, ApiError> {
    let name = arn
        .split_once(":role/")
        .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
        .unwrap_or_default();
    app.get::<Role>(&keys::role(name))?
        .map(|r| r.value)
        .filter(|r| r.arn == arn)
        .ok_or_else(|| {
            ApiError::new(
                "AccessDeniedException",
                format!(
                    "The task role {arn} does not exist: create it with `aws iam create-role`."
                ),
            )
        })
}
