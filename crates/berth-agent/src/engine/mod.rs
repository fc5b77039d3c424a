//! The task engine: converges this host's containers to the tasks the server assigns it. One
//! runner (a tokio task) per task drives its containers through ECS's lifecycle and emits
//! `SubmitTaskStateChange` reports; the engine starts and stops runners as desired states
//! arrive, and on start re-adopts the containers a previous agent run left behind. How long it
//! waits for the runtime is bounded (`bounds`).

mod admission;
pub mod bounds;
mod deps;
mod logs;
mod report;
mod restart;
mod runner;
mod secrets;
mod slot;
mod start;
mod stop;

#[cfg(test)]
mod tests;

use crate::runtime::{ContainerRuntime, ContainerState, RuntimeError, RuntimeEvent};
use crate::spec;
use berth_core::gateway::{DesiredState, SubmitTaskStateChange};
use berth_core::task_definition::admission::Allowances;
use berth_core::task_state::TaskStatus;
use runner::TaskRunner;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where the engine's reports go, in the order each task emits them.
pub type ReportSender = mpsc::UnboundedSender<SubmitTaskStateChange>;

/// What the engine needs to know about its host and its habits.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Cluster name.
    pub cluster: String,
    /// Id (32 hex digits) of this container instance: its containers carry it as a label.
    pub instance_id: String,
    /// How long stopped containers stay before they are removed.
    pub cleanup_delay: Duration,
    /// Time between SIGTERM and SIGKILL for containers without a `stopTimeout`.
    pub default_stop_timeout: Duration,
    /// How often runners re-read their containers, in case a runtime event was lost.
    pub resync_interval: Duration,
    /// The agent's home (`crate::identity::home_id`), labelled on every container it creates.
    pub agent_home: Option<String>,
    /// How long PENDING (image checks and pulls, with retries) may last.
    pub pull_timeout: Duration,
    /// What this host allows of task definitions that grant root on it (nothing by
    /// default); a task asking for more is refused before any container is created.
    pub allowances: Allowances,
    /// The task metadata endpoint its containers are told of, if it serves one.
    pub metadata: Option<Arc<crate::metadata::MetadataEndpoint>>,
    /// The awslogs driver; without it, containers that log with awslogs cannot start.
    pub logs: Option<Arc<crate::logs::LogShipper>>,
    /// When images are pulled (ECS's `ECS_IMAGE_PULL_BEHAVIOR`).
    pub pull_behavior: PullBehavior,
    /// Registry credentials for every pull (a Docker `config.json`).
    pub registry_auth: Option<Arc<crate::registry::DockerConfig>>,
    /// How runners reach the server for what tasks need as they start (their secrets).
    pub server: Option<ServerLink>,
    /// How awsvpc tasks get their network; without it they fail to start.
    pub networking: Option<Arc<dyn crate::awsvpc::TaskNetworking>>,
    /// Whether FARGATE tasks get a cgroup of their own holding their task-level `cpu` and
    /// `memory` (`crate::cgroups`: Docker's cgroupfs driver, the agent as root).
    pub task_cgroups: bool,
}

/// The server, and who this agent is on it.
#[derive(Debug, Clone)]
pub struct ServerLink {
    pub client: crate::client::ServerClient,
    pub cluster: String,
    /// This container instance's id.
    pub instance_id: String,
}

/// When the agent pulls a task's images, as ECS's `ECS_IMAGE_PULL_BEHAVIOR` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullBehavior {
    /// Pull every time; when the pull fails, run the image the host has, if any.
    #[default]
    Default,
    /// Pull every time; a failed pull fails the task.
    Always,
    /// Pull the first time this agent runs the image, then use the host's.
    Once,
    /// Use the host's image; pull only when it has none.
    PreferCached,
}

