//! The Docker implementation of `ContainerRuntime`, on the Docker Engine API through bollard
//! (local unix socket or `DOCKER_HOST`, API version negotiated with the daemon).

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ExecProcess, ExecSpec, Health, LogLine,
    LogLines, PortBinding, Result, RuntimeError, RuntimeEvent, RuntimeInfo,
};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, EventMessage, EventMessageTypeEnum, HealthStatusEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

mod create;

pub use create::create_body;

/// Per-request timeout of the Docker client: long enough for a `docker stop` that waits out
/// ECS's longest stopTimeout (120 s) before killing. Streams (pulls, events) only wait this
/// long for their response headers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// First delay before reconnecting a broken event stream; doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A stream that stayed up this long was healthy: the next failure starts from `MIN_BACKOFF`.
const HEALTHY_STREAM: Duration = Duration::from_secs(5);
/// Docker's `StartedAt` of a container that never started.
const ZERO_TIME_PREFIX: &str = "0001-01-01";

/// A container runtime backed by a Docker daemon.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Docker's stats of container `id`: one sample, or with `one_shot` false also the one
    /// taken a second before it (`precpu_stats`).
    async fn stats_sample(&self, id: &str, one_shot: bool) -> Result<serde_json::Value> {
        use futures_util::StreamExt;
        let options = bollard::query_parameters::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(one_shot)
            .build();
        let sample = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| RuntimeError::Other(format!("no statistics for {id}")))?
            .map_err(|e| container_error(id, &e, RuntimeError::Other))?;
        serde_json::to_value(sample).map_err(|e| RuntimeError::Other(e.to_string()))
    }

    /// Connects to the local Docker daemon: `DOCKER_HOST` when set (`unix://` or `tcp://`), else
    /// the unix socket `/var/run/docker.sock`; then negotiates the API version, so that older
    /// daemons (Docker 20.10 speaks API 1.41) are addressed in their own version.
    pub async fn connect() -> Result<Self> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let docker = Docker::connect_with_defaults()
            .map_err(|e| RuntimeError::Unavailable(format!("cannot use Docker at {host}: {e}")))?
            .with_timeout(REQUEST_TIMEOUT);
        Self::with_client(docker).await.map_err(|e| {
            let detail = match e {
                RuntimeError::Unavailable(m) | RuntimeError::Other(m) => m,
                other => other.to_string(),
            };
            RuntimeError::Unavailable(format!("no Docker daemon answers at {host}: {detail}"))
        })
    }

    /// Wraps an already configured bollard client, negotiating its API version.
    pub async fn with_client(docker: Docker) -> Result<Self> {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unavailable_or_other(&e))?;
        Ok(Self { docker })
    }

    /// The underlying bollard client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

/// How a bollard error is reported when no operation-specific meaning applies.
fn unavailable_or_other(err: &DockerError) -> RuntimeError {
    if is_connection_error(err) {
        RuntimeError::Unavailable(err.to_string())
    } else {
        RuntimeError::Other(docker_message(err))
    }
}

/// Whether the daemon could not be reached at all (as opposed to answering with an error).
fn is_connection_error(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::HyperLegacyError { .. }
            | DockerError::IOError { .. }
            | DockerError::SocketNotFoundError(_)
            | DockerError::RequestTimeoutError
            | DockerError::UnsupportedURISchemeError { .. }
    )
}

/// The HTTP status the daemon answered with, if it answered.
fn status_of(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon's own message when it gave one, else the error's text.
fn docker_message(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        DockerError::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}

/// Maps an error of an operation on container (or volume) `id`: 404 is `NotFound`, an unreachable daemon
/// is `Unavailable`, anything else goes through `other`.
fn container_error(id: &str, err: &DockerError, other: fn(String) -> RuntimeError) -> RuntimeError {
    if status_of(err) == Some(404) {
        RuntimeError::NotFound(id.to_string())
    } else if is_connection_error(err) {
        RuntimeError::Unavailable(err.to_string())
    } else {
        other(docker_message(err))
    }
}

/// `(repository, tag)` of an image reference to pull; the tag defaults to `latest` and a
/// digest reference (`repo@sha256:...`) is pulled as it is.
pub fn split_image_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last_segment_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_segment_start..].rfind(':') {
        Some(i) => {
            let at = last_segment_start + i;
            (image[..at].to_string(), Some(image[at + 1..].to_string()))
        }
        None => (image.to_string(), Some("latest".to_string())),
    }
}

