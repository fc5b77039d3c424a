//! An in-memory `ContainerRuntime` for fast tests: scriptable per image or per container
//! (pull and create/start failures, exit after a delay with a code, health sequences, a stop
//! that ignores SIGTERM or hangs), and as a whole (a daemon that is away, one whose calls hang,
//! a daemon restart that kills every container), emitting runtime events and recording every
//! call. Timers use `tokio::time`, so tests can run with paused time. Like Docker it keeps
//! named volumes and enforces references between containers (`references`).

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, Health, PortBinding, Result, RuntimeError,
    RuntimeEvent, RuntimeInfo,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod behavior;
mod references;
#[cfg(test)]
mod tests;

pub use behavior::{Behavior, Call, SIGKILL_EXIT_CODE};
pub use references::FakeVolume;

/// The label that names a container's ECS container; behaviours may be keyed on its value.
const CONTAINER_NAME_LABEL: &str = "com.berth.container-name";

#[derive(Debug)]
struct FakeContainer {
    id: String,
    spec: ContainerSpec,
    behavior: Behavior,
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    health: Health,
    ports: Vec<PortBinding>,
    scripts: Vec<JoinHandle<()>>,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
    /// The named volumes it uses: its own mounts', then its `volumes_from` sources'.
    volumes: Vec<String>,
}

impl FakeContainer {
    fn state(&self) -> ContainerState {
        ContainerState {
            id: self.id.clone(),
            name: self.spec.name.clone(),
            image: self.spec.image.clone(),
            image_id: Some(format!("sha256:fake-{}", self.spec.image)),
            running: self.running,
            exit_code: self.exit_code,
            started: self.started,
            oom_killed: false,
            error: None,
            health: self.health,
            ports: self.ports.clone(),
            labels: self.spec.labels.clone(),
            restart_count: 0,
            created_at: None,
            started_at: self.started_at,
            finished_at: self.finished_at,
            networks: Vec::new(),
            volumes: self.volumes.clone(),
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    labels: BTreeMap<String, String>,
    sender: mpsc::Sender<RuntimeEvent>,
}

#[derive(Debug, Default)]
struct State {
    unavailable: Option<String>,
    hung: bool,
    flaky_creates: u32,
    images: BTreeSet<String>,
    pull_failures: HashMap<String, String>,
    pull_delay: Duration,
    behaviors: HashMap<String, Behavior>,
    containers: BTreeMap<String, FakeContainer>,
    calls: Vec<Call>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
    next_host_port: u16,
    volumes: BTreeMap<String, FakeVolume>,
    /// The wall clock and tokio's at the first reading of `now`.
    epoch: Option<(SystemTime, Instant)>,
}

impl State {
    /// The wall clock as the fake keeps it: it moves with tokio's clock, so that start and
    /// exit times are as far apart as the (possibly paused) time between them.
    fn now(&mut self) -> SystemTime {
        let (wall, instant) = *self
            .epoch
            .get_or_insert_with(|| (SystemTime::now(), Instant::now()));
        wall + instant.elapsed()
    }

    fn emit(&mut self, labels: &BTreeMap<String, String>, event: RuntimeEvent) {
        self.subscribers.retain(|s| !s.sender.is_closed());
        for subscriber in &self.subscribers {
            if has_labels(labels, &subscriber.labels) {
                // A full channel loses the event, as a lagging Docker event stream would.
                let _ = subscriber.sender.try_send(event.clone());
            }
        }
    }

    fn container(&mut self, id: &str) -> Result<&mut FakeContainer> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.to_string()))
    }

    fn behavior_for(&self, spec: &ContainerSpec) -> Behavior {
        let by_label = spec
            .labels
            .get(CONTAINER_NAME_LABEL)
            .and_then(|n| self.behaviors.get(n));
        by_label
            .or_else(|| self.behaviors.get(&spec.name))
            .or_else(|| self.behaviors.get(&spec.image))
            .cloned()
            .unwrap_or_default()
    }
}

