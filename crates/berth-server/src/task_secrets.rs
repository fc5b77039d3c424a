//! `POST /v1/agent/task-secrets`: a task's secrets, resolved for the agent of its instance as
//! the task starts — `secrets` (environment variables), `logConfiguration.secretOptions` and
//! `repositoryCredentials` — from Secrets Manager and Parameter Store. As on ECS they are
//! read with the task's execution role (`executionRoleArn`): its trust policy must let
//! `ecs-tasks.amazonaws.com` assume it, and its policies must allow
//! `secretsmanager:GetSecretValue` or `ssm:GetParameters` on each one. The values go to that
//! agent only, in this answer: never into the task record, the desired-state stream or a log.

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::sts::task_credentials::ECS_TASKS;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use berth_core::gateway::{AgentTaskRequest, ContainerSecrets, TaskSecrets};
use berth_core::iam::{Decision, Policy, Request};
use berth_core::model::iam::{InlinePolicy, Role};
use berth_core::model::task_definition::TaskDefinition;
use berth_store::keys;
use std::sync::Arc;

/// The route's handler.
pub async fn resolve(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    let app2 = Arc::clone(&app);
    let answer = tokio::task::spawn_blocking(move || secrets(&app2, caller, &body)).await;
    match answer {
        Ok(Ok(secrets)) => match serde_json::to_vec(&secrets) {
            Ok(json) => (axum::http::StatusCode::OK, json).into_response(),
            Err(e) => ApiError::server(format!("answer encoding: {e}")).into_response(),
        },
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::server(format!("resolving secrets: {e}")).into_response(),
    }
}

fn secrets(app: &Arc<App>, caller: Principal, body: &[u8]) -> Result<TaskSecrets, ApiError> {
    let asked: AgentTaskRequest = crate::protocol::parse_input(body)?;
    let instance =
        crate::gateway::agent_instance(app, caller, &asked.cluster, &asked.container_instance)?;
    let entry = crate::gateway::task_on_instance(app, &asked.cluster, &asked.task, &instance)?;
    let snapshot = app.snapshot();
    let definition = entry
        .task
        .task_definition_arn
        .as_deref()
        .and_then(|arn| snapshot.definition(arn))
        .ok_or_else(|| ApiError::server("the task's definition is not stored"))?;
    let td = &definition.task_definition;
    let task_id = entry.arn().rsplit('/').next().unwrap_or_default();
    let mut role: Option<ExecutionRole> = None;
    let mut answer = TaskSecrets::default();
    for def in td.container_definitions.iter().flatten() {
        let name = def.name.clone().unwrap_or_default();
        let mut container = ContainerSecrets {
            name: name.clone(),
            ..Default::default()
        };
        let log_secrets = def
            .log_configuration
            .as_ref()
            .and_then(|l| l.secret_options.clone())
            .unwrap_or_default();
        let wanted = def
            .secrets
            .iter()
            .flatten()
            .map(|s| (s, false))
            .chain(log_secrets.iter().map(|s| (s, true)));
        for (secret, is_log_option) in wanted {
            let role = match &role {
                Some(role) => role,
                None => role.insert(ExecutionRole::of(app, &entry.task, td, task_id)?),
            };
            let value = role.read(app, &secret.value_from)?;
            if is_log_option {
                container.log_options.insert(secret.name.clone(), value);
            } else {
                container.environment.insert(secret.name.clone(), value);
            }
        }
        if let Some(credentials) = &def.repository_credentials {
            let role = match &role {
                Some(role) => role,
                None => role.insert(ExecutionRole::of(app, &entry.task, td, task_id)?),
            };
            let value = role.read(app, &credentials.credentials_parameter)?;
            container.registry = Some(registry_credentials(
                &credentials.credentials_parameter,
                &value,
            )?);
        }
        if !container.environment.is_empty()
            || !container.log_options.is_empty()
            || container.registry.is_some()
        {
            answer.containers.push(container);
        }
    }
    Ok(answer)
}