/// `(port, protocol)` of a Docker port key such as `80/tcp`.
fn parse_port_key(key: &str) -> Option<(u16, String)> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, protocol.to_string()))
}

/// The runtime state of a container from Docker's inspect answer.
pub fn container_state(inspect: ContainerInspectResponse) -> ContainerState {
    let state = inspect.state.unwrap_or_default();
    let config = inspect.config.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let started = state
        .started_at
        .as_deref()
        .is_some_and(|t| !t.is_empty() && !t.starts_with(ZERO_TIME_PREFIX));
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::Unknown,
    };

    let volumes = inspect
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.name.clone())
        .collect();
    let mut networks: Vec<(String, String)> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(name, endpoint)| {
            let ip = endpoint.ip_address.clone().filter(|ip| !ip.is_empty())?;
            Some((name.clone(), ip))
        })
        .collect();
    networks.sort();
    let network_mode = inspect
        .host_config
        .and_then(|h| h.network_mode)
        .unwrap_or_default();
    let mut ports = Vec::new();
    if network_mode == "host" {
        // No NAT in host mode: each exposed port is the same port on the host.
        for key in config.exposed_ports.iter().flatten() {
            if let Some((port, protocol)) = parse_port_key(key) {
                ports.push(PortBinding {
                    container_port: port,
                    protocol,
                    host_ip: "0.0.0.0".into(),
                    host_port: port,
                });
            }
        }
    } else {
        let map = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for (key, bindings) in map {
            let Some((container_port, protocol)) = parse_port_key(&key) else {
                continue;
            };
            for binding in bindings.into_iter().flatten() {
                let Some(host_port) = binding.host_port.as_deref().and_then(|p| p.parse().ok())
                else {
                    continue;
                };
                ports.push(PortBinding {
                    container_port,
                    protocol: protocol.clone(),
                    host_ip: binding.host_ip.unwrap_or_default(),
                    host_port,
                });
            }
        }
        ports.sort_by(|a, b| {
            (a.container_port, &a.protocol, &a.host_ip).cmp(&(
                b.container_port,
                &b.protocol,
                &b.host_ip,
            ))
        });
    }

    ContainerState {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        image_id: inspect.image.filter(|i| !i.is_empty()),
        running,
        exit_code: (!running && started).then(|| state.exit_code.unwrap_or(0)),
        started,
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.filter(|e| !e.is_empty()),
        health,
        ports,
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        restart_count: inspect
            .restart_count
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(0),
        created_at: inspect.created.as_deref().and_then(system_time),
        started_at: started
            .then(|| state.started_at.as_deref().and_then(system_time))
            .flatten(),
        finished_at: (!running && started)
            .then(|| state.finished_at.as_deref().and_then(system_time))
            .flatten(),
        networks,
        volumes,
    }
}

/// One of Docker's UTC timestamps as a `SystemTime`.
fn system_time(text: &str) -> Option<std::time::SystemTime> {
    let seconds = epoch_seconds(text)?;
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)
}

/// Epoch seconds of one of Docker's UTC timestamps (`2024-01-01T00:00:01.5Z`); `None` for
/// the zero time or anything else.
pub fn epoch_seconds(text: &str) -> Option<f64> {
    epoch_nanos(text).map(|n| (n / 1_000_000_000) as f64 + (n % 1_000_000_000) as f64 / 1e9)
}

/// Nanoseconds since the epoch of one of Docker's UTC timestamps, exactly; `None` for the
/// zero time or anything else.
pub fn epoch_nanos(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if fraction.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u64 = format!("{fraction:0<9}").parse().ok()?;
    let days = berth_core::civil::days_from_civil(year, month, day);
    let seconds = u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// A line of `docker logs --timestamps`: `TIMESTAMP TEXT`.
fn log_line(output: bollard::container::LogOutput) -> Result<LogLine> {
    let bytes = output.into_bytes();
    let at = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    let timestamp_ns = std::str::from_utf8(&bytes[..at])
        .ok()
        .and_then(epoch_nanos)
        .ok_or_else(|| RuntimeError::Other("a log line without a timestamp".into()))?;
    Ok(LogLine {
        timestamp_ns,
        text: bytes.slice((at + 1).min(bytes.len())..),
    })
}

/// The runtime event of a Docker container event, if it is one the agent cares about.
pub fn runtime_event(message: &EventMessage) -> Option<RuntimeEvent> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let actor = message.actor.as_ref()?;
    let id = actor.id.clone()?;
    let action = message.action.as_deref()?;
    match action {
        "start" => Some(RuntimeEvent::Started { id }),
        "die" => {
            let exit_code = actor
                .attributes
                .as_ref()
                .and_then(|a| a.get("exitCode"))
                .and_then(|c| c.parse().ok());
            Some(RuntimeEvent::Died { id, exit_code })
        }
        _ => match action.strip_prefix("health_status:").map(str::trim) {
            Some("healthy") => Some(RuntimeEvent::HealthChanged {
                id,
                health: Health::Healthy,
            }),
            Some("unhealthy") => Some(RuntimeEvent::HealthChanged {
                id,
                health: Health::Unhealthy,
            }),
            _ => None,
        },
    }
}

