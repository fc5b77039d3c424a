//! The way down of a task: DEACTIVATING → STOPPING (containers stopped in reverse dependency
//! order, each with its stopTimeout, escalating to a kill, given up after a bound) →
//! DEPROVISIONING → STOPPED, then removal of its containers, and of its task-scoped volumes,
//! after the cleanup delay.

use super::bounds::{bounded, CALL_TIMEOUT, STOP_CALL_GRACE, STOP_SLACK};
use super::deps;
use super::report::{epoch_now, ESSENTIAL_CONTAINER_EXITED};
use super::runner::{StopCause, TaskRunner};
use super::slot::Phase;
use crate::backoff::Backoff;
use crate::runtime::{ContainerRuntime, ContainerState, RuntimeError};
use crate::spec;
use berth_core::gateway::SubmitTaskStateChange;
use berth_core::task_state::TaskStatus;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How stopping one container ended.
#[derive(Debug)]
pub(super) enum StopOutcome {
    /// It is not running (any more); its state.
    Stopped(Box<ContainerState>),
    /// The runtime no longer has it.
    Gone,
    /// Still running, or the runtime never answered, at the deadline; the last problem seen.
    GaveUp(String),
}

/// Stops container `id`: `docker stop` with `timeout` (SIGTERM, SIGKILL after it), then
/// kills when that fails or does not finish, until the container is seen not running or
/// `deadline` passes. Transient failures are retried with backoff.
pub(super) async fn stop_one(
    runtime: &dyn ContainerRuntime,
    id: &str,
    timeout: Duration,
    deadline: Instant,
) -> StopOutcome {
    let mut backoff = Backoff::default();
    let mut last = "the container runtime did not answer".to_string();
    let mut escalate = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return StopOutcome::GaveUp(last);
        }
        let killing = escalate;
        let sent = if killing {
            bounded(CALL_TIMEOUT.min(left), runtime.kill_container(id)).await
        } else {
            bounded(
                (timeout + STOP_CALL_GRACE).min(left),
                runtime.stop_container(id, timeout),
            )
            .await
        };
        let failed = match sent {
            Ok(()) => None,
            Err(RuntimeError::NotFound(_)) => return StopOutcome::Gone,
            Err(err) => {
                escalate = true;
                Some(err)
            }
        };
        // Whatever the call said, the container's own state decides.
        let left = deadline.saturating_duration_since(Instant::now());
        match bounded(CALL_TIMEOUT.min(left), runtime.inspect_container(id)).await {
            Ok(state) if !state.running => return StopOutcome::Stopped(Box::new(state)),
            Ok(_) => {
                escalate = true;
                last = match failed {
                    Some(err) => format!("the container is still running: {err}"),
                    None => "the container is still running".to_string(),
                };
            }
            Err(RuntimeError::NotFound(_)) => return StopOutcome::Gone,
            Err(err) => last = failed.unwrap_or(err).to_string(),
        }
        if killing {
            // A stop that failed escalates to a kill at once; kills are retried with backoff.
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(backoff.next_delay().min(left)).await;
        }
    }
}