impl std::str::FromStr for PullBehavior {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "default" => Ok(PullBehavior::Default),
            "always" => Ok(PullBehavior::Always),
            "once" => Ok(PullBehavior::Once),
            "prefer-cached" => Ok(PullBehavior::PreferCached),
            other => Err(format!(
                "'{other}' is not an image pull behavior: use default, always, once or prefer-cached"
            )),
        }
    }
}

impl EngineConfig {
    /// A configuration with ECS's defaults: cleanup after 1 h, stop timeout 30 s; nothing
    /// that grants root on the host allowed.
    pub fn new(cluster: &str, instance_id: &str) -> EngineConfig {
        EngineConfig {
            cluster: cluster.to_string(),
            instance_id: instance_id.to_string(),
            cleanup_delay: Duration::from_secs(3600),
            default_stop_timeout: spec::DEFAULT_STOP_TIMEOUT,
            resync_interval: Duration::from_secs(30),
            agent_home: None,
            pull_timeout: bounds::DEFAULT_PULL_TIMEOUT,
            allowances: Allowances::default(),
            metadata: None,
            logs: None,
            pull_behavior: PullBehavior::Default,
            registry_auth: None,
            server: None,
            networking: None,
            task_cgroups: false,
        }
    }
}

/// What runners share.
pub(crate) struct Shared {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub config: EngineConfig,
    pub reports: ReportSender,
    background: Mutex<Vec<JoinHandle<()>>>,
    /// When the runtime was last seen unreachable (a call failed, or its event stream broke).
    outage: Mutex<Option<Instant>>,
    /// The tasks as the metadata endpoint shows them (kept only when it is served).
    pub board: Arc<crate::metadata::TaskBoard>,
    /// Images this engine pulled (`PullBehavior::Once`).
    pub pulled: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    /// Records that the runtime is unreachable now.
    pub fn note_outage(&self) {
        *self.outage.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Whether the runtime was unreachable after `since` (a container last seen running
    /// then), within the last [`bounds::OUTAGE_WINDOW`]: an exit found now may be its doing.
    pub fn outage_after(&self, since: Option<Instant>) -> bool {
        self.outage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| {
                at.elapsed() < bounds::OUTAGE_WINDOW && since.is_none_or(|seen| at > seen)
            })
    }

    /// Keeps a background job so it ends with the engine.
    pub fn track(&self, handle: JoinHandle<()>) {
        let mut jobs = self.background.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|job| !job.is_finished());
        jobs.push(handle);
    }
}