/// Docker filters selecting containers that carry every one of `labels`.
fn label_filters(labels: &BTreeMap<String, String>) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    if !labels.is_empty() {
        filters.insert(
            "label".to_string(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        );
    }
    filters
}

/// A Docker `since`/`until` timestamp (`seconds.nanoseconds`).
fn docker_timestamp(nanos_since_epoch: u128) -> String {
    format!(
        "{}.{:09}",
        nanos_since_epoch / 1_000_000_000,
        nanos_since_epoch % 1_000_000_000
    )
}

/// Up to half of `d` taken off, so that agents sharing a daemon do not reconnect in step.
fn with_jitter(d: Duration) -> Duration {
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(0.5 + f64::from(noise % 1000) / 2000.0)
}

/// Forwards Docker events to `tx` until it is closed, reconnecting with backoff (resuming from
/// the last event seen, and telling the receiver to resync) whenever the stream breaks.
async fn pump_events(
    docker: Docker,
    filters: HashMap<String, Vec<String>>,
    mut since: u128,
    tx: mpsc::Sender<RuntimeEvent>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let options = EventsOptionsBuilder::default()
            .since(&docker_timestamp(since))
            .filters(&filters)
            .build();
        let mut stream = docker.events(Some(options));
        let connected_at = Instant::now();
        loop {
            let item = tokio::select! {
                () = tx.closed() => return,
                item = stream.next() => item,
            };
            match item {
                Some(Ok(message)) => {
                    if let Some(nanos) = message.time_nano.and_then(|n| u128::try_from(n).ok()) {
                        since = since.max(nanos + 1);
                    }
                    if let Some(event) = runtime_event(&message) {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "Docker event stream failed; reconnecting");
                    break;
                }
                None => {
                    tracing::warn!("Docker event stream ended; reconnecting");
                    break;
                }
            }
        }
        if connected_at.elapsed() >= HEALTHY_STREAM {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(with_jitter(backoff)) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if tx.send(RuntimeEvent::Resync).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<ExecProcess> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let options = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            cmd: Some(spec.command.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(id, options)
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Other))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: spec.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Other))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(ExecProcess {
                id: created.id,
                output: output
                    .map(|item| {
                        item.map(|out| out.into_bytes())
                            .map_err(|e| RuntimeError::Other(docker_message(&e)))
                    })
                    .boxed(),
                input,
            }),
            StartExecResults::Detached => Err(RuntimeError::Other(
                "the Docker daemon started the command detached".into(),
            )),
        }
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value> {
        self.stats_sample(id, true).await
    }

    async fn stats_with_previous(&self, id: &str) -> Result<serde_json::Value> {
        // Without one-shot, Docker samples twice, a second apart, and answers both.
        self.stats_sample(id, false).await
    }

    async fn logs(&self, id: &str, since: u64, follow: bool) -> Result<LogLines> {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(since).unwrap_or(i32::MAX))
            .build();
        let id_owned = id.to_string();
        let lines = self
            .docker
            .logs(id, Some(options))
            .map(move |item| match item {
                Ok(output) => log_line(output),
                Err(e) => Err(container_error(&id_owned, &e, RuntimeError::Other)),
            });
        Ok(Box::pin(lines))
    }

    async fn bridge_gateway(&self) -> Option<std::net::IpAddr> {
        let network = self.docker.inspect_network("bridge", None).await.ok()?;
        network
            .ipam?
            .config?
            .iter()
            .filter_map(|c| c.gateway.as_deref()?.parse::<std::net::IpAddr>().ok())
            .find(std::net::IpAddr::is_ipv4)
    }

    async fn exec_resize(&self, exec_id: &str, cols: u16, rows: u16) -> Result<()> {
        let options = bollard::exec::ResizeExecOptions {
            height: rows,
            width: cols,
        };
        self.docker
            .resize_exec(exec_id, options)
            .await
            .map_err(|e| RuntimeError::Other(docker_message(&e)))
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        let inspected = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| RuntimeError::Other(docker_message(&e)))?;
        Ok(if inspected.running == Some(true) {
            None
        } else {
            inspected.exit_code
        })
    }

    async fn ping(&self) -> Result<RuntimeInfo> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| unavailable_or_other(&e))?;
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| unavailable_or_other(&e))?;
        let plugins = info.plugins.unwrap_or_default();
        Ok(RuntimeInfo {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version,
            log_drivers: plugins.log.unwrap_or_default(),
            volume_drivers: plugins.volume.unwrap_or_default(),
            cgroup_driver: info.cgroup_driver.map(|d| d.to_string()),
        })
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(unavailable_or_other(&e)),
        }
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
    ) -> Result<()> {
        let (repository, tag) = split_image_reference(image);
        let reference = match &tag {
            Some(tag) => format!("{repository}:{tag}"),
            None => repository.clone(),
        };
        let mut options = CreateImageOptionsBuilder::default().from_image(&repository);
        if let Some(tag) = &tag {
            options = options.tag(tag);
        }
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut progress = self
            .docker
            .create_image(Some(options.build()), None, credentials);
        while let Some(item) = progress.next().await {
            if let Err(err) = item {
                if is_connection_error(&err) {
                    return Err(RuntimeError::Unavailable(err.to_string()));
                }
                return Err(RuntimeError::ImagePull {
                    image: reference,
                    message: docker_message(&err),
                });
            }
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self
            .docker
            .create_container(Some(options), create_body(spec))
            .await
        {
            Ok(created) => Ok(created.id),
            Err(e) if is_connection_error(&e) => Err(RuntimeError::Unavailable(e.to_string())),
            Err(e) => Err(RuntimeError::Create(docker_message(&e))),
        }
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Start))
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        // 304 (already stopped) counts as success.
        self.docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Other))
    }

    async fn kill_container(&self, id: &str) -> Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal("KILL")
            .build();
        match self.docker.kill_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // "Container ... is not running"
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(container_error(id, &e, RuntimeError::Other)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // "removal of container ... is already in progress"
            Err(e)
                if status_of(&e) == Some(409)
                    && docker_message(&e).contains("already in progress") =>
            {
                Ok(())
            }
            Err(e) => Err(container_error(id, &e, RuntimeError::Other)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        // Not forced: a volume still in use (409) stays, and says so.
        self.docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
            .map_err(|e| container_error(name, &e, RuntimeError::Other))
    }

    async fn container_pid(&self, id: &str) -> Result<u32> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Other))?;
        inspect
            .state
            .and_then(|s| s.pid)
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
            .ok_or_else(|| RuntimeError::Other(format!("container {id} is not running")))
    }

    async fn import_image(&self, reference: &str, rootfs: Vec<u8>) -> Result<()> {
        let (repository, tag) = split_image_reference(reference);
        let mut options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(&repository);
        if let Some(tag) = &tag {
            options = options.tag(tag);
        }
        let body = bollard::body_full(bytes::Bytes::from(rootfs));
        let mut progress = self
            .docker
            .create_image(Some(options.build()), Some(body), None);
        while let Some(item) = progress.next().await {
            if let Err(err) = item {
                if is_connection_error(&err) {
                    return Err(RuntimeError::Unavailable(err.to_string()));
                }
                return Err(RuntimeError::Other(format!(
                    "cannot import image {reference}: {}",
                    docker_message(&err)
                )));
            }
        }
        Ok(())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| container_error(id, &e, RuntimeError::Other))?;
        Ok(container_state(inspect))
    }

    async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerState>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filters(labels))
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| unavailable_or_other(&e))?;
        let mut states = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|s| s.id) {
            match self.inspect_container(&id).await {
                Ok(state) => states.push(state),
                // Removed between the list and the inspect.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(states)
    }

    async fn events(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<mpsc::Receiver<RuntimeEvent>> {
        // Fail now when the daemon is away; later failures are retried in the background.
        self.docker
            .version()
            .await
            .map_err(|e| unavailable_or_other(&e))?;
        let mut filters = label_filters(labels);
        filters.insert("type".to_string(), vec!["container".to_string()]);
        // Start from now even though the stream connects a little later, so that an event
        // between this call and the connection is not lost.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(pump_events(self.docker.clone(), filters, since, tx));
        Ok(rx)
    }
}

#[cfg(test)]
mod tests;
