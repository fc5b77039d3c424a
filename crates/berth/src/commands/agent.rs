//! `berth agent`: the host agent alone — registers this host with a cluster of a Berth server
//! and runs the tasks the server assigns it on the local Docker daemon.

use anyhow::Context;
use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::ContainerRuntime;
use berth_agent::AgentConfig;
use berth_core::task_definition::admission::{capability_name, normalize_path, Allowances};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What to do when no Docker daemon answers, for `berth agent` and `berth up`.
pub const DOCKER_HINT: &str =
    "Start Docker (e.g. `sudo systemctl start docker`, or `sudo dockerd &`; \
     from a Berth checkout, `scripts/ensure-docker` installs and starts one), or point \
     DOCKER_HOST at a running daemon, then try again.";

/// Options of `berth agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// URL of the Berth server, e.g. http://127.0.0.1:7700 or https://berth.example:7700;
    /// for a server of several replicas, their URLs separated by commas (or --server
    /// repeated), e.g. http://a:7700,http://b:7700,http://c:7700: the agent uses one at a time
    /// and moves to the next when it stops answering, keeping its instance and its tasks. A
    /// DNS name that resolves to every replica's address works as one URL.
    #[arg(
        long,
        required = true,
        value_delimiter = ',',
        value_name = "URL[,URL...]"
    )]
    pub server: Vec<String>,
    /// CA certificate (PEM) the server's TLS certificate must chain to: a Berth server's own
    /// CA is DATA_DIR/tls/ca.pem. Without it, https:// servers need a certificate the
    /// system trusts.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Cluster to join.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Directory where the agent keeps its identity (default: $BERTH_DATA_DIR or
    /// ~/.local/share/berth).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A custom attribute of this instance, KEY=VALUE (or KEY); repeatable.
    #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, Option<String>)>,
    /// Availability zone reported as the `ecs.availability-zone` attribute.
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// How long stopped containers are kept before removal, e.g. 30s, 10m, 1h.
    #[arg(long, default_value = "1h", value_parser = super::parse_duration)]
    pub task_cleanup_wait: Duration,
    /// How long a task may stay PENDING pulling its images (retries of a Docker daemon that
    /// is away included) before it stops with CannotPullContainerError, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = super::parse_duration)]
    pub image_pull_timeout: Duration,
    /// When images are pulled, as ECS's ECS_IMAGE_PULL_BEHAVIOR: default (every time; the
    /// host's image when the pull fails), always (a failed pull fails the task), once (the
    /// first time this agent runs it), prefer-cached (only when the host lacks it).
    #[arg(long, default_value = "default")]
    pub image_pull_behavior: berth_agent::engine::PullBehavior,
    /// A Docker config.json whose `auths` give registry credentials for every pull (as ECS's
    /// ECS_ENGINE_AUTH_TYPE=dockercfg).
    #[arg(long, value_name = "CONFIG_JSON")]
    pub registry_auth: Option<PathBuf>,
    /// Where the agent serves its Prometheus `/metrics` (bearer token in
    /// DATA_DIR/metrics.token); another port when this one is taken, written to
    /// DATA_DIR/metrics.port.
    #[arg(long, default_value = "127.0.0.1:51678")]
    pub metrics_listen: std::net::SocketAddr,
    /// Offer Fargate capacity: tasks of the FARGATE launch type (and of the FARGATE and
    /// FARGATE_SPOT capacity providers) may be placed here.
    #[arg(long)]
    pub fargate: bool,
    #[command(flatten)]
    pub network: TaskNetworkArgs,
    #[command(flatten)]
    pub allow: AllowArgs,
}

/// How awsvpc tasks get their network, for `berth agent` and `berth up`.
#[derive(Debug, Clone, Args)]
pub struct TaskNetworkArgs {
    /// Where the CNI reference plugins (bridge, host-local, firewall) are: Debian's
    /// containernetworking-plugins puts them in /usr/lib/cni.
    #[arg(long, value_name = "DIR", default_value = berth_agent::awsvpc::DEFAULT_PLUGIN_DIR)]
    pub cni_plugin_dir: std::path::PathBuf,
    /// Run no awsvpc tasks here (the instance does not advertise ecs.capability.task-eni).
    #[arg(long)]
    pub no_awsvpc: bool,
}