/// Stops container `id` however long it takes (for background jobs): rounds of
/// [`stop_one`] with backoff between them until it is not running or is gone.
pub(super) async fn stop_until_gone(
    runtime: &dyn ContainerRuntime,
    id: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut backoff = Backoff::default();
    let mut rounds = 0u32;
    loop {
        let deadline = Instant::now() + timeout + STOP_SLACK;
        match stop_one(runtime, id, timeout, deadline).await {
            StopOutcome::Stopped(_) | StopOutcome::Gone => return Ok(()),
            StopOutcome::GaveUp(last) => {
                rounds += 1;
                if rounds.is_power_of_two() {
                    tracing::warn!(container = %id, "still cannot stop container, retrying: {last}");
                }
                if rounds >= 1000 {
                    return Err(last);
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

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
        self.detach_network().await;
        let stopped = SubmitTaskStateChange {
            execution_stopped_at: Some(epoch_now()),
            ..with_reason()
        };
        self.send(TaskStatus::Stopped, stopped);
        tracing::info!(task = %self.task_arn, "task stopped");
        super::secrets::remove_files(&self.task_arn);
        self.schedule_cleanup();
    }

    /// Frees an awsvpc task's namespace and address (DEPROVISIONING), retried for a while
    /// when the runtime is away; what is left is freed by the agent's next sweep.
    async fn detach_network(&mut self) {
        if self.assigned.task_definition.network_mode.as_deref() != Some("awsvpc") {
            return;
        }
        // A setup still under way finishes first, so that nothing it makes is left behind.
        if let Some(connecting) = self.connecting.take() {
            let _ = connecting.await;
        }
        let Some(networking) = self.shared.config.networking.clone() else {
            return;
        };
        let mut backoff = crate::backoff::Backoff::default();
        for attempt in 1..=5 {
            match networking.detach(&self.task_arn).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(task = %self.task_arn, attempt, "cannot release the task network: {err}");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Stops every running container, dependents before what they depend on; containers of
    /// one wave stop concurrently, each given up `STOP_SLACK` after its stopTimeout (then
    /// reported STOPPED with `CannotStopContainerError` while a background job keeps at it).
    async fn stop_containers(&mut self) {
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
            let mut stops = FuturesUnordered::new();
            for name in deps::stop_wave(&running) {
                let Some(idx) = self.slots.iter().position(|s| s.name == name) else {
                    continue;
                };
                let Some(id) = self.slots[idx].id.clone() else {
                    self.slots[idx].phase = Phase::Done;
                    continue;
                };
                self.slots[idx].stop_sent = true;
                let timeout = self.slots[idx].stop_timeout(self.shared.config.default_stop_timeout);
                let runtime = Arc::clone(&self.shared.runtime);
                stops.push(async move {
                    let deadline = Instant::now() + timeout + STOP_SLACK;
                    let outcome = stop_one(runtime.as_ref(), &id, timeout, deadline).await;
                    (idx, id, timeout, outcome)
                });
            }
            while let Some((idx, id, timeout, outcome)) = stops.next().await {
                match outcome {
                    StopOutcome::Stopped(state) => self.observe(idx, &state),
                    StopOutcome::Gone => self.slots[idx].vanished(),
                    StopOutcome::GaveUp(last) => {
                        tracing::warn!(task = %self.task_arn, container = %self.slots[idx].name, "cannot stop container, reporting it stopped and trying on in the background: {last}");
                        let waited = (timeout + STOP_SLACK).as_secs();
                        self.slots[idx].reason.get_or_insert_with(|| {
                            format!(
                                "CannotStopContainerError: not stopped {waited}s after its stop \
                                 began ({last}); the agent keeps trying"
                            )
                        });
                        let runtime = Arc::clone(&self.shared.runtime);
                        let task = self.task_arn.clone();
                        self.shared.track(tokio::spawn(async move {
                            if let Err(last) =
                                stop_until_gone(runtime.as_ref(), &id, timeout).await
                            {
                                tracing::error!(%task, container = %id, "gave up stopping container: {last}");
                            }
                        }));
                    }
                }
                // Stopped, gone or given up: this container is done either way.
                self.slots[idx].phase = Phase::Done;
                self.flush(TaskStatus::Stopping);
            }
        }
    }

    /// Removes the task's containers once the cleanup delay has passed, then its task-scoped
    /// volumes (shared ones outlive the task).
    fn schedule_cleanup(&self) {
        let ids: Vec<String> = self.slots.iter().filter_map(|s| s.id.clone()).collect();
        // A FARGATE task's own cgroup goes once its containers are gone.
        let cgroup = (self.assigned.task.launch_type.as_deref() == Some("FARGATE")
            && self.shared.config.task_cgroups)
            .then(|| {
                self.task_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        if ids.is_empty() {
            // No container was created, so no volume was either.
            if let Some(task_id) = &cgroup {
                crate::cgroups::remove(task_id);
            }
            return;
        }
        let volumes = spec::task_volume_names(&self.context());
        let runtime = Arc::clone(&self.shared.runtime);
        let delay = self.shared.config.cleanup_delay;
        let task = self.task_arn.clone();
        self.shared.track(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            remove_containers(runtime.as_ref(), &ids, &task).await;
            remove_volumes(runtime.as_ref(), &volumes, &task).await;
            if let Some(task_id) = &cgroup {
                crate::cgroups::remove(task_id);
            }
        }));
    }
}

/// Removes named volumes, ignoring those that do not exist (never created, or gone already).
pub(super) async fn remove_volumes(runtime: &dyn ContainerRuntime, names: &[String], owner: &str) {
    for name in names {
        match bounded(CALL_TIMEOUT, runtime.remove_volume(name)).await {
            Ok(()) => tracing::info!(task = %owner, volume = %name, "removed task volume"),
            Err(RuntimeError::NotFound(_)) => {}
            Err(err) => {
                tracing::warn!(task = %owner, volume = %name, "cannot remove task volume: {err}")
            }
        }
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