struct TaskEntry {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// The task engine of one container instance.
pub struct Engine {
    shared: Arc<Shared>,
    tasks: HashMap<String, TaskEntry>,
    /// Containers found at start, by task ARN, until the first desired state claims them.
    found: Option<HashMap<String, Vec<ContainerState>>>,
    events: broadcast::Sender<RuntimeEvent>,
    forwarder: JoinHandle<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Engine {
    /// Subscribes to the runtime's events for this instance's containers and lists the ones
    /// that exist, to be re-adopted when the first desired state arrives.
    pub async fn start(
        runtime: Arc<dyn ContainerRuntime>,
        config: EngineConfig,
        reports: ReportSender,
    ) -> Result<Engine, RuntimeError> {
        let labels = spec::instance_labels(&config.cluster, &config.instance_id);
        let receiver = bounds::bounded(bounds::CALL_TIMEOUT, runtime.events(&labels)).await?;
        let existing =
            bounds::bounded(bounds::CALL_TIMEOUT, runtime.list_containers(&labels)).await?;
        let mut found: HashMap<String, Vec<ContainerState>> = HashMap::new();
        // Pause containers hold awsvpc namespaces: the networking keeps them, not the runners.
        for container in existing
            .into_iter()
            .filter(|c| !c.labels.contains_key(crate::awsvpc::LABEL_TASK_NETWORK))
        {
            let task = spec::task_container_of(&container.labels)
                .map(|(task, _)| task)
                .unwrap_or_default();
            found.entry(task).or_default().push(container);
        }
        if !found.is_empty() {
            tracing::info!(
                containers = found.values().map(Vec::len).sum::<usize>(),
                "found containers of a previous run"
            );
        }
        let shared = Arc::new(Shared {
            runtime,
            config,
            reports,
            background: Mutex::new(Vec::new()),
            outage: Mutex::new(None),
            board: Arc::default(),
            pulled: Mutex::default(),
        });
        let (events, _) = broadcast::channel(1024);
        let forwarder = tokio::spawn(forward_events(
            Arc::clone(&shared),
            labels,
            receiver,
            events.clone(),
        ));
        Ok(Engine {
            shared,
            tasks: HashMap::new(),
            found: Some(found),
            events,
            forwarder,
        })
    }

    /// Converges to `desired`: starts runners for new tasks, tells runners of tasks whose
    /// desired status is STOPPED or that left the set to stop. Idempotent.
    pub fn apply(&mut self, desired: &DesiredState) {
        let mut found = self.found.take();
        let mut wanted: HashSet<&str> = HashSet::new();
        for assigned in &desired.tasks {
            let Some(arn) = assigned.task.task_arn.as_deref() else {
                continue;
            };
            wanted.insert(arn);
            if self.shared.config.metadata.is_some() {
                self.shared.board.post(assigned);
            }
            // A DEACTIVATING task is still being deregistered from its load balancers: it
            // keeps serving until the server moves it on to STOPPING.
            let stop = assigned.task.desired_status == Some(TaskStatus::Stopped)
                && TaskStatus::of(&assigned.task) != TaskStatus::Deactivating;
            if let Some(entry) = self.tasks.get(arn) {
                if stop {
                    entry.stop.send_replace(true);
                }
                continue;
            }
            if TaskStatus::of(&assigned.task) == TaskStatus::Stopped {
                continue;
            }
            let adopted = found
                .as_mut()
                .and_then(|f| f.remove(arn))
                .unwrap_or_default();
            if !adopted.is_empty() {
                tracing::info!(task = %arn, containers = adopted.len(), "re-adopting containers");
            }
            let (stop_tx, stop_rx) = watch::channel(stop);
            let runner = TaskRunner::new(
                Arc::clone(&self.shared),
                assigned.clone(),
                adopted,
                stop_rx,
                self.events.subscribe(),
            );
            let handle = tokio::spawn(runner.run());
            self.tasks.insert(
                arn.to_string(),
                TaskEntry {
                    stop: stop_tx,
                    handle,
                },
            );
        }
        let board = &self.shared.board;
        self.tasks.retain(|arn, entry| {
            if wanted.contains(arn.as_str()) {
                return true;
            }
            if entry.handle.is_finished() {
                board.remove(arn);
                return false;
            }
            entry.stop.send_replace(true);
            true
        });
        if let Some(orphans) = found {
            self.retire_orphans(orphans);
            self.sweep_networks(desired);
        }
    }

    /// Stops and later removes containers (and task-scoped volumes) of tasks the server no
    /// longer assigns here. The cleanup delay counts from when they exited, so that an agent
    /// restarted more often than the delay still removes them.
    fn retire_orphans(&self, orphans: HashMap<String, Vec<ContainerState>>) {
        for (task, containers) in orphans {
            tracing::info!(%task, containers = containers.len(), "stopping containers of a task no longer assigned here");
            let delay = remaining_cleanup(&containers, self.shared.config.cleanup_delay);
            let shared = Arc::clone(&self.shared);
            self.shared.track(tokio::spawn(async move {
                let runtime = shared.runtime.as_ref();
                for container in containers.iter().filter(|c| c.running) {
                    let timeout = shared.config.default_stop_timeout;
                    if let Err(err) = stop::stop_until_gone(runtime, &container.id, timeout).await
                    {
                        tracing::warn!(%task, container = %container.id, "cannot stop container: {err}");
                    }
                }
                tokio::time::sleep(delay).await;
                let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
                stop::remove_containers(runtime, &ids, &task).await;
                stop::remove_volumes(runtime, &task_volumes(&containers), &task).await;
            }));
        }
    }

    /// Once, when the first desired state arrives: frees the awsvpc networks of tasks that
    /// are no longer here or have stopped (what an agent killed mid-way left behind).
    fn sweep_networks(&self, desired: &DesiredState) {
        let Some(networking) = self.shared.config.networking.clone() else {
            return;
        };
        let keep: HashSet<String> = desired
            .tasks
            .iter()
            .filter(|a| TaskStatus::of(&a.task) != TaskStatus::Stopped)
            .filter_map(|a| a.task.task_arn.clone())
            .collect();
        self.shared.track(tokio::spawn(async move {
            networking.sweep(&keep).await;
        }));
    }

    /// The tasks as the metadata endpoint shows them.
    pub fn board(&self) -> Arc<crate::metadata::TaskBoard> {
        Arc::clone(&self.shared.board)
    }

    /// ARNs of the tasks whose runners are still at work.
    pub fn active_tasks(&self) -> Vec<String> {
        let mut arns: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, e)| !e.handle.is_finished())
            .map(|(arn, _)| arn.clone())
            .collect();
        arns.sort();
        arns
    }
}

