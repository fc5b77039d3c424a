//! `berth agent`: the host agent alone — registers this host with a cluster of a Berth server
//! and runs the tasks the server assigns it on the local Docker daemon.

use anyhow::Context;
use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::ContainerRuntime;
use berth_agent::AgentConfig;
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
    /// URL of the Berth server, e.g. http://127.0.0.1:7700.
    #[arg(long)]
    pub server: String,
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
        let mut config = AgentConfig::new(&self.server, &self.cluster, data_dir, credentials);
        config.attributes = self.attributes.clone();
        config.availability_zone = self.availability_zone.clone();
        config.task_cleanup_wait = self.task_cleanup_wait;
        config.pull_timeout = self.image_pull_timeout;
        Ok(config)
    }
}

/// Connects to Docker, then runs the agent until Ctrl-C or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = connect_docker().await?;
    println!(
        "Berth agent joining cluster '{}' at {}.",
        args.cluster, args.server
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