impl TaskNetworkArgs {
    /// Sets `config` up for awsvpc tasks as the options say, and to offer Fargate capacity
    /// when `fargate`.
    pub fn apply(&self, config: &mut AgentConfig, fargate: bool) {
        config.cni_plugin_dir = (!self.no_awsvpc).then(|| self.cni_plugin_dir.clone());
        if fargate {
            config.attributes.push((
                berth_core::model::container_instance::FARGATE_CAPACITY_ATTRIBUTE.into(),
                None,
            ));
        }
    }
}

/// What this host allows of task definitions that grant root on it, for `berth agent` and
/// `berth up`. Everything is refused by default (a refused task stops with
/// TaskFailedToStart before any container is created); the cluster must allow it too, with
/// its `berth:allow-*` tags.
#[derive(Debug, Default, Args)]
pub struct AllowArgs {
    /// Allow privileged containers (`privileged: true`).
    #[arg(long)]
    pub allow_privileged: bool,
    /// Allow `networkMode: host`.
    #[arg(long)]
    pub allow_host_network: bool,
    /// Allow `pidMode: host`.
    #[arg(long)]
    pub allow_host_pid: bool,
    /// Allow `ipcMode: host`.
    #[arg(long)]
    pub allow_host_ipc: bool,
    /// Allow host bind mounts (`volumes[].host.sourcePath`) at or below this absolute path,
    /// symlinks followed; repeatable.
    #[arg(long = "allow-bind-mount", value_name = "PATH", value_parser = parse_host_path)]
    pub allow_bind_mounts: Vec<String>,
    /// Allow Docker volumes whose driver options bind-mount a host path (`o: bind`, or
    /// `type: none` with a `device`).
    #[arg(long)]
    pub allow_docker_volume_binds: bool,
    /// Allow `linuxParameters.devices`.
    #[arg(long)]
    pub allow_devices: bool,
    /// Allow adding this capability beyond Docker's default set (e.g. NET_ADMIN; ALL allows
    /// any); repeatable.
    #[arg(long = "allow-capability", value_name = "CAP")]
    pub allow_capabilities: Vec<String>,
    /// Allow `dockerSecurityOptions` that lift seccomp, AppArmor or SELinux confinement
    /// (`seccomp=unconfined`, `apparmor=unconfined`, `label=disable`,
    /// `systempaths=unconfined`).
    #[arg(long)]
    pub allow_unconfined: bool,
    /// Refuse containers whose `user` is root (`root`, `0`, `0:GID`, `root:GROUP`).
    #[arg(long)]
    pub forbid_root_user: bool,
}

impl AllowArgs {
    /// The allowances these flags grant.
    pub fn allowances(&self) -> Allowances {
        Allowances {
            privileged: self.allow_privileged,
            host_network: self.allow_host_network,
            host_pid: self.allow_host_pid,
            host_ipc: self.allow_host_ipc,
            bind_mount_prefixes: self.allow_bind_mounts.clone(),
            docker_volume_binds: self.allow_docker_volume_binds,
            devices: self.allow_devices,
            capabilities: self
                .allow_capabilities
                .iter()
                .map(|c| capability_name(c))
                .collect(),
            unconfined: self.allow_unconfined,
            forbid_root_user: self.forbid_root_user,
        }
    }
}

fn parse_host_path(text: &str) -> Result<String, String> {
    normalize_path(text).ok_or_else(|| format!("'{text}' is not an absolute path"))
}

impl AgentArgs {
    /// The agent configuration these options describe, with the credentials of this
    /// process's AWS environment (`AWS_ACCESS_KEY_ID`..., else `AWS_PROFILE` in the shared
    /// credentials file).
    pub fn config(&self) -> anyhow::Result<AgentConfig> {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(super::default_data_dir);
        let credentials = berth_agent::credentials::from_environment()?;
        let first = self.server.first().map(String::as_str).unwrap_or_default();
        let mut config = AgentConfig::new(first, &self.cluster, data_dir, credentials);
        config.servers = self.servers();
        config.attributes = self.attributes.clone();
        config.availability_zone = self.availability_zone.clone();
        config.task_cleanup_wait = self.task_cleanup_wait;
        config.pull_timeout = self.image_pull_timeout;
        config.pull_behavior = self.image_pull_behavior;
        if let Some(path) = &self.registry_auth {
            let auths = berth_agent::registry::DockerConfig::load(path)
                .map_err(|e| anyhow::anyhow!("--registry-auth: {e}"))?;
            config.registry_auth = Some(std::sync::Arc::new(auths));
        }
        config.allowances = self.allow.allowances();
        config.ca = self.ca.clone();
        config.metrics_listen = Some(self.metrics_listen);
        self.network.apply(&mut config, self.fargate);
        Ok(config)
    }

