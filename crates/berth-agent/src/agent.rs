//! The agent's main loop: find out which instance it is (`crate::recovery`), register, then
//! heartbeat, follow the desired-state stream into the task engine and send its reports,
//! until shutdown. Containers keep running when the agent stops (as with ECS); the next run
//! re-adopts them. Given several replicas of the server, it registers once and moves its
//! stream, heartbeats and reports to the next replica when the one in use stops answering,
//! resuming the stream from the last revision it applied.

use crate::backoff::Backoff;
use crate::client::{ClientError, ServerClient};
use crate::engine::{bounds, Engine, EngineConfig};
use crate::identity::{self, IdentityError};
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::{recovery, register, reporter};
use berth_core::gateway::{DesiredTracker, Heartbeat};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The server sends a line at least every 15 s; this long without one means the stream is dead.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// How long reports still queued at shutdown may take to go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URLs of the server's replicas, `http://HOST:PORT`, in order of preference: the
    /// agent uses one at a time and moves to the next when it stops answering. One URL (a
    /// DNS name may resolve to several replicas) is the usual case.
    pub servers: Vec<String>,
    /// Cluster to join.
    pub cluster: String,
    /// Where the agent keeps its identity.
    pub data_dir: PathBuf,
    /// The user's attributes (`--attribute KEY=VALUE`).
    pub attributes: Vec<(String, Option<String>)>,
    /// `ecs.availability-zone`, when configured.
    pub availability_zone: Option<String>,
    /// How long stopped containers stay before they are removed.
    pub task_cleanup_wait: Duration,
    /// Memory kept back from tasks, in MiB.
    pub memory_reserve_mib: u64,
    /// Region named in the request signature.
    pub region: String,
    /// What the agent signs its requests with.
    pub credentials: berth_core::sigv4::Credentials,
    /// The CA certificates (PEM) an `https://` server must chain to; `None`: the system's.
    pub ca: Option<PathBuf>,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Time between SIGTERM and SIGKILL for containers without a `stopTimeout`.
    pub default_stop_timeout: Duration,
    /// How long a task may stay PENDING pulling its images (retries included).
    pub pull_timeout: Duration,
    /// What this host allows of task definitions that grant root on it (`--allow-*` and
    /// `--forbid-root-user`); nothing by default.
    pub allowances: berth_core::task_definition::admission::Allowances,
    /// Whether to serve the task metadata endpoint (`crate::metadata`) to the containers.
    pub metadata_endpoint: bool,
    /// Whether to sample the tasks' resource use and report it (`crate::stats`).
    pub usage_reports: bool,
    /// Where to serve the agent's `/metrics` (`crate::metrics`); `None`: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// When images are pulled (ECS's `ECS_IMAGE_PULL_BEHAVIOR`; `default` pulls every time
    /// and falls back to the host's image).
    pub pull_behavior: crate::engine::PullBehavior,
    /// Registry credentials for every pull (`--registry-auth`, a Docker `config.json`).
    pub registry_auth: Option<Arc<crate::registry::DockerConfig>>,
    /// Where the CNI reference plugins are, for awsvpc tasks; `None`: no awsvpc here.
    pub cni_plugin_dir: Option<PathBuf>,
}

impl AgentConfig {
    /// A configuration for the server at `server` (set [`AgentConfig::servers`] for several
    /// replicas) with the defaults: cleanup after 1 h, 256 MiB reserve, heartbeats every 5 s,
    /// pulls within 10 min, region us-east-1, nothing that grants root on the host allowed.
    pub fn new(
        server: &str,
        cluster: &str,
        data_dir: PathBuf,
        credentials: berth_core::sigv4::Credentials,
    ) -> AgentConfig {
        AgentConfig {
            servers: vec![server.to_string()],
            cluster: cluster.to_string(),
            data_dir,
            attributes: Vec::new(),
            availability_zone: None,
            task_cleanup_wait: Duration::from_secs(3600),
            memory_reserve_mib: crate::host::DEFAULT_MEMORY_RESERVE_MIB,
            region: "us-east-1".into(),
            credentials,
            ca: None,
            heartbeat_interval: Duration::from_secs(5),
            default_stop_timeout: crate::spec::DEFAULT_STOP_TIMEOUT,
            pull_timeout: bounds::DEFAULT_PULL_TIMEOUT,
            allowances: Default::default(),
            metadata_endpoint: true,
            usage_reports: true,
            pull_behavior: crate::engine::PullBehavior::Default,
            registry_auth: None,
            cni_plugin_dir: None,
            metrics_listen: Some(std::net::SocketAddr::from((
                std::net::Ipv4Addr::LOCALHOST,
                crate::metrics::DEFAULT_PORT,
            ))),
        }
    }
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The container runtime does not answer.
    #[error("no container runtime answers: {0}")]
    RuntimeUnavailable(RuntimeError),
    /// The container runtime failed while the engine started.
    #[error("the container runtime failed: {0}")]
    Runtime(RuntimeError),
    /// The server URL is unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server refused the registration.
    #[error("cluster {cluster} refused this instance: {message}{}", identity_hint(.identity_file))]
    Registration {
        cluster: String,
        message: String,
        identity_file: Option<PathBuf>,
    },
    /// The identity in the data dir could not be read or kept.
    #[error("agent identity: {0}")]
    Identity(#[from] IdentityError),
    /// The agent cannot tell which instance it is and will not register a second one.
    #[error("refusing to start: {0}")]
    IdentityLost(String),
}

fn identity_hint(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => format!(
            " (this agent registered as the instance kept in {}; remove that file to join as a new instance)",
            path.display()
        ),
        None => String::new(),
    }
}