/// `{"username": …, "password": …}`, as a repositoryCredentials secret holds them.
fn registry_credentials(reference: &str, value: &str) -> Result<(String, String), ApiError> {
    let document: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
    match (document["username"].as_str(), document["password"].as_str()) {
        (Some(user), Some(password)) => Ok((user.to_string(), password.to_string())),
        _ => Err(initialization(format!(
            "the repositoryCredentials secret {reference} must hold JSON {{\"username\": …, \"password\": …}}"
        ))),
    }
}

fn initialization(message: String) -> ApiError {
    ApiError::new(
        "ResourceInitializationError",
        format!("unable to pull secrets or registry auth: {message}"),
    )
}

/// The task's execution role and what it may read.
struct ExecutionRole {
    role: Role,
    session_arn: String,
    policies: Vec<Policy>,
}

impl ExecutionRole {
    fn of(
        app: &App,
        task: &berth_core::model::task::Task,
        td: &TaskDefinition,
        task_id: &str,
    ) -> Result<ExecutionRole, ApiError> {
        let arn = task
            .overrides
            .as_ref()
            .and_then(|o| o.execution_role_arn.clone())
            .or_else(|| td.execution_role_arn.clone())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                initialization(
                    "the task has secrets but no executionRoleArn: ECS reads secrets with the task execution role".into(),
                )
            })?;
        let name = arn
            .split_once(":role/")
            .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
            .unwrap_or_default();
        let role = app
            .get::<Role>(&keys::role(name))?
            .map(|r| r.value)
            .filter(|r| r.arn == arn)
            .ok_or_else(|| initialization(format!("the execution role {arn} does not exist")))?;
        let trust = Policy::parse(&role.assume_role_policy_document)
            .map_err(|e| ApiError::server(format!("stored trust policy of {}: {e}", role.arn)))?;
        let context = berth_core::iam::Context::new();
        let assume = Request {
            principal_arn: ECS_TASKS,
            action: "sts:AssumeRole",
            resource: &role.arn,
            context: &context,
        };
        if berth_core::iam::evaluate(&[&trust], &assume) != Decision::Allow {
            return Err(initialization(format!(
                "the trust policy of the execution role {} does not let {ECS_TASKS} assume it",
                role.arn
            )));
        }
        let policies = app
            .list::<InlinePolicy>(&keys::role_policies_of(&role.role_name))?
            .into_iter()
            .filter_map(|p| Policy::parse(&p.value.policy_document).ok())
            .collect();
        let session_arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{task_id}",
            app.arns.account_id, role.role_name
        );
        Ok(ExecutionRole {
            role,
            session_arn,
            policies,
        })
    }

    /// The value `value_from` names, if the role may read it.
    fn read(&self, app: &App, value_from: &str) -> Result<String, ApiError> {
        let (action, resource) = if value_from.starts_with("arn:aws:secretsmanager:") {
            let secret: Vec<&str> = value_from.splitn(8, ':').take(7).collect();
            ("secretsmanager:GetSecretValue", secret.join(":"))
        } else if value_from.starts_with("arn:") {
            ("ssm:GetParameters", value_from.to_string())
        } else {
            let name = value_from.trim_start_matches('/');
            (
                "ssm:GetParameters",
                format!(
                    "arn:aws:ssm:{}:{}:parameter/{name}",
                    app.arns.region, app.arns.account_id
                ),
            )
        };
        let context = berth_core::iam::Context::new();
        let request = Request {
            principal_arn: &self.session_arn,
            action,
            resource: &resource,
            context: &context,
        };
        let policies: Vec<&Policy> = self.policies.iter().collect();
        if berth_core::iam::evaluate(&policies, &request) != Decision::Allow {
            return Err(initialization(format!(
                "the execution role {} may not {action} on {resource}",
                self.role.arn
            )));
        }
        crate::secretsmanager::resolve::resolve_value_from(app, value_from)
            .map_err(|e| initialization(format!("{value_from}: {}", e.message)))
    }
}
