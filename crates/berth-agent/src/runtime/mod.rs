//! The container runtime seen by the agent: one trait for every container side effect, with a
//! Docker implementation (bollard) and an in-memory fake for fast tests.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

pub mod docker;
pub mod fake;
pub mod hollow;

/// Errors of a container runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime (Docker daemon) could not be reached.
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
    /// The image does not exist locally and could not be pulled.
    #[error("CannotPullContainerError: pull image {image}: {message}")]
    ImagePull { image: String, message: String },
    /// No container (or, for `remove_volume`, no volume) with that id or name.
    #[error("no such container: {0}")]
    NotFound(String),
    /// The runtime refused the container configuration.
    #[error("CannotCreateContainerError: {0}")]
    Create(String),
    /// The container could not be started.
    #[error("CannotStartContainerError: {0}")]
    Start(String),
    /// Any other runtime failure.
    #[error("{0}")]
    Other(String),
}

/// Result of runtime operations.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// A port the container exposes and how it is bound on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    /// `None` or `Some(0)`: an ephemeral host port chosen by the runtime.
    pub host_port: Option<u16>,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A mount of a host path or a named volume into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host directory or file.
    Bind {
        host_path: String,
        container_path: String,
        read_only: bool,
    },
    /// A named runtime volume (created if absent, with `driver`, `driver_opts` and `labels`;
    /// a volume that exists already keeps its own).
    Volume {
        name: String,
        container_path: String,
        read_only: bool,
        driver: Option<String>,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    },
    /// A tmpfs.
    Tmpfs {
        container_path: String,
        size_mib: u64,
        options: Vec<String>,
    },
}

/// A container health check, as the runtime runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// A resource limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UlimitSpec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A host device made available in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: String,
    /// cgroup permissions: some of `r`, `w`, `m` (read, write, mknod), in that order.
    pub permissions: String,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Runtime container name (unique on the host).
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// CPU shares (ECS cpu units; 0 means unset).
    pub cpu_shares: u64,
    /// Hard CPU limit in billionths of a CPU: this container's part of the task-level `cpu`
    /// (`None`: no task-level `cpu`, no limit).
    pub nano_cpus: Option<i64>,
    /// Hard memory limit in MiB.
    pub memory_mib: Option<u64>,
    /// Soft memory limit in MiB.
    pub memory_reservation_mib: Option<u64>,
    /// `bridge`, `host`, `none` (default bridge).
    pub network_mode: String,
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<MountSpec>,
    pub labels: BTreeMap<String, String>,
    pub health_check: Option<HealthCheckSpec>,
    pub ulimits: Vec<UlimitSpec>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns_servers: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    pub stop_timeout: Option<Duration>,
    pub interactive: bool,
    pub tty: bool,
    pub disable_networking: bool,
    /// Containers whose volumes this one mounts: `name` or `name:ro` (runtime names; they must
    /// exist before this container is created).
    pub volumes_from: Vec<String>,
    /// Legacy links, `name:alias` (runtime names; the targets must run when this one starts).
    pub links: Vec<String>,
    pub devices: Vec<DeviceSpec>,
    /// Size of `/dev/shm` in MiB (`None`: the runtime's default).
    pub shm_size_mib: Option<u64>,
    /// Memory plus swap limit in MiB (`None`: the host's swap settings).
    pub memory_swap_mib: Option<u64>,
    /// Swappiness, 0 to 100 (`None`: the host's).
    pub memory_swappiness: Option<u8>,
    /// Kernel parameters (namespaced sysctls).
    pub sysctls: BTreeMap<String, String>,
    /// Security options, as Docker's `--security-opt` takes them.
    pub security_opt: Vec<String>,
    /// The cgroup its own cgroup is made under (the task's, for task-level limits).
    pub cgroup_parent: Option<String>,
    /// PID namespace: `host` or `container:NAME` (`None`: a private one).
    pub pid_mode: Option<String>,
    /// IPC namespace: `host`, `none`, `shareable` or `container:NAME` (`None`: the default).
    pub ipc_mode: Option<String>,
}

/// Health of a running container as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No health check, or none has run yet in the start period.
    Unknown,
    Starting,
    Healthy,
    Unhealthy,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    pub image: String,
    /// Image digest or id, if known.
    pub image_id: Option<String>,
    pub running: bool,
    /// Exit code once it has exited.
    pub exit_code: Option<i64>,
    /// Whether it exited (or not) after having started.
    pub started: bool,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub health: Health,
    /// Host bindings of its ports: (container port, protocol, host ip, host port).
    pub ports: Vec<PortBinding>,
    pub labels: BTreeMap<String, String>,
    /// How many times the runtime restarted it.
    pub restart_count: u64,
    /// When it was created.
    pub created_at: Option<std::time::SystemTime>,
    /// When it last started (once it has started; a restart in place moves it).
    pub started_at: Option<std::time::SystemTime>,
    /// When it exited (once it has exited).
    pub finished_at: Option<std::time::SystemTime>,
    /// Its networks and its IPv4 address on each: (network name, address).
    pub networks: Vec<(String, String)>,
    /// Names of the named volumes it mounts (its own mounts and those of `volumes_from`).
    pub volumes: Vec<String>,
}

/// A host port bound to a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// Something that happened to a container the agent manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    Started {
        id: String,
    },
    /// The container exited (with its code, when known).
    Died {
        id: String,
        exit_code: Option<i64>,
    },
    HealthChanged {
        id: String,
        health: Health,
    },
    /// The event stream lost events (reconnected): re-inspect everything.
    Resync,
}

