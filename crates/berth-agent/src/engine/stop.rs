//! The way down of a task: DEACTIVATING → STOPPING (containers stopped in reverse dependency
//! order, each with its stopTimeout) → DEPROVISIONING → STOPPED, then removal of its
//! containers after the cleanup delay.

use super::deps;
use super::report::{epoch_now, ESSENTIAL_CONTAINER_EXITED};
use super::runner::{StopCause, TaskRunner};
use super::slot::Phase;
use crate::runtime::RuntimeError;
use berth_core::gateway::SubmitTaskStateChange;
use berth_core::task_state::TaskStatus;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Stop attempts on one container before the agent gives up on it.
const STOP_ATTEMPTS: u32 = 3;

impl TaskRunner {
    /// Takes the task down for `cause` and reports every step.
    pub(super) async fn stop_task(&mut self, cause: StopCause) {
        let reason = match &cause {
            StopCause::Requested => None,
            StopCause::EssentialExited(_) => Some(ESSENTIAL_CONTAINER_EXITED.to_string()),
            StopCause::Failed { reason, .. } => Some(reason.clone()),
        };
        match &cause {
            StopCause::Requested => tracing::info!(task = %self.task_arn, "stopping task"),
            StopCause::EssentialExited(name) => {
                tracing::info!(task = %self.task_arn, container = %name, "essential container exited: stopping task")
            }
            StopCause::Failed { container, reason } => {
                tracing::warn!(task = %self.task_arn, %container, "task failed to start: {reason}")
            }
        }
        if let (StopCause::Failed { reason, .. }, Some(idx)) = (&cause, self.slot_of(&cause)) {
            let slot = &mut self.slots[idx];
            slot.reason = Some(reason.clone());
            if slot.phase != Phase::Running {
                slot.phase = Phase::Done;
            }
        }
        let with_reason = || SubmitTaskStateChange {
            reason: reason.clone(),
            ..Default::default()
        };
        self.send(TaskStatus::Deactivating, with_reason());
        self.send(TaskStatus::Stopping, with_reason());
        self.stop_containers().await;
        for slot in &mut self.slots {
            slot.phase = Phase::Done;
        }
        self.send(TaskStatus::Deprovisioning, with_reason());
        let stopped = SubmitTaskStateChange {
            execution_stopped_at: Some(epoch_now()),
            ..with_reason()
        };
        self.send(TaskStatus::Stopped, stopped);
        tracing::info!(task = %self.task_arn, "task stopped");
        self.schedule_cleanup();
    }

    /// Stops every running container, dependents before what they depend on; containers of
    /// one wave stop concurrently.
    async fn stop_containers(&mut self) {
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        loop {
            let running: Vec<(String, Vec<String>)> = self
                .slots
                .iter()
                .filter(|s| s.phase == Phase::Running)
                .map(|s| (s.name.clone(), s.depends_on()))
                .collect();
            if running.is_empty() {
                return;
            }
            let mut stops = JoinSet::new();
            for name in deps::stop_wave(&running) {
                let Some(idx) = self.slots.iter().position(|s| s.name == name) else {
                    continue;
                };
                let Some(id) = self.slots[idx].id.clone() else {
                    self.slots[idx].phase = Phase::Done;
                    continue;
                };
                let timeout = self.slots[idx].stop_timeout(self.shared.config.default_stop_timeout);
                let runtime = Arc::clone(&self.shared.runtime);
                stops.spawn(async move { (idx, runtime.stop_container(&id, timeout).await) });
            }
            while let Some(joined) = stops.join_next().await {
                let Ok((idx, result)) = joined else { continue };
                if let Err(err) = &result {
                    tracing::warn!(task = %self.task_arn, container = %self.slots[idx].name, "cannot stop container: {err}");
                }
                if matches!(result, Err(RuntimeError::NotFound(_))) {
                    self.slots[idx].vanished();
                } else {
                    self.refresh(idx).await;
                }
                if self.slots[idx].phase == Phase::Running {
                    let tried = attempts.entry(idx).or_insert(0);
                    *tried += 1;
                    if *tried >= STOP_ATTEMPTS {
                        let slot = &mut self.slots[idx];
                        slot.phase = Phase::Done;
                        slot.reason.get_or_insert_with(|| {
                            format!(
                                "CannotStopContainerError: gave up after {STOP_ATTEMPTS} attempts"
                            )
                        });
                    }
                }
                self.flush(TaskStatus::Stopping);
            }
        }
    }

    /// Removes the task's containers once the cleanup delay has passed.
    fn schedule_cleanup(&self) {
        let ids: Vec<String> = self.slots.iter().filter_map(|s| s.id.clone()).collect();
        if ids.is_empty() {
            return;
        }
        let runtime = Arc::clone(&self.shared.runtime);
        let delay = self.shared.config.cleanup_delay;
        let task = self.task_arn.clone();
        self.shared.track(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            remove_containers(runtime.as_ref(), &ids, &task).await;
        }));
    }
}

/// Removes containers, ignoring those already gone.
pub(super) async fn remove_containers(
    runtime: &dyn crate::runtime::ContainerRuntime,
    ids: &[String],
    owner: &str,
) {
    for id in ids {
        match runtime.remove_container(id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(err) => {
                tracing::warn!(task = %owner, container = %id, "cannot remove container: {err}")
            }
        }
    }
}
