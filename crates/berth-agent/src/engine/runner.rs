//! One task's runner: its containers (slots), the reports it sends, and how it waits for
//! runtime events, stop requests and resyncs. The way up is in `start.rs`, the way down
//! (stops, final reports, cleanup) in `stop.rs`.

use super::bounds::{self, bounded, is_transient, CALL_TIMEOUT, RETRY_WINDOW};
use super::slot::{Phase, Slot};
use super::Shared;
use crate::backoff::Backoff;
use crate::runtime::{ContainerRuntime, ContainerState, RuntimeError, RuntimeEvent};
use crate::spec;
use berth_core::gateway::{AssignedTask, SubmitTaskStateChange};
use berth_core::task_state::TaskStatus;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// Why a task goes down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StopCause {
    /// Its desired status is STOPPED, or it left the instance's desired set.
    Requested,
    /// An essential container exited.
    EssentialExited(String),
    /// A container could not be started; the reason names the error.
    Failed { container: String, reason: String },
}

/// What woke the runner up.
pub(super) enum Wake {
    Stop,
    Event(RuntimeEvent),
    Resync,
    Deadline,
    /// The engine's event feed is gone: the periodic resync alone keeps the runner current.
    EventsClosed,
}

/// The runner of one task.
pub(super) struct TaskRunner {
    pub shared: Arc<Shared>,
    pub task_arn: String,
    pub assigned: AssignedTask,
    pub slots: Vec<Slot>,
    /// The task status the server has been told (or had when the task came).
    pub status: TaskStatus,
    pub stop: watch::Receiver<bool>,
    events: broadcast::Receiver<RuntimeEvent>,
    events_closed: bool,
    resync: Interval,
    /// An awsvpc task's namespace holder being made: its container id (`start::prepare_network`).
    pub preparing: Option<tokio::sync::oneshot::Receiver<Result<String, String>>>,
    /// An awsvpc task's interface being brought up (`start::prepare_network`).
    pub connecting:
        Option<tokio::task::JoinHandle<Result<berth_core::awsvpc::InterfaceReport, String>>>,
}

impl TaskRunner {
    /// A runner for `assigned`, taking over `adopted` containers of a previous agent run.
    pub fn new(
        shared: Arc<Shared>,
        assigned: AssignedTask,
        adopted: Vec<ContainerState>,
        stop: watch::Receiver<bool>,
        events: broadcast::Receiver<RuntimeEvent>,
    ) -> TaskRunner {
        let task = &assigned.task;
        let td = &assigned.task_definition;
        let mut slots: Vec<Slot> = td
            .container_definitions
            .iter()
            .flatten()
            .map(|def| Slot::new(td, def))
            .collect();
        for slot in &mut slots {
            let known = task
                .containers
                .iter()
                .flatten()
                .find(|c| c.name.as_deref() == Some(&slot.name));
            if let Some(known) = known {
                slot.reported = known.last_status.unwrap_or(TaskStatus::Pending);
                slot.reported_health = known.health_status;
                slot.id = known.runtime_id.clone();
                slot.exit_code = known.exit_code.map(i64::from);
                slot.restarts = super::restart::restarts_in(known.reason.as_deref());
            }
            let mine = adopted.iter().find(|c| {
                spec::task_container_of(&c.labels).is_some_and(|(_, name)| name == slot.name)
            });
            match (mine, slot.reported) {
                (Some(state), _) => {
                    slot.observe(state);
                    if state.running {
                        slot.seen_running_at = Some(Instant::now());
                    }
                }
                (None, TaskStatus::Stopped) => {
                    slot.phase = Phase::Done;
                    slot.started = slot.id.is_some();
                }
                (None, TaskStatus::Running) => {
                    slot.started = true;
                    slot.vanished();
                }
                // PENDING: it never started.
                (None, _) => slot.id = None,
            }
        }
        let status = TaskStatus::of(task);
        let task_arn = task.task_arn.clone().unwrap_or_default();
        let mut resync = tokio::time::interval(shared.config.resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        resync.reset();
        TaskRunner {
            shared,
            task_arn,
            assigned,
            slots,
            status,
            stop,
            events,
            events_closed: false,
            resync,
            preparing: None,
            connecting: None,
        }
    }

    /// Drives the task to RUNNING, keeps it there, then takes it down and cleans up.
    pub async fn run(mut self) {
        // Containers taken over from the agent's last run: their output may not all be shipped.
        for idx in 0..self.slots.len() {
            if self.slots[idx].started {
                self.follow_logs(idx);
            }
        }
        let cause = match self.start().await {
            Ok(()) => {
                self.flush(TaskStatus::Running);
                self.watch_running().await
            }
            Err(cause) => cause,
        };
        self.stop_task(cause).await;
    }

    /// The task as the spec mapping sees it.
    pub fn context(&self) -> spec::TaskContext<'_> {
        task_context(&self.shared, &self.assigned, &self.task_arn)
    }