/// Runs the agent until `shutdown` resolves: registers the host, then heartbeats, follows
/// the desired-state stream and drives containers through `runtime`. Containers keep
/// running after it returns.
pub async fn run(
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    tokio::pin!(shutdown);
    let calls = Arc::new(crate::metrics::RuntimeCalls::default());
    let runtime: Arc<dyn ContainerRuntime> = if config.metrics_listen.is_some() {
        Arc::new(crate::metrics::MeasuredRuntime::new(
            runtime,
            Arc::clone(&calls),
        ))
    } else {
        runtime
    };
    let client = ServerClient::with_servers(
        &config.servers,
        &config.region,
        config.credentials.clone(),
        config.ca.as_deref(),
    )?;
    let info = bounds::bounded(bounds::CALL_TIMEOUT, runtime.ping())
        .await
        .map_err(AgentError::RuntimeUnavailable)?;
    let home = identity::home_id(&config.data_dir)?;
    let previous = tokio::select! {
        previous = recovery::previous_identity(&config, &home, runtime.as_ref()) => previous?,
        _ = &mut shutdown => return Ok(()),
    };
    // The endpoints are bound first, so the registration claims only what they serve.
    let metadata = if config.metadata_endpoint {
        metadata_listener(&config, runtime.as_ref()).await
    } else {
        None
    };
    let mut served: Vec<&str> = Vec::new();
    if metadata
        .as_ref()
        .is_some_and(|(m, _)| m.serves_credentials())
    {
        served.extend(crate::host::TASK_ROLE_CAPABILITIES);
    }
    let awsvpc =
        config
            .cni_plugin_dir
            .as_deref()
            .and_then(|dir| match crate::awsvpc::preflight(dir) {
                Ok(()) => Some(dir.to_path_buf()),
                Err(problem) => {
                    tracing::warn!("awsvpc tasks cannot run here: {problem}");
                    None
                }
            });
    if awsvpc.is_some() {
        served.push(crate::awsvpc::TASK_ENI_CAPABILITY);
    }
    // Replicas of one server sit on one network: the route to the one in use tells.
    let host_address =
        crate::host::address(client.base_url(), runtime.bridge_gateway().await).await;
    let identity = tokio::select! {
        identity = register::register(&config, &client, &info, previous, &served, host_address) => identity?,
        _ = &mut shutdown => return Ok(()),
    };
    let instance_id = identity.instance_id().to_string();
    tracing::info!(cluster = %config.cluster, instance = %identity.container_instance_arn, "registered");

    let (reports, report_queue) = mpsc::unbounded_channel();
    let reporter = reporter::spawn(Arc::new(client.clone()), report_queue);
    let mut engine_config = EngineConfig::new(&config.cluster, &instance_id);
    engine_config.cleanup_delay = config.task_cleanup_wait;
    engine_config.default_stop_timeout = config.default_stop_timeout;
    engine_config.agent_home = Some(home);
    engine_config.pull_timeout = config.pull_timeout;
    engine_config.pull_behavior = config.pull_behavior;
    engine_config.registry_auth = config.registry_auth.clone();
    engine_config.server = Some(crate::engine::ServerLink {
        client: client.clone(),
        cluster: config.cluster.clone(),
        instance_id: instance_id.clone(),
    });
    engine_config.allowances = config.allowances.clone();
    engine_config.metadata = metadata.as_ref().map(|(endpoint, _)| Arc::clone(endpoint));
    engine_config.task_cgroups = info.cgroup_driver.as_deref() == Some("cgroupfs")
        && crate::awsvpc::preflight_root().is_ok();
    if let Some(dir) = awsvpc {
        let mut labels = crate::spec::instance_labels(&config.cluster, &instance_id);
        if let Some(home) = &engine_config.agent_home {
            labels.insert(crate::spec::LABEL_AGENT_HOME.into(), home.clone());
        }
        match crate::awsvpc::CniNetworking::new(
            Arc::clone(&runtime),
            &dir,
            config.data_dir.join("awsvpc"),
            labels,
        ) {
            Ok(networking) => engine_config.networking = Some(Arc::new(networking)),
            Err(problem) => tracing::warn!("awsvpc tasks cannot run here: {problem}"),
        }
    }
    let logs = Arc::new(crate::logs::LogShipper::new(
        client.clone(),
        &config.cluster,
        &instance_id,
    ));
    engine_config.logs = Some(Arc::clone(&logs));
    let exec_runtime = Arc::clone(&runtime);
    let mut engine = tokio::select! {
        engine = start_engine(runtime, engine_config, reports) => engine,
        _ = &mut shutdown => return Ok(()),
    };
    let metadata_servers: Vec<_> = metadata
        .map(|(endpoint, listeners)| {
            let link = Arc::new(crate::metadata::AgentLink {
                client: client.clone(),
                cluster: config.cluster.clone(),
                instance_id: instance_id.clone(),
                availability_zone: config.availability_zone.clone(),
                credentials: Arc::default(),
            });
            listeners
                .into_iter()
                .map(|listener| {
                    tokio::spawn(crate::metadata::serve(
                        listener,
                        Arc::clone(&endpoint),
                        engine.board(),
                        Arc::clone(&exec_runtime),
                        Arc::clone(&link),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let metrics_server = match config.metrics_listen {
        Some(addr) => metrics_listener(&config, addr)
            .await
            .map(|(listener, token)| {
                tokio::spawn(crate::metrics::serve(
                    listener,
                    Arc::new(crate::metrics::Sources {
                        calls,
                        runtime: Arc::clone(&exec_runtime),
                        logs: Arc::clone(&logs),
                        labels: crate::spec::instance_labels(&config.cluster, &instance_id),
                        token,
                    }),
                ))
            }),
        None => None,
    };
    let usage = config.usage_reports.then(|| {
        tokio::spawn(crate::stats::run(
            client.clone(),
            Arc::clone(&exec_runtime),
            config.cluster.clone(),
            instance_id.clone(),
        ))
    });
    let heartbeat = Heartbeat {
        cluster: config.cluster.clone(),
        container_instance: instance_id.clone(),
    };
    let heartbeats = tokio::spawn(send_heartbeats(
        client.clone(),
        heartbeat,
        config.heartbeat_interval,
    ));

    tokio::select! {
        _ = &mut shutdown => {}
        _ = follow_desired(&client, &config.cluster, &instance_id, &mut engine, &exec_runtime) => {}
    }
    tracing::info!("agent stopping; containers keep running");
    heartbeats.abort();
    if let Some(usage) = usage {
        usage.abort();
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    for server in metadata_servers {
        server.abort();
    }
    drop(engine);
    logs.stop_all();
    if tokio::time::timeout(SHUTDOWN_FLUSH, reporter)
        .await
        .is_err()
    {
        tracing::warn!("some task state reports were not delivered before shutdown");
    }
    Ok(())
}

/// The task metadata endpoint and its listeners: on the runtime's bridge gateway (loopback
/// when it has none), and the task credentials endpoint's on 169.254.170.2 when it can be
/// served there; `None` (logged) when the endpoint cannot be served.
async fn metadata_listener(
    config: &AgentConfig,
    runtime: &dyn ContainerRuntime,
) -> Option<(
    Arc<crate::metadata::MetadataEndpoint>,
    Vec<tokio::net::TcpListener>,
)> {
    let ip = runtime
        .bridge_gateway()
        .await
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let bound = match crate::metadata::load_key(&config.data_dir) {
        Ok(key) => crate::metadata::bind(&config.data_dir, ip)
            .await
            .map(|listener| (key, listener)),
        Err(e) => Err(e),
    };
    let served = bound.and_then(|(key, listener)| Ok((key, listener.local_addr()?, listener)));
    let (key, addr, listener) = match served {
        Ok(served) => served,
        Err(e) => {
            tracing::warn!("no task metadata endpoint: {e}");
            return None;
        }
    };
    tracing::info!(%addr, "serving the task metadata endpoint");
    let mut endpoint = crate::metadata::MetadataEndpoint::new(addr, key);
    let mut listeners = vec![listener];
    match crate::metadata::credentials::bind(&config.data_dir).await {
        Ok(credentials) => match credentials.local_addr() {
            Ok(at) => {
                tracing::info!(addr = %at, "serving task role credentials");
                endpoint = endpoint.with_credentials(at);
                listeners.push(credentials);
            }
            Err(e) => tracing::warn!("no task credentials endpoint: {e}"),
        },
        Err(e) => tracing::warn!(
            "no task credentials endpoint (tasks with a taskRoleArn will not start): {e}"
        ),
    }
    Some((Arc::new(endpoint), listeners))
}

/// The `/metrics` listener and its token; `None` (logged) when it cannot be served.
async fn metrics_listener(
    config: &AgentConfig,
    addr: std::net::SocketAddr,
) -> Option<(tokio::net::TcpListener, String)> {
    let served = match crate::metrics::load_token(&config.data_dir) {
        Ok(token) => crate::metrics::bind(&config.data_dir, addr)
            .await
            .map(|listener| (listener, token)),
        Err(e) => Err(e),
    };
    match served {
        Ok((listener, token)) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving the agent's /metrics");
            }
            Some((listener, token))
        }
        Err(e) => {
            tracing::warn!("no agent /metrics: {e}");
            None
        }
    }
}

/// Starts the engine, retrying with backoff while the runtime is away (a Docker daemon
/// restarting as the agent starts).
async fn start_engine(
    runtime: Arc<dyn ContainerRuntime>,
    config: EngineConfig,
    reports: mpsc::UnboundedSender<berth_core::gateway::SubmitTaskStateChange>,
) -> Engine {
    let mut backoff = Backoff::default();
    let mut attempts = 0u32;
    loop {
        match Engine::start(Arc::clone(&runtime), config.clone(), reports.clone()).await {
            Ok(engine) => return engine,
            Err(err) => {
                attempts += 1;
                if attempts.is_power_of_two() {
                    tracing::warn!("cannot read this host's containers yet, retrying: {err}");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Follows the desired-state stream forever, feeding each line to the engine; reconnects
/// with backoff from the last revision seen — to the next server when the one in use stopped
/// answering (the client moves on by itself), which resumes from that revision too: the
/// replicas share one store, so its revisions mean the same on each.
async fn follow_desired(
    client: &ServerClient,
    cluster: &str,
    instance_id: &str,
    engine: &mut Engine,
    runtime: &Arc<dyn ContainerRuntime>,
) {
    let mut since: Option<u64> = None;
    let mut tracker = DesiredTracker::default();
    let mut backoff = Backoff::default();
    let mut failing = false;
    loop {
        if since.is_none() {
            tracker.reset();
        }
        match client.desired_stream(cluster, instance_id, since).await {
            Ok(mut stream) => loop {
                match stream.next_update_within(STREAM_IDLE_TIMEOUT).await {
                    Ok(Some(mut update)) => {
                        for request in std::mem::take(&mut update.exec) {
                            tokio::spawn(crate::exec::run(
                                client.clone(),
                                Arc::clone(runtime),
                                instance_id.to_string(),
                                request,
                            ));
                        }
                        if failing {
                            tracing::info!(server = %stream.server_url(), "desired-state stream back");
                            failing = false;
                        }
                        backoff.reset();
                        match tracker.apply(update) {
                            Ok(state) => {
                                since = Some(state.revision);
                                engine.apply(&state);
                            }
                            Err(err) => {
                                tracing::warn!("{err}; asking for the whole desired state");
                                since = None;
                                break;
                            }
                        }
                    }
                    Ok(None) => {
                        tracing::debug!("desired-state stream ended; reconnecting");
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(server = %stream.server_url(), "desired-state stream broke, reconnecting: {err}");
                        break;
                    }
                }
            },
            Err(err) => {
                if !failing {
                    tracing::warn!("cannot follow the desired state, retrying: {err}");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Sends a heartbeat every `interval`, forever.
async fn send_heartbeats(client: ServerClient, heartbeat: Heartbeat, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match client.heartbeat(&heartbeat).await {
            Ok(()) if failing => {
                tracing::info!(server = %client.base_url(), "heartbeats reach the server again");
                failing = false;
            }
            Ok(()) => {}
            Err(err) if !failing => {
                tracing::warn!("heartbeat failed: {err}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