/// Facts about the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// Runtime version, e.g. the Docker server version.
    pub version: String,
    /// The newest Docker Engine API version it speaks (`1.47`), when it says.
    pub api_version: Option<String>,
    /// The logging drivers it has (Docker's built-in ones and logging plugins).
    pub log_drivers: Vec<String>,
    /// The volume drivers it has (`local` and volume plugins).
    pub volume_drivers: Vec<String>,
    /// How it manages cgroups (`cgroupfs` or `systemd`), when it says.
    pub cgroup_driver: Option<String>,
}

/// The logging drivers built into Docker Engine (what `docker info` lists under Plugins/Log).
pub const DOCKER_LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "json-file",
    "local",
    "splunk",
    "syslog",
];

impl RuntimeInfo {
    /// A runtime of `version` with what a stock Docker Engine has: API 1.44, its built-in
    /// logging drivers and the `local` volume driver (for runtimes that cannot ask a daemon).
    pub fn stock(version: &str) -> Self {
        RuntimeInfo {
            version: version.to_string(),
            api_version: Some("1.44".into()),
            log_drivers: DOCKER_LOG_DRIVERS.iter().map(|d| d.to_string()).collect(),
            volume_drivers: vec!["local".into()],
            cgroup_driver: None,
        }
    }
}

/// One line of a container's output (stdout or stderr), as the runtime stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the runtime received it, in nanoseconds since the epoch.
    pub timestamp_ns: u64,
    /// The line, ending with `\n` unless the runtime cut a long line into parts.
    pub text: bytes::Bytes,
}

/// A container's output, line by line.
pub type LogLines = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<LogLine>> + Send>>;

/// A command to run in a running container (ExecuteCommand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: Vec<String>,
    /// Whether it gets a terminal (its stdout and stderr are then one stream).
    pub tty: bool,
}

/// A command started in a container: what it writes, and its standard input.
pub struct ExecProcess {
    /// The runtime's id of the exec, for resizes and its exit code.
    pub id: String,
    pub output: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess").field("id", &self.id).finish()
    }
}

/// Every container side effect of the agent.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Checks the runtime answers; returns its version and what it offers.
    async fn ping(&self) -> Result<RuntimeInfo>;
    /// Whether `image` is present locally.
    async fn image_present(&self, image: &str) -> Result<bool>;
    /// Pulls `image`, with `auth` for its registry when given.
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
    ) -> Result<()>;
    /// Creates a container; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    /// Starts a created container.
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Sends SIGTERM (or the image's stop signal), then SIGKILL after `timeout`.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Sends SIGKILL at once (the escalation when a stop does not finish); a container that
    /// is not running is not an error.
    async fn kill_container(&self, id: &str) -> Result<()>;
    /// Removes a container (and its anonymous volumes).
    async fn remove_container(&self, id: &str) -> Result<()>;
    /// Removes the named volume `name`: `NotFound` when there is none, an error when a
    /// container (running or not) still uses it.
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// The current state of a container.
    async fn inspect_container(&self, id: &str) -> Result<ContainerState>;
    /// All containers (running or not) carrying every one of `labels`.
    async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerState>>;
    /// Starts `spec` in the running container `id`, attached.
    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<ExecProcess> {
        let _ = (id, spec);
        Err(RuntimeError::Other(
            "this container runtime cannot run commands in containers".into(),
        ))
    }
    /// The IPv4 address of the host on the runtime's default bridge network (where containers
    /// reach the agent's metadata endpoint), if it has one.
    async fn bridge_gateway(&self) -> Option<std::net::IpAddr> {
        None
    }
    /// One sample of the container's resource use, in Docker's stats JSON.
    async fn stats(&self, id: &str) -> Result<serde_json::Value> {
        let _ = id;
        Err(RuntimeError::Other(
            "this container runtime keeps no statistics".into(),
        ))
    }
    /// Like [`stats`](Self::stats), but also with the sample taken about a second before
    /// (`precpu_stats`), so a container's CPU use is known from its first look; slower.
    async fn stats_with_previous(&self, id: &str) -> Result<serde_json::Value> {
        self.stats(id).await
    }
    /// The output of container `id` from second `since` (epoch seconds; 0: all of it), and
    /// with `follow` what it writes next, until it stops.
    async fn logs(&self, id: &str, since: u64, follow: bool) -> Result<LogLines> {
        let _ = (id, since, follow);
        Err(RuntimeError::Other(
            "this container runtime keeps no container output".into(),
        ))
    }
    /// Sets the terminal size of exec `exec_id`.
    async fn exec_resize(&self, exec_id: &str, cols: u16, rows: u16) -> Result<()> {
        let _ = (exec_id, cols, rows);
        Ok(())
    }
    /// The exit code of exec `exec_id`, once it has exited.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        let _ = exec_id;
        Ok(None)
    }
    /// The host PID of the running container `id`'s first process (its namespaces are
    /// `/proc/PID/ns/*`).
    async fn container_pid(&self, id: &str) -> Result<u32> {
        let _ = id;
        Err(RuntimeError::Other(
            "this container runtime has no host processes".into(),
        ))
    }
    /// Makes image `reference` from `rootfs`, a tar archive of its whole filesystem (as
    /// `docker import`).
    async fn import_image(&self, reference: &str, rootfs: Vec<u8>) -> Result<()> {
        let _ = (reference, rootfs);
        Err(RuntimeError::Other(
            "this container runtime cannot import images".into(),
        ))
    }
    /// Events of containers carrying every one of `labels`, until the receiver is dropped.
    async fn events(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<mpsc::Receiver<RuntimeEvent>>;
}