    pub fn runtime(&self) -> &dyn ContainerRuntime {
        self.shared.runtime.as_ref()
    }

    fn slot_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Sends what changed, with the task at `status` (never lower than it already is).
    pub fn flush(&mut self, status: TaskStatus) {
        self.send(status, SubmitTaskStateChange::default());
    }

    /// Sends `report` (its extras: reason, timestamps) with every container change not yet
    /// told, the task at `status`. Sends nothing when there is nothing new.
    pub fn send(&mut self, status: TaskStatus, mut report: SubmitTaskStateChange) {
        let mut changes = Vec::new();
        for slot in &mut self.slots {
            slot.take_changes(&mut changes);
        }
        let status = status.max(self.status);
        let extras = report.reason.is_some()
            || report.network_interface.is_some()
            || report.pull_started_at.is_some()
            || report.pull_stopped_at.is_some()
            || report.execution_stopped_at.is_some();
        if changes.is_empty() && status == self.status && !extras {
            return;
        }
        self.status = status;
        if self.shared.config.metadata.is_some() {
            self.shared.board.known(&self.task_arn, status);
        }
        report.cluster = Some(self.shared.config.cluster.clone());
        report.task = Some(self.task_arn.clone());
        report.status = Some(status.as_str().to_string());
        report.containers = (!changes.is_empty()).then_some(changes);
        // The reporter outlives every runner; if it is gone the agent is shutting down.
        let _ = self.shared.reports.send(report);
    }

