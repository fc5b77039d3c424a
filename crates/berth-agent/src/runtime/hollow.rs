//! A hollow `ContainerRuntime` for load tests: no I/O and no scripting. Pulls succeed at once,
//! containers run from their start until they are stopped, and only what the task engine reads
//! back is kept (name, image, labels, ports, state), so thousands of agents with tens of tasks
//! each fit in one process (`berth bench fleet`). Tests that need scripted faults or a record
//! of calls use the fake (`super::fake`) instead.

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, Health, PortBinding, Result, RuntimeError,
    RuntimeEvent, RuntimeInfo,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Exit code of a container that honoured SIGTERM (128 + 15), as Docker reports it.
pub const SIGTERM_EXIT_CODE: i64 = 143;
/// Exit code of a container killed by SIGKILL (128 + 9).
pub const SIGKILL_EXIT_CODE: i64 = 137;
/// Events a subscriber may have queued before further ones are dropped (as a lagging Docker
/// event stream would); the engine re-reads its containers periodically, so none is lost for
/// good.
const EVENT_BUFFER: usize = 256;
/// First host port handed out for ports bound to an ephemeral host port.
const FIRST_EPHEMERAL_PORT: u16 = 32768;

/// Where a hollow container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Created,
    Running,
    Exited { code: i64, at: SystemTime },
}

#[derive(Debug)]
struct HollowContainer {
    name: String,
    image: String,
    labels: BTreeMap<String, String>,
    /// The spec's ports, bound when the container starts.
    ports: Vec<PortBinding>,
    health_checked: bool,
    life: Life,
}