fn has_labels(labels: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The in-memory runtime. Cheap to clone: clones share the same containers.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl FakeRuntime {
    /// An empty runtime: no images, no containers, pulls succeed.
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `image` present locally.
    pub fn add_image(&self, image: &str) {
        self.lock().images.insert(image.to_string());
    }

    /// Makes pulls of `image` fail with `message`.
    pub fn fail_pull(&self, image: &str, message: &str) {
        self.lock()
            .pull_failures
            .insert(image.to_string(), message.to_string());
    }

    /// Makes every pull take `delay`.
    pub fn set_pull_delay(&self, delay: Duration) {
        self.lock().pull_delay = delay;
    }

    /// Makes every call fail as if the daemon were down (`None` brings it back).
    pub fn set_unavailable(&self, message: Option<&str>) {
        self.lock().unavailable = message.map(str::to_string);
    }

    /// Makes the next `count` create calls fail as if the daemon were away.
    pub fn fail_next_creates(&self, count: u32) {
        self.lock().flaky_creates = count;
    }

    /// Makes every call from now on hang (never answer) until `false` is set; calls already
    /// hanging keep hanging, as with a wedged daemon.
    pub fn set_hung(&self, hung: bool) {
        self.lock().hung = hung;
    }

    /// A daemon restart without live-restore: every running container exits with `code`
    /// (without events: they are lost with the daemon) and every event stream ends.
    pub fn restart_daemon(&self, code: i64) {
        let mut state = self.lock();
        let now = state.now();
        for container in state.containers.values_mut().filter(|c| c.running) {
            container.running = false;
            container.exit_code = Some(code);
            container.finished_at = Some(now);
            for script in container.scripts.drain(..) {
                script.abort();
            }
        }
        state.subscribers.clear();
    }

    /// Sets the behaviour of containers created from now on whose ECS container name, runtime
    /// name or image (checked in that order) is `key`.
    pub fn set_behavior(&self, key: &str, behavior: Behavior) {
        self.lock().behaviors.insert(key.to_string(), behavior);
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The specs of every container that exists now, by creation order.
    pub fn specs(&self) -> Vec<ContainerSpec> {
        let state = self.lock();
        let mut containers: Vec<&FakeContainer> = state.containers.values().collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        containers.into_iter().map(|c| c.spec.clone()).collect()
    }

    /// The state of every container that exists now, by creation order.
    pub fn containers(&self) -> Vec<ContainerState> {
        self.lock()
            .containers
            .values()
            .map(FakeContainer::state)
            .collect()
    }

    /// The state of the container whose runtime name is `name`.
    pub fn container_named(&self, name: &str) -> Option<ContainerState> {
        self.lock()
            .containers
            .values()
            .find(|c| c.spec.name == name)
            .map(FakeContainer::state)
    }

    /// The named volumes that exist now, by name.
    pub fn volumes(&self) -> BTreeMap<String, FakeVolume> {
        self.lock().volumes.clone()
    }

    /// Makes a running container exit now with `code`.
    pub fn exit(&self, id: &str, code: i64) {
        exit_container(&self.state, id, code);
    }

    /// Sets the health of a container now.
    pub fn set_health(&self, id: &str, health: Health) {
        set_health(&self.state, id, health);
    }

    /// Records a call; fails it when the daemon is away, never answers when it hangs.
    async fn enter(&self, call: Call) -> Result<()> {
        let hung = {
            let mut state = self.lock();
            state.calls.push(call);
            if let Some(message) = &state.unavailable {
                return Err(RuntimeError::Unavailable(message.clone()));
            }
            state.hung
        };
        if hung {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn exit_container(state: &Mutex<State>, id: &str, code: i64) {
    let mut state = lock_state(state);
    let now = state.now();
    let Some(container) = state.containers.get_mut(id) else {
        return;
    };
    if !container.running {
        return;
    }
    container.running = false;
    container.exit_code = Some(code);
    container.finished_at = Some(now);
    for script in container.scripts.drain(..) {
        script.abort();
    }
    let labels = container.spec.labels.clone();
    state.emit(
        &labels,
        RuntimeEvent::Died {
            id: id.to_string(),
            exit_code: Some(code),
        },
    );
}

fn set_health(state: &Mutex<State>, id: &str, health: Health) {
    let mut state = lock_state(state);
    let Some(container) = state.containers.get_mut(id) else {
        return;
    };
    if !container.running || container.health == health {
        return;
    }
    container.health = health;
    let labels = container.spec.labels.clone();
    state.emit(
        &labels,
        RuntimeEvent::HealthChanged {
            id: id.to_string(),
            health,
        },
    );
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn ping(&self) -> Result<RuntimeInfo> {
        self.enter(Call::Ping).await?;
        Ok(RuntimeInfo::stock("fake-1.0"))
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        self.enter(Call::ImagePresent(image.to_string())).await?;
        Ok(self.lock().images.contains(image))
    }

    async fn pull_image(
        &self,
        image: &str,
        _auth: Option<&crate::registry::RegistryAuth>,
    ) -> Result<()> {
        self.enter(Call::Pull(image.to_string())).await?;
        let delay = self.lock().pull_delay;
        tokio::time::sleep(delay).await;
        let mut state = self.lock();
        if let Some(message) = state.pull_failures.get(image) {
            return Err(RuntimeError::ImagePull {
                image: image.to_string(),
                message: message.clone(),
            });
        }
        state.images.insert(image.to_string());
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.enter(Call::Create(spec.name.clone())).await?;
        let mut state = self.lock();
        if state.flaky_creates > 0 {
            state.flaky_creates -= 1;
            return Err(RuntimeError::Unavailable(
                "connect /var/run/docker.sock: connection refused".into(),
            ));
        }
        if let Some(existing) = state.containers.values().find(|c| c.spec.name == spec.name) {
            return Err(RuntimeError::Create(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\"",
                spec.name, existing.id
            )));
        }
        if !state.images.contains(&spec.image) {
            return Err(RuntimeError::Create(format!(
                "No such image: {}",
                spec.image
            )));
        }
        let behavior = state.behavior_for(spec);
        if let Some(message) = &behavior.create_error {
            return Err(RuntimeError::Create(message.clone()));
        }
        let volumes = state.check_create(spec)?;
        state.provision_volumes(spec);
        state.next_id += 1;
        let id = format!("{:064x}", state.next_id);
        let health = if spec.health_check.is_some() {
            Health::Starting
        } else {
            Health::Unknown
        };
        state.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                spec: spec.clone(),
                behavior,
                running: false,
                started: false,
                exit_code: None,
                health,
                ports: Vec::new(),
                scripts: Vec::new(),
                started_at: None,
                finished_at: None,
                volumes,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.enter(Call::Start(id.to_string())).await?;
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.next_host_port == 0 {
            state.next_host_port = 32768;
        }
        let mut next_port = state.next_host_port;
        let spec = state.container(id)?.spec.clone();
        if state.container(id)?.running {
            return Ok(());
        }
        state.check_start(&spec)?;
        let now = state.now();
        let container = state.container(id)?;
        if let Some(message) = &container.behavior.start_error {
            return Err(RuntimeError::Start(message.clone()));
        }
        container.running = true;
        container.started = true;
        container.exit_code = None;
        container.started_at = Some(now);
        container.finished_at = None;
        if container.spec.network_mode != "none" {
            container.ports = container
                .spec
                .ports
                .iter()
                .map(|p| {
                    let host_port = match p.host_port {
                        Some(port) if port != 0 => port,
                        _ => {
                            next_port += 1;
                            next_port
                        }
                    };
                    PortBinding {
                        container_port: p.container_port,
                        protocol: p.protocol.clone(),
                        host_ip: "0.0.0.0".into(),
                        host_port,
                    }
                })
                .collect();
        }
        let behavior = container.behavior.clone();
        let labels = container.spec.labels.clone();
        let mut scripts = Vec::new();
        if let Some((after, code)) = behavior.exit_after {
            let shared = Arc::clone(&self.state);
            let id = id.to_string();
            scripts.push(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                exit_container(&shared, &id, code);
            }));
        }
        if !behavior.health.is_empty() {
            let shared = Arc::clone(&self.state);
            let id = id.to_string();
            let sequence = behavior.health.clone();
            scripts.push(tokio::spawn(async move {
                let mut elapsed = Duration::ZERO;
                for (at, health) in sequence {
                    tokio::time::sleep(at.saturating_sub(elapsed)).await;
                    elapsed = elapsed.max(at);
                    set_health(&shared, &id, health);
                }
            }));
        }
        container.scripts = scripts;
        state.next_host_port = next_port;
        state.emit(&labels, RuntimeEvent::Started { id: id.to_string() });
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.enter(Call::Stop {
            id: id.to_string(),
            timeout,
        })
        .await?;
        let (running, behavior) = {
            let mut state = self.lock();
            let container = state.container(id)?;
            (container.running, container.behavior.clone())
        };
        if !running {
            return Ok(());
        }
        if behavior.stop_hangs {
            std::future::pending::<()>().await;
        }
        if behavior.ignore_sigterm {
            tokio::time::sleep(timeout).await;
            exit_container(&self.state, id, SIGKILL_EXIT_CODE);
        } else {
            exit_container(&self.state, id, behavior.sigterm_exit_code);
        }
        Ok(())
    }

    async fn kill_container(&self, id: &str) -> Result<()> {
        self.enter(Call::Kill(id.to_string())).await?;
        self.lock().container(id)?;
        exit_container(&self.state, id, SIGKILL_EXIT_CODE);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.enter(Call::Remove(id.to_string())).await?;
        let mut state = self.lock();
        if state.container(id)?.running {
            return Err(RuntimeError::Other(format!(
                "cannot remove container {id}: it is running, stop it first"
            )));
        }
        state.containers.remove(id);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.enter(Call::RemoveVolume(name.to_string())).await?;
        self.lock().remove_volume(name)
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        self.enter(Call::Inspect(id.to_string())).await?;
        Ok(self.lock().container(id)?.state())
    }

    async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerState>> {
        self.enter(Call::List).await?;
        let state = self.lock();
        Ok(state
            .containers
            .values()
            .filter(|c| has_labels(&c.spec.labels, labels))
            .map(FakeContainer::state)
            .collect())
    }

    async fn events(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<mpsc::Receiver<RuntimeEvent>> {
        self.enter(Call::Events).await?;
        let (sender, receiver) = mpsc::channel(1024);
        self.lock().subscribers.push(Subscriber {
            labels: labels.clone(),
            sender,
        });
        Ok(receiver)
    }
}
