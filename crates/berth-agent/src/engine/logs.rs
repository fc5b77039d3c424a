//! The awslogs driver in a task's life (`crate::logs`): a container's log stream is opened
//! before it starts (a missing group it may not create keeps it from starting, as with
//! Docker's driver), and its output followed once it runs, again after a restart in place
//! and when the agent takes it over after a restart of its own.

use super::runner::{StopCause, TaskRunner};
use crate::client::ClientError;
use crate::logs::Source;
use berth_core::telemetry::awslogs::AwsLogs;
use std::time::Duration;

/// How long opening a log stream may wait for an unreachable server.
const OPEN_WINDOW: Duration = Duration::from_secs(30);

impl TaskRunner {
    /// The awslogs options of container `idx`, if it logs with awslogs.
    fn awslogs(&self, idx: usize) -> Option<Result<AwsLogs, String>> {
        let config = self.slots[idx]
            .def
            .log_configuration
            .as_ref()
            .filter(|l| l.log_driver == "awslogs")?;
        Some(AwsLogs::from_options(
            &config.options.clone().unwrap_or_default(),
        ))
    }

    fn source(&self, idx: usize) -> Option<Source> {
        Some(Source {
            task_arn: self.task_arn.clone(),
            container: self.slots[idx].name.clone(),
            runtime_id: self.slots[idx].id.clone()?,
        })
    }

    /// Opens the log stream of container `idx` before it starts; `Err` when it cannot start.
    pub(super) async fn open_logs(&mut self, idx: usize) -> Result<(), StopCause> {
        let failed = |reason: String| StopCause::Failed {
            container: self.slots[idx].name.clone(),
            reason: format!(
                "CannotStartContainerError: failed to initialize logging driver: {reason}"
            ),
        };
        match self.awslogs(idx) {
            None => return Ok(()),
            Some(Err(e)) => return Err(failed(e)),
            Some(Ok(_)) => {}
        }
        let Some(shipper) = self.shared.config.logs.clone() else {
            return Err(failed(
                "this agent ships no logs: it runs without a link to the server".into(),
            ));
        };
        let Some(source) = self.source(idx) else {
            return Ok(());
        };
        let began = tokio::time::Instant::now();
        let mut backoff = crate::backoff::Backoff::default();
        loop {
            match shipper.open(&source).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() && began.elapsed() < OPEN_WINDOW => {
                    self.check_stop()?;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(ClientError::Api { kind, message, .. }) => {
                    return Err(failed(format!(
                        "failed to create Cloudwatch log stream: {kind}: {message}",
                    )))
                }
                Err(e) => {
                    return Err(failed(format!(
                        "failed to create Cloudwatch log stream: {e}"
                    )))
                }
            }
        }
    }

    /// Follows the output of container `idx` if it logs with awslogs (once per container).
    pub(super) fn follow_logs(&self, idx: usize) {
        let (Some(Ok(options)), Some(shipper), Some(source)) = (
            self.awslogs(idx),
            self.shared.config.logs.as_ref(),
            self.source(idx),
        ) else {
            return;
        };
        shipper.follow(std::sync::Arc::clone(&self.shared.runtime), source, options);
    }
}