impl Drop for Engine {
    /// Ends the runners and background jobs; containers keep running (ECS behaviour when the
    /// agent stops), to be re-adopted by the next run.
    fn drop(&mut self) {
        self.forwarder.abort();
        for entry in self.tasks.values() {
            entry.handle.abort();
        }
        let jobs = self
            .shared
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for job in jobs.iter() {
            job.abort();
        }
    }
}

/// The task-scoped volumes `containers` (of one task) use, each once.
fn task_volumes(containers: &[ContainerState]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for container in containers {
        for volume in &container.volumes {
            if spec::is_task_volume_of(volume, &container.labels) && !names.contains(volume) {
                names.push(volume.clone());
            }
        }
    }
    names
}

/// How much of `cleanup_delay` is left for `containers`: all of it while one still runs,
/// else what remains since the last one exited.
fn remaining_cleanup(containers: &[ContainerState], cleanup_delay: Duration) -> Duration {
    if containers.iter().any(|c| c.running) {
        return cleanup_delay;
    }
    let Some(last_exit) = containers.iter().filter_map(|c| c.finished_at).max() else {
        return cleanup_delay;
    };
    let age = last_exit.elapsed().unwrap_or(Duration::ZERO);
    cleanup_delay.saturating_sub(age)
}

/// Feeds runtime events to every runner; re-subscribes (and asks for a resync) when the
/// runtime's event stream ends, which also counts as a runtime outage. The runtime's own
/// `Resync` events (its stream reconnected, as after a daemon restart) count as one too.
async fn forward_events(
    shared: Arc<Shared>,
    labels: BTreeMap<String, String>,
    mut receiver: mpsc::Receiver<RuntimeEvent>,
    events: broadcast::Sender<RuntimeEvent>,
) {
    let runtime = Arc::clone(&shared.runtime);
    loop {
        while let Some(event) = receiver.recv().await {
            if event == RuntimeEvent::Resync {
                shared.note_outage();
            }
            let _ = events.send(event);
        }
        shared.note_outage();
        tracing::warn!("the container runtime's event stream ended; following it again");
        let mut backoff = crate::backoff::Backoff::default();
        let mut failures = 0u32;
        receiver = loop {
            tokio::time::sleep(backoff.next_delay()).await;
            match bounds::bounded(bounds::CALL_TIMEOUT, runtime.events(&labels)).await {
                Ok(receiver) => break receiver,
                Err(err) => {
                    shared.note_outage();
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!("cannot follow container events, retrying: {err}");
                    }
                    // Runners re-read their containers, and so find out about the outage.
                    let _ = events.send(RuntimeEvent::Resync);
                }
            }
        };
        tracing::info!("following container events again");
        let _ = events.send(RuntimeEvent::Resync);
    }
}