    /// The server URLs given, blank entries (`URL,`) left out.
    pub fn servers(&self) -> Vec<String> {
        self.server
            .iter()
            .map(|url| url.trim().to_string())
            .filter(|url| !url.is_empty())
            .collect()
    }
}

/// Connects to Docker, then runs the agent until Ctrl-C or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = connect_docker().await?;
    println!(
        "Berth agent joining cluster '{}' at {}.",
        args.cluster,
        args.servers().join(", ")
    );
    berth_agent::run(config, runtime, super::shutdown_signal())
        .await
        .context("the agent stopped with an error")?;
    println!("Berth agent stopped; containers keep running.");
    Ok(())
}

/// The local Docker daemon as a container runtime, or an error that says how to start one.
pub async fn connect_docker() -> anyhow::Result<Arc<dyn ContainerRuntime>> {
    match DockerRuntime::connect().await {
        Ok(docker) => Ok(Arc::new(docker)),
        Err(err) => anyhow::bail!("{err}\n{DOCKER_HINT}"),
    }
}

fn parse_attribute(text: &str) -> Result<(String, Option<String>), String> {
    berth_agent::host::parse_attribute(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        allow: AllowArgs,
    }

    fn allowances(args: &[&str]) -> Result<Allowances, clap::Error> {
        Flags::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
            .map(|flags| flags.allow.allowances())
    }

    #[test]
    fn without_flags_an_agent_allows_nothing_that_grants_root() {
        assert_eq!(allowances(&[]).expect("parses"), Allowances::default());
    }

    #[test]
    fn each_flag_sets_its_allowance_and_lists_repeat() {
        let all = allowances(&[
            "--allow-privileged",
            "--allow-host-network",
            "--allow-host-pid",
            "--allow-host-ipc",
            "--allow-bind-mount",
            "/srv/",
            "--allow-bind-mount",
            "/data/../opt",
            "--allow-docker-volume-binds",
            "--allow-devices",
            "--allow-capability",
            "net_admin",
            "--allow-capability",
            "CAP_SYS_TIME",
            "--allow-unconfined",
            "--forbid-root-user",
        ])
        .expect("parses");
        assert_eq!(
            all,
            Allowances {
                privileged: true,
                host_network: true,
                host_pid: true,
                host_ipc: true,
                bind_mount_prefixes: vec!["/srv".into(), "/opt".into()],
                docker_volume_binds: true,
                devices: true,
                capabilities: vec!["NET_ADMIN".into(), "SYS_TIME".into()],
                unconfined: true,
                forbid_root_user: true,
            }
        );
    }

    #[derive(Debug, Parser)]
    struct Agent {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn servers(args: &[&str]) -> Result<Vec<String>, clap::Error> {
        Agent::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
            .map(|flags| flags.agent.servers())
    }

    #[test]
    fn server_takes_one_url_or_a_comma_separated_list_of_replicas() {
        assert_eq!(
            servers(&["--server", "http://127.0.0.1:7700"]).expect("parses"),
            ["http://127.0.0.1:7700"]
        );
        assert_eq!(
            servers(&["--server", "http://a:7700,http://b:7700,"]).expect("parses"),
            ["http://a:7700", "http://b:7700"]
        );
        assert_eq!(
            servers(&["--server", "http://a:7700", "--server", "http://c:7700"]).expect("parses"),
            ["http://a:7700", "http://c:7700"]
        );
        assert!(servers(&[]).is_err(), "--server is required");
    }

    #[test]
    fn a_relative_bind_mount_path_is_refused() {
        let err = allowances(&["--allow-bind-mount", "srv"]).expect_err("refused");
        assert!(err.to_string().contains("not an absolute path"), "{err}");
    }
}