    /// How the task fails to start before its containers exist (ECS's
    /// `ResourceInitializationError`, charged to its first container), for any reason.
    pub fn initialization_failure(&self) -> impl Fn(String) -> StopCause + 'static {
        let container = self
            .slots
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        move |reason| StopCause::Failed {
            container: container.clone(),
            reason: format!("ResourceInitializationError: {reason}"),
        }
    }

    /// Resolves when a stop is requested.
    pub async fn stop_requested(stop: &mut watch::Receiver<bool>) {
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            if stop.changed().await.is_err() {
                // The engine is gone (agent shutting down): never stop on our own.
                std::future::pending::<()>().await;
            }
        }
    }

    fn stop_is_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits for the next thing to react to.
    pub async fn wake(&mut self, deadline: Option<Instant>) -> Wake {
        let deadline_sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = Self::stop_requested(&mut self.stop) => Wake::Stop,
            event = self.events.recv(), if !self.events_closed => match event {
                Ok(event) => Wake::Event(event),
                Err(broadcast::error::RecvError::Lagged(_)) => Wake::Event(RuntimeEvent::Resync),
                Err(broadcast::error::RecvError::Closed) => Wake::EventsClosed,
            },
            _ = self.resync.tick() => Wake::Resync,
            _ = deadline_sleep => Wake::Deadline,
        }
    }

    /// Re-reads the container `idx` from the runtime (at most [`CALL_TIMEOUT`]); returns
    /// whether the runtime answered.
    pub async fn refresh(&mut self, idx: usize) -> bool {
        let Some(id) = self.slots[idx].id.clone() else {
            return true;
        };
        match bounded(CALL_TIMEOUT, self.runtime().inspect_container(&id)).await {
            Ok(state) => {
                self.observe(idx, &state);
                true
            }
            Err(RuntimeError::NotFound(_)) => {
                self.slots[idx].vanished();
                true
            }
            Err(err) => {
                if is_transient(&err) {
                    self.shared.note_outage();
                }
                tracing::warn!(task = %self.task_arn, container = %self.slots[idx].name, "cannot inspect container: {err}");
                false
            }
        }
    }

    /// Takes in the runtime's `state` of container `idx`. A container found exited that the
    /// agent did not stop, when the runtime was unreachable since it was last seen running,
    /// is explained by that (a Docker daemon restart stops containers without live-restore).
    pub fn observe(&mut self, idx: usize, state: &ContainerState) {
        let slot = &mut self.slots[idx];
        let was_done = slot.phase == Phase::Done;
        slot.observe(state);
        if state.running {
            slot.seen_running_at = Some(Instant::now());
        }
        if !was_done
            && slot.phase == Phase::Done
            && !slot.stop_sent
            && self.shared.outage_after(slot.seen_running_at)
        {
            slot.reason
                .get_or_insert_with(|| bounds::outage_reason(slot.exit_code));
        }
    }

    /// Runs one runtime call, retrying transient failures (runtime unreachable or silent) with
    /// backoff for up to [`RETRY_WINDOW`], each attempt bounded by [`CALL_TIMEOUT`]. A stop
    /// request ends the wait between attempts (never an attempt under way, which could leave
    /// a container the runner does not know of).
    pub async fn with_retries<T, F, Fut>(
        &mut self,
        mut call: F,
    ) -> Result<Result<T, RuntimeError>, StopCause>
    where
        F: FnMut(Arc<dyn ContainerRuntime>) -> Fut,
        Fut: Future<Output = Result<T, RuntimeError>>,
    {
        let give_up = Instant::now() + RETRY_WINDOW;
        let mut backoff = Backoff::default();
        loop {
            self.check_stop()?;
            let result = bounded(CALL_TIMEOUT, call(Arc::clone(&self.shared.runtime))).await;
            match result {
                Err(err) if is_transient(&err) && Instant::now() < give_up => {
                    self.shared.note_outage();
                    tracing::warn!(task = %self.task_arn, "container runtime call failed, retrying: {err}");
                    let delay = backoff.next_delay();
                    tokio::select! {
                        biased;
                        _ = Self::stop_requested(&mut self.stop) => return Err(StopCause::Requested),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Re-reads every container that exists.
    pub async fn refresh_all(&mut self) {
        for idx in 0..self.slots.len() {
            if matches!(self.slots[idx].phase, Phase::Created | Phase::Running)
                && !self.refresh(idx).await
            {
                // The runtime is away: the others would only time out too.
                return;
            }
        }
    }

    /// Reacts to a wake-up that is not a stop or a deadline.
    pub async fn on_wake(&mut self, wake: Wake) {
        match wake {
            Wake::Event(RuntimeEvent::Resync) | Wake::Resync => self.refresh_all().await,
            Wake::Event(
                RuntimeEvent::Started { id }
                | RuntimeEvent::Died { id, .. }
                | RuntimeEvent::HealthChanged { id, .. },
            ) => {
                if let Some(idx) = self
                    .slots
                    .iter()
                    .position(|s| s.id.as_deref() == Some(id.as_str()))
                {
                    self.refresh(idx).await;
                }
            }
            Wake::EventsClosed => self.events_closed = true,
            Wake::Stop | Wake::Deadline => {}
        }
    }

    /// The essential container that has exited, if any.
    pub fn essential_exited(&self) -> Option<String> {
        self.slots
            .iter()
            .find(|s| s.essential() && s.started && s.phase == Phase::Done)
            .map(|s| s.name.clone())
    }

    pub fn check_stop(&self) -> Result<(), StopCause> {
        if self.stop_is_requested() {
            Err(StopCause::Requested)
        } else {
            Ok(())
        }
    }

    /// The slot of the container named in a failure.
    pub fn slot_of(&self, cause: &StopCause) -> Option<usize> {
        match cause {
            StopCause::Failed { container, .. } | StopCause::EssentialExited(container) => {
                self.slot_index(container)
            }
            StopCause::Requested => None,
        }
    }
}

/// The spec mapping's view of `assigned` on this host.
pub(super) fn task_context<'a>(
    shared: &'a Shared,
    assigned: &'a AssignedTask,
    task_arn: &'a str,
) -> spec::TaskContext<'a> {
    spec::TaskContext {
        cluster: &shared.config.cluster,
        container_instance: &shared.config.instance_id,
        task_arn,
        task_definition: &assigned.task_definition,
        overrides: assigned.task.overrides.as_ref(),
        agent_home: shared.config.agent_home.as_deref(),
        metadata: shared.config.metadata.as_deref(),
    }
}
