//! The way up of a task: PENDING → admission (`admission`) → images (pulled only when absent)
//! → ACTIVATING → containers created → started in `dependsOn` order → RUNNING, and the watch
//! while it runs.

use super::bounds::{bounded, is_transient, CALL_TIMEOUT};
use super::deps::{self, Readiness, View};
use super::report::epoch_now;
use super::runner::{task_context, StopCause, TaskRunner, Wake};
use super::slot::{Phase, Slot};
use crate::backoff::Backoff;
use crate::registry::RegistryAuth;
use crate::runtime::RuntimeError;
use crate::spec;
use berth_core::gateway::SubmitTaskStateChange;
use berth_core::task_state::TaskStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl TaskRunner {
    /// PENDING → images → ACTIVATING → create → start in dependency order. `Ok` once every
    /// container has started.
    pub(super) async fn start(&mut self) -> Result<(), StopCause> {
        self.check_stop()?;
        // A container re-adopted after it exited while the agent was away.
        self.restart_exited().await;
        self.flush(TaskStatus::Pending);
        self.admit()?;
        if let Some(cycle) = deps::find_cycle(
            &self
                .slots
                .iter()
                .map(|s| (s.name.clone(), s.depends_on()))
                .collect::<Vec<_>>(),
        ) {
            return Err(StopCause::Failed {
                container: cycle[0].clone(),
                reason: format!(
                    "DependencyConditionUnmet: the containers depend on each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            });
        }
        let needs: Vec<(String, Vec<String>)> = self
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.create_after()))
            .collect();
        if let Some(cycle) = deps::find_cycle(&needs) {
            return Err(StopCause::Failed {
                container: cycle[0].clone(),
                reason: format!(
                    "CannotCreateContainerError: the containers need each other to exist first \
                     (volumesFrom, links, pidMode or ipcMode task) in a cycle: {}",
                    cycle.join(" -> ")
                ),
            });
        }
        self.build_specs()?;
        self.apply_secrets().await?;
        // The task's namespace comes up while its images are pulled and containers created.
        self.prepare_network()?;
        self.limit_task()?;
        self.pull_images().await?;
        self.check_stop()?;
        self.join_namespace().await?;
        self.flush(TaskStatus::Activating);
        self.create_containers(&deps::create_order(&needs)).await?;
        self.network_ready().await?;
        self.start_containers().await
    }

    /// Maps every container still to be created to its spec; a container definition that
    /// cannot be (a field Berth does not support, a value Docker cannot take) fails the task.
    fn build_specs(&mut self) -> Result<(), StopCause> {
        let ctx = task_context(&self.shared, &self.assigned, &self.task_arn);
        for slot in self
            .slots
            .iter_mut()
            .filter(|s| s.phase == Phase::NotCreated)
        {
            match spec::container_spec(&ctx, &slot.def) {
                Ok(spec) => slot.spec = Some(spec),
                Err(err) => {
                    return Err(StopCause::Failed {
                        container: slot.name.clone(),
                        reason: format!("CannotCreateContainerError: {err}"),
                    })
                }
            }
        }
        Ok(())
    }

    /// A FARGATE task's own cgroup with its task-level `cpu` and `memory`: its containers are
    /// made under it, so together they use no more.
    fn limit_task(&mut self) -> Result<(), StopCause> {
        let task = &self.assigned.task;
        if task.launch_type.as_deref() != Some("FARGATE") || !self.shared.config.task_cgroups {
            return Ok(());
        }
        let limits = crate::cgroups::TaskLimits {
            cpu_units: task.cpu.as_deref().and_then(|c| c.parse().ok()),
            memory_mib: task.memory.as_deref().and_then(|m| m.parse().ok()),
        };
        let task_id = self
            .task_arn
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let parent = crate::cgroups::create(&task_id, limits)
            .map_err(|e| (self.initialization_failure())(e))?;
        for spec in self.slots.iter_mut().filter_map(|s| s.spec.as_mut()) {
            spec.cgroup_parent = Some(parent.clone());
        }
        Ok(())
    }

    /// Starts an awsvpc task's namespace in the background, while its images are pulled:
    /// its holder is made (`join_namespace` waits for that before the containers are created
    /// to join it), then its interface is brought up (`network_ready` waits for that before
    /// they start).
    fn prepare_network(&mut self) -> Result<(), StopCause> {
        if self.assigned.task_definition.network_mode.as_deref() != Some("awsvpc") {
            return Ok(());
        }
        let failed = self.initialization_failure();
        let Some(networking) = self.shared.config.networking.clone() else {
            return Err(failed(
                "this agent cannot run awsvpc tasks (no CNI plugins)".into(),
            ));
        };
        let Some(network) = self.assigned.task.task_network.clone() else {
            return Err(failed("the server gave the task no network".into()));
        };
        let task_arn = self.task_arn.clone();
        let (prepared_tx, prepared_rx) = tokio::sync::oneshot::channel();
        self.preparing = Some(prepared_rx);
        self.connecting = Some(tokio::spawn(async move {
            let prepared = networking.prepare(&task_arn, &network).await;
            let _ = prepared_tx.send(
                prepared
                    .as_ref()
                    .map(|p| p.sandbox.clone())
                    .map_err(Clone::clone),
            );
            let prepared = prepared?;
            match prepared.ready {
                Some(ready) => Ok(ready),
                None => networking.connect(&task_arn, &prepared.sandbox).await,
            }
        }));
        Ok(())
    }

    /// Makes the containers still to be created join the awsvpc task's namespace, once its
    /// holder exists.
    async fn join_namespace(&mut self) -> Result<(), StopCause> {
        let Some(preparing) = self.preparing.take() else {
            return Ok(());
        };
        let failed = self.initialization_failure();
        let sandbox = tokio::select! {
            biased;
            _ = Self::stop_requested(&mut self.stop) => return Err(StopCause::Requested),
            sandbox = preparing => sandbox,
        }
        .map_err(|_| failed("the task network setup ended".into()))?
        .map_err(&failed)?;
        for spec in self.slots.iter_mut().filter_map(|s| s.spec.as_mut()) {
            spec::join_namespace(spec, &sandbox);
        }
        Ok(())
    }

    /// Waits until the awsvpc task's interface is up (its containers exist by now), and
    /// reports it to the server.
    async fn network_ready(&mut self) -> Result<(), StopCause> {
        let failed = self.initialization_failure();
        let Some(connecting) = self.connecting.as_mut() else {
            return Ok(());
        };
        let outcome = tokio::select! {
            biased;
            _ = Self::stop_requested(&mut self.stop) => return Err(StopCause::Requested),
            outcome = connecting => outcome,
        };
        self.connecting = None;
        let interface = outcome
            .map_err(|e| failed(format!("the task network setup ended: {e}")))?
            .map_err(&failed)?;
        tracing::info!(task = %self.task_arn, address = %interface.private_ipv4_address, "task network attached");
        let report = SubmitTaskStateChange {
            network_interface: Some(interface),
            ..Default::default()
        };
        self.send(TaskStatus::Pending, report);
        Ok(())
    }

    /// Makes the images of containers still to be created ready, as the pull behavior says,
    /// all within the pull timeout (transient runtime failures retried meanwhile).
    async fn pull_images(&mut self) -> Result<(), StopCause> {
        let mut images: Vec<(String, String, Option<RegistryAuth>)> = Vec::new();
        for slot in self.slots.iter().filter(|s| s.phase == Phase::NotCreated) {
            if let Some(spec) = &slot.spec {
                if !images.iter().any(|(image, _, _)| *image == spec.image) {
                    images.push((
                        spec.image.clone(),
                        slot.name.clone(),
                        slot.registry_auth.clone(),
                    ));
                }
            }
        }
        if images.is_empty() {
            return Ok(());
        }
        let started = SubmitTaskStateChange {
            pull_started_at: Some(epoch_now()),
            ..Default::default()
        };
        self.send(TaskStatus::Pending, started);
        let shared = Arc::clone(&self.shared);
        let task_arn = self.task_arn.clone();
        let limit = self.shared.config.pull_timeout;
        let deadline = Instant::now() + limit;
        let mut outcome = Ok(());
        for (image, container, auth) in images {
            let mut last_error = None;
            let pulled = tokio::select! {
                biased;
                _ = Self::stop_requested(&mut self.stop) => None,
                pulled = tokio::time::timeout_at(
                    deadline,
                    pull_one(&shared, &image, auth.as_ref(), &task_arn, &mut last_error),
                ) => Some(pulled),
            };
            let result = match pulled {
                None => Err(StopCause::Requested),
                Some(Ok(Ok(()))) => Ok(()),
                Some(Ok(Err(err))) => Err(StopCause::Failed {
                    container,
                    reason: pull_reason(&image, &err),
                }),
                Some(Err(_)) => Err(StopCause::Failed {
                    container,
                    reason: format!(
                        "CannotPullContainerError: pull image {image}: not done within the \
                         agent's image pull timeout ({}s){}",
                        limit.as_secs(),
                        last_error
                            .map(|e| format!("; last error: {e}"))
                            .unwrap_or_default()
                    ),
                }),
            };
            if let Err(cause) = result {
                outcome = Err(cause);
                break;
            }
        }
        let stopped = SubmitTaskStateChange {
            pull_stopped_at: Some(epoch_now()),
            ..Default::default()
        };
        self.send(TaskStatus::Pending, stopped);
        outcome
    }

    /// Creates every container not yet on the host, in `order` (task definition order, each
    /// container after those it needs to exist: volumesFrom sources, links, namespaces).
    async fn create_containers(&mut self, order: &[usize]) -> Result<(), StopCause> {
        for &idx in order {
            if self.slots[idx].phase != Phase::NotCreated {
                continue;
            }
            self.check_stop()?;
            let Some(spec) = self.slots[idx].spec.clone() else {
                continue;
            };
            let created = self
                .with_retries(|runtime| {
                    let spec = spec.clone();
                    async move { runtime.create_container(&spec).await }
                })
                .await?;
            match created {
                Ok(id) => {
                    self.slots[idx].id = Some(id);
                    self.slots[idx].phase = Phase::Created;
                }
                Err(err) => {
                    if !self.adopt_existing(idx).await {
                        return Err(StopCause::Failed {
                            container: self.slots[idx].name.clone(),
                            reason: create_reason(&err),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// After a failed create: takes over a container of this task with that name if one
    /// exists already (never a second copy). Returns whether it did.
    async fn adopt_existing(&mut self, idx: usize) -> bool {
        let mut labels =
            spec::instance_labels(&self.shared.config.cluster, &self.shared.config.instance_id);
        labels.insert(spec::LABEL_TASK_ARN.to_string(), self.task_arn.clone());
        labels.insert(
            spec::LABEL_CONTAINER_NAME.to_string(),
            self.slots[idx].name.clone(),
        );
        let listed = bounded(CALL_TIMEOUT, self.runtime().list_containers(&labels)).await;
        match listed {
            Ok(found) => match found.first() {
                Some(state) => {
                    self.observe(idx, state);
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    /// Starts containers as their dependencies allow, until all have started.
    async fn start_containers(&mut self) -> Result<(), StopCause> {
        let began = Instant::now();
        loop {
            self.restart_exited().await;
            self.flush(TaskStatus::Activating);
            if let Some(name) = self.essential_exited() {
                return Err(StopCause::EssentialExited(name));
            }
            let views: Vec<View> = self.slots.iter().map(Slot::view).collect();
            let mut ready = Vec::new();
            let mut next_deadline: Option<Instant> = None;
            for (idx, slot) in self.slots.iter().enumerate() {
                if slot.phase != Phase::Created {
                    continue;
                }
                match deps::readiness(&slot.name, &slot.start_dependencies(), &views) {
                    Readiness::Ready => ready.push(idx),
                    Readiness::Never(reason) => {
                        return Err(StopCause::Failed {
                            container: slot.name.clone(),
                            reason,
                        })
                    }
                    Readiness::Waiting => {
                        if let Some(limit) =
                            slot.def.start_timeout.and_then(|s| u64::try_from(s).ok())
                        {
                            let deadline = began + Duration::from_secs(limit);
                            if Instant::now() >= deadline {
                                return Err(StopCause::Failed {
                                    container: slot.name.clone(),
                                    reason: format!(
                                        "DependencyConditionUnmet: container '{}' waited {limit}s \
                                         (its startTimeout) for its dependencies",
                                        slot.name
                                    ),
                                });
                            }
                            next_deadline =
                                Some(next_deadline.map_or(deadline, |d| d.min(deadline)));
                        }
                    }
                }
            }
            if !ready.is_empty() {
                for idx in ready {
                    self.check_stop()?;
                    self.start_one(idx).await?;
                }
                continue;
            }
            if self
                .slots
                .iter()
                .all(|s| s.started || s.phase == Phase::Done)
            {
                return Ok(());
            }
            match self.wake(next_deadline).await {
                Wake::Stop => return Err(StopCause::Requested),
                other => self.on_wake(other).await,
            }
        }
    }

    async fn start_one(&mut self, idx: usize) -> Result<(), StopCause> {
        let Some(id) = self.slots[idx].id.clone() else {
            return Ok(());
        };
        self.open_logs(idx).await?;
        let started = self
            .with_retries(|runtime| {
                let id = id.clone();
                async move { runtime.start_container(&id).await }
            })
            .await?;
        if let Err(err) = started {
            return Err(StopCause::Failed {
                container: self.slots[idx].name.clone(),
                reason: start_reason(&err),
            });
        }
        tracing::info!(task = %self.task_arn, container = %self.slots[idx].name, "container started");
        self.follow_logs(idx);
        self.refresh(idx).await;
        if self.slots[idx].phase == Phase::Created {
            // Started, but the runtime has not caught up: count it as running.
            self.slots[idx].phase = Phase::Running;
            self.slots[idx].started = true;
            self.slots[idx].seen_running_at = Some(Instant::now());
        }
        self.flush(TaskStatus::Activating);
        Ok(())
    }

    /// While RUNNING: reports container changes until a stop is asked for or an essential
    /// container exits.
    pub(super) async fn watch_running(&mut self) -> StopCause {
        loop {
            self.restart_exited().await;
            self.flush(TaskStatus::Running);
            if let Some(name) = self.essential_exited() {
                return StopCause::EssentialExited(name);
            }
            match self.wake(None).await {
                Wake::Stop => return StopCause::Requested,
                other => self.on_wake(other).await,
            }
        }
    }
}

/// Makes `image` ready to run as the pull behavior says (`PullBehavior`): pulled, or the
/// host's own; transient runtime failures are retried with backoff until the caller's
/// deadline (the last one kept in `last_error`).
async fn pull_one(
    shared: &super::Shared,
    image: &str,
    task_auth: Option<&RegistryAuth>,
    task_arn: &str,
    last_error: &mut Option<RuntimeError>,
) -> Result<(), RuntimeError> {
    use super::PullBehavior;
    let runtime = shared.runtime.as_ref();
    let behavior = shared.config.pull_behavior;
    let mut backoff = Backoff::default();
    loop {
        let attempt = async {
            let present = match bounded(CALL_TIMEOUT, runtime.image_present(image)).await {
                Ok(present) => present,
                Err(err) if is_transient(&err) => return Err(err),
                // The check failed: the pull says what is wrong, if anything.
                Err(_) => false,
            };
            let pulled_before = shared
                .pulled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(image);
            let use_cached = match behavior {
                PullBehavior::PreferCached => present,
                PullBehavior::Once => present && pulled_before,
                PullBehavior::Default | PullBehavior::Always => false,
            };
            if use_cached {
                return Ok(());
            }
            tracing::info!(task = %task_arn, %image, "pulling image");
            // The task's repositoryCredentials, else the agent's config.json.
            let auth = task_auth.cloned().or_else(|| {
                shared
                    .config
                    .registry_auth
                    .as_ref()
                    .and_then(|config| config.auth_for(image))
            });
            match runtime.pull_image(image, auth.as_ref()).await {
                Ok(()) => {
                    shared
                        .pulled
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(image.to_string());
                    Ok(())
                }
                Err(err) if is_transient(&err) => Err(err),
                Err(err) if present && behavior == PullBehavior::Default => {
                    tracing::warn!(task = %task_arn, %image, "pull failed, running the image this host has: {err}");
                    Ok(())
                }
                Err(err) => Err(err),
            }
        };
        match attempt.await {
            Err(err) if is_transient(&err) => {
                tracing::warn!(task = %task_arn, %image, "cannot pull yet, retrying: {err}");
                *last_error = Some(err);
                tokio::time::sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
    }
}

fn pull_reason(image: &str, err: &RuntimeError) -> String {
    match err {
        RuntimeError::ImagePull { .. } => err.to_string(),
        other => format!("CannotPullContainerError: pull image {image}: {other}"),
    }
}

fn create_reason(err: &RuntimeError) -> String {
    match err {
        RuntimeError::Create(_) => err.to_string(),
        other => format!("CannotCreateContainerError: {other}"),
    }
}

fn start_reason(err: &RuntimeError) -> String {
    match err {
        RuntimeError::Start(_) => err.to_string(),
        other => format!("CannotStartContainerError: {other}"),
    }
}
