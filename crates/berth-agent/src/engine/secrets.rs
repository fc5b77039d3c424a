//! A task's secrets as it starts (`secrets`, `logConfiguration.secretOptions`,
//! `repositoryCredentials`): asked of the server, which resolves them with the task's
//! execution role for this agent only, and put into the containers' environment, log options
//! and pulls. They are kept in the runner's memory only, never on disk.

use super::runner::{StopCause, TaskRunner};
use super::slot::Phase;
use crate::client::ClientError;
use crate::registry::{registry_of, RegistryAuth};
use berth_core::gateway::{AgentTaskRequest, TaskSecrets, TASK_SECRETS_PATH};
use berth_core::model::task_definition::TaskDefinition;
use std::time::Duration;

/// How long asking for secrets may wait for an unreachable server.
const ASK_WINDOW: Duration = Duration::from_secs(30);

/// Whether any container of `td` has secrets to resolve.
pub fn has_secrets(td: &TaskDefinition) -> bool {
    td.container_definitions.iter().flatten().any(|def| {
        def.secrets.as_ref().is_some_and(|s| !s.is_empty())
            || def.repository_credentials.is_some()
            || def
                .log_configuration
                .as_ref()
                .and_then(|l| l.secret_options.as_ref())
                .is_some_and(|s| !s.is_empty())
    })
}

impl TaskRunner {
    /// Asks for the task's secrets (when it has any) and puts them into the specs of the
    /// containers still to be created; `Err` stops the task with ECS's wording.
    pub(super) async fn apply_secrets(&mut self) -> Result<(), StopCause> {
        if !has_secrets(&self.assigned.task_definition)
            || self.slots.iter().all(|s| s.phase != Phase::NotCreated)
        {
            return Ok(());
        }
        let first = self
            .slots
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let failed = |reason: String| StopCause::Failed {
            container: first.clone(),
            reason: format!("ResourceInitializationError: {reason}"),
        };
        let Some(link) = self.shared.config.server.clone() else {
            return Err(failed(
                "unable to pull secrets or registry auth: this agent has no link to the server"
                    .into(),
            ));
        };
        let asked = AgentTaskRequest {
            cluster: link.cluster.clone(),
            container_instance: link.instance_id.clone(),
            task: self.task_arn.clone(),
        };
        let began = tokio::time::Instant::now();
        let mut backoff = crate::backoff::Backoff::default();
        let secrets: TaskSecrets = loop {
            match link.client.post(TASK_SECRETS_PATH, &asked).await {
                Ok(secrets) => break secrets,
                Err(e) if e.is_retryable() && began.elapsed() < ASK_WINDOW => {
                    self.check_stop()?;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(ClientError::Api { message, .. }) => return Err(failed(message)),
                Err(e) => {
                    return Err(failed(format!(
                        "unable to pull secrets or registry auth: {e}"
                    )))
                }
            }
        };
        for container in secrets.containers {
            let Some(slot) = self.slots.iter_mut().find(|s| s.name == container.name) else {
                continue;
            };
            let Some(spec) = slot.spec.as_mut() else {
                continue;
            };
            for (name, value) in container.environment {
                spec.env.retain(|(n, _)| *n != name);
                spec.env.push((name, value));
            }
            spec.log_options.extend(container.log_options);
            slot.registry_auth = container.registry.map(|(username, password)| RegistryAuth {
                username,
                password,
                server: registry_of(&spec.image),
            });
        }
        Ok(())
    }
}