impl HollowContainer {
    fn state(&self, id: u64) -> ContainerState {
        let (running, exit_code, finished_at) = match self.life {
            Life::Created => (false, None, None),
            Life::Running => (true, None, None),
            Life::Exited { code, at } => (false, Some(code), Some(at)),
        };
        ContainerState {
            id: container_id(id),
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: None,
            running,
            exit_code,
            started: self.life != Life::Created,
            oom_killed: false,
            error: None,
            // A container with a health check is healthy as soon as it runs.
            health: if running && self.health_checked {
                Health::Healthy
            } else {
                Health::Unknown
            },
            ports: if running {
                self.ports.clone()
            } else {
                Vec::new()
            },
            labels: self.labels.clone(),
            restart_count: 0,
            created_at: None,
            started_at: None,
            finished_at,
            networks: Vec::new(),
            volumes: Vec::new(),
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
    next_id: u64,
    next_host_port: u16,
    /// Images pulled so far (a handful: tasks share images).
    images: Vec<String>,
    containers: BTreeMap<u64, HollowContainer>,
    subscribers: Vec<Subscriber>,
}

impl State {
    fn container(&mut self, id: &str) -> Result<(u64, &mut HollowContainer)> {
        let key = parse_id(id).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        self.containers
            .get_mut(&key)
            .map(|c| (key, c))
            .ok_or_else(|| RuntimeError::NotFound(id.to_string()))
    }

    /// Ends a running container with `code`; tells subscribers. Not running: nothing to do.
    fn exit(&mut self, id: &str, code: i64) -> Result<()> {
        let (_, container) = self.container(id)?;
        if container.life != Life::Running {
            return Ok(());
        }
        container.life = Life::Exited {
            code,
            at: SystemTime::now(),
        };
        let labels = container.labels.clone();
        self.emit(
            &labels,
            RuntimeEvent::Died {
                id: id.to_string(),
                exit_code: Some(code),
            },
        );
        Ok(())
    }

    fn emit(&mut self, labels: &BTreeMap<String, String>, event: RuntimeEvent) {
        self.subscribers.retain(|s| !s.sender.is_closed());
        for subscriber in &self.subscribers {
            if has_labels(labels, &subscriber.labels) {
                let _ = subscriber.sender.try_send(event.clone());
            }
        }
    }
}

/// Docker-shaped id (64 hex digits) of the `n`-th container.
fn container_id(n: u64) -> String {
    format!("{n:064x}")
}

fn parse_id(id: &str) -> Option<u64> {
    if id.len() != 64 {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

fn has_labels(labels: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The hollow runtime of one agent. Its containers live as long as it does.
#[derive(Debug, Default)]
pub struct HollowRuntime {
    state: Mutex<State>,
}

impl HollowRuntime {
    /// A runtime with no images and no containers.
    pub fn new() -> HollowRuntime {
        HollowRuntime::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many of its containers are running now.
    pub fn running(&self) -> usize {
        self.lock()
            .containers
            .values()
            .filter(|c| c.life == Life::Running)
            .count()
    }
}

#[async_trait]
impl ContainerRuntime for HollowRuntime {
    async fn ping(&self) -> Result<RuntimeInfo> {
        Ok(RuntimeInfo::stock("hollow"))
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        Ok(self.lock().images.iter().any(|i| i == image))
    }

    async fn pull_image(
        &self,
        image: &str,
        _auth: Option<&crate::registry::RegistryAuth>,
    ) -> Result<()> {
        let mut state = self.lock();
        if !state.images.iter().any(|i| i == image) {
            state.images.push(image.to_string());
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut state = self.lock();
        if let Some((id, _)) = state.containers.iter().find(|(_, c)| c.name == spec.name) {
            return Err(RuntimeError::Create(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\"",
                spec.name,
                container_id(*id)
            )));
        }
        if state.next_host_port == 0 {
            state.next_host_port = FIRST_EPHEMERAL_PORT;
        }
        let mut ports = Vec::with_capacity(spec.ports.len());
        for port in &spec.ports {
            let host_port = match port.host_port {
                Some(p) if p != 0 => p,
                _ => {
                    state.next_host_port = state.next_host_port.checked_add(1).unwrap_or(
                        FIRST_EPHEMERAL_PORT, // wrapped around: ports are not checked anyway
                    );
                    state.next_host_port
                }
            };
            ports.push(PortBinding {
                container_port: port.container_port,
                protocol: port.protocol.clone(),
                host_ip: "0.0.0.0".into(),
                host_port,
            });
        }
        state.next_id += 1;
        let id = state.next_id;
        state.containers.insert(
            id,
            HollowContainer {
                name: spec.name.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                ports,
                health_checked: spec.health_check.is_some(),
                life: Life::Created,
            },
        );
        Ok(container_id(id))
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        let (_, container) = state.container(id)?;
        if container.life == Life::Running {
            return Ok(());
        }
        container.life = Life::Running;
        let labels = container.labels.clone();
        state.emit(&labels, RuntimeEvent::Started { id: id.to_string() });
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<()> {
        self.lock().exit(id, SIGTERM_EXIT_CODE)
    }

    async fn kill_container(&self, id: &str) -> Result<()> {
        self.lock().exit(id, SIGKILL_EXIT_CODE)
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        let (key, container) = state.container(id)?;
        if container.life == Life::Running {
            return Err(RuntimeError::Other(format!(
                "cannot remove container {id}: it is running, stop it first"
            )));
        }
        state.containers.remove(&key);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        // Hollow containers mount nothing, so there is never a volume to remove.
        Err(RuntimeError::NotFound(name.to_string()))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        let mut state = self.lock();
        let (key, container) = state.container(id)?;
        Ok(container.state(key))
    }

    async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerState>> {
        Ok(self
            .lock()
            .containers
            .iter()
            .filter(|(_, c)| has_labels(&c.labels, labels))
            .map(|(id, c)| c.state(*id))
            .collect())
    }

    async fn events(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<mpsc::Receiver<RuntimeEvent>> {
        let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
        self.lock().subscribers.push(Subscriber {
            labels: labels.clone(),
            sender,
        });
        Ok(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, instance: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.to_string(),
            image: "busybox".into(),
            labels: BTreeMap::from([
                (
                    "com.berth.container-instance".to_string(),
                    instance.to_string(),
                ),
                ("com.berth.task-arn".to_string(), format!("task-{name}")),
            ]),
            ..ContainerSpec::default()
        }
    }

    fn instance(id: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("com.berth.container-instance".to_string(), id.to_string())])
    }

    #[tokio::test]
    async fn a_started_container_is_listed_running_with_its_labels() {
        let runtime = HollowRuntime::new();
        let id = runtime
            .create_container(&spec("a", "i-1"))
            .await
            .expect("create");
        runtime
            .create_container(&spec("b", "i-2"))
            .await
            .expect("create");
        runtime.start_container(&id).await.expect("start");

        let listed = runtime
            .list_containers(&instance("i-1"))
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "only the container with the wanted labels");
        assert_eq!(listed[0].id, id);
        assert!(listed[0].running && listed[0].started);
        assert_eq!(listed[0].labels["com.berth.task-arn"], "task-a");
        assert_eq!(runtime.running(), 1);
        assert_eq!(
            runtime
                .list_containers(&BTreeMap::new())
                .await
                .expect("all")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn stopping_a_container_makes_it_exit_and_tells_the_subscriber() {
        let runtime = HollowRuntime::new();
        let mut events = runtime.events(&instance("i-1")).await.expect("events");
        let id = runtime
            .create_container(&spec("a", "i-1"))
            .await
            .expect("create");
        runtime.start_container(&id).await.expect("start");
        assert_eq!(
            events.recv().await,
            Some(RuntimeEvent::Started { id: id.clone() })
        );

        let removal = runtime.remove_container(&id).await;
        assert!(removal.is_err(), "a running container cannot be removed");
        runtime
            .stop_container(&id, Duration::from_secs(30))
            .await
            .expect("stop");
        assert_eq!(
            events.recv().await,
            Some(RuntimeEvent::Died {
                id: id.clone(),
                exit_code: Some(SIGTERM_EXIT_CODE)
            })
        );
        let state = runtime.inspect_container(&id).await.expect("inspect");
        assert!(!state.running && state.started);
        assert_eq!(state.exit_code, Some(SIGTERM_EXIT_CODE));
        assert!(state.finished_at.is_some());
        assert_eq!(runtime.running(), 0);

        runtime.remove_container(&id).await.expect("remove");
        assert!(matches!(
            runtime.inspect_container(&id).await,
            Err(RuntimeError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_second_container_with_the_same_name_is_refused() {
        let runtime = HollowRuntime::new();
        runtime
            .create_container(&spec("a", "i-1"))
            .await
            .expect("create");
        let again = runtime.create_container(&spec("a", "i-1")).await;
        assert!(matches!(again, Err(RuntimeError::Create(m)) if m.contains("already in use")));
    }

    #[tokio::test]
    async fn a_pulled_image_is_present_and_unknown_ids_are_not_found() {
        let runtime = HollowRuntime::new();
        assert!(!runtime.image_present("busybox").await.expect("check"));
        runtime.pull_image("busybox", None).await.expect("pull");
        assert!(runtime.image_present("busybox").await.expect("check"));
        assert!(matches!(
            runtime.start_container("nope").await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(matches!(
            runtime
                .stop_container(&container_id(9), Duration::ZERO)
                .await,
            Err(RuntimeError::NotFound(_))
        ));
    }
}
