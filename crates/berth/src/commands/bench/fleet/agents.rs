//! The hollow fleet: N real agents (`berth_agent::run`: registration, heartbeats, the
//! desired-state stream, state reports) in this process, each on its own data dir and its own
//! `HollowRuntime`, spread over three availability zones.

use super::api::{Api, CLUSTER};
use anyhow::bail;
use berth_agent::runtime::hollow::HollowRuntime;
use berth_agent::{AgentConfig, AgentError};
use berth_core::sigv4::Credentials;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Zones the agents report, round-robin.
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// How long stopping agents may take (each flushes its reports for up to 3 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The running agents.
#[derive(Debug)]
pub struct Fleet {
    runtimes: Vec<Arc<HollowRuntime>>,
    agents: Vec<JoinHandle<Result<(), AgentError>>>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Starts `count` agents of cluster [`CLUSTER`] against `endpoint`, with data dirs under
    /// `dir`, signing with `credentials`.
    pub fn start(endpoint: &str, count: usize, dir: &Path, credentials: &Credentials) -> Fleet {
        let (stop, stopped) = watch::channel(false);
        let mut runtimes = Vec::with_capacity(count);
        let mut agents = Vec::with_capacity(count);
        for i in 0..count {
            let mut config = AgentConfig::new(
                endpoint,
                CLUSTER,
                dir.join(format!("agent-{i}")),
                credentials.clone(),
            );
            config.availability_zone = Some(ZONES[i % ZONES.len()].to_string());
            // Hollow containers read no metadata; 5,000 listeners would only cost descriptors.
            config.metadata_endpoint = false;
            config.usage_reports = false;
            config.metrics_listen = None;
            let runtime = Arc::new(HollowRuntime::new());
            runtimes.push(Arc::clone(&runtime));
            let mut stopped = stopped.clone();
            agents.push(tokio::spawn(berth_agent::run(
                config,
                runtime,
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )));
        }
        Fleet {
            runtimes,
            agents,
            stop,
        }
    }

    /// The runtime of each agent.
    pub fn runtimes(&self) -> &[Arc<HollowRuntime>] {
        &self.runtimes
    }

    /// Fails when an agent has ended (agents run until stopped, so that is an error).
    pub async fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(ended) = self.agents.iter().position(JoinHandle::is_finished) {
            let why = match self.agents.swap_remove(ended).await {
                Ok(Ok(())) => "it returned".to_string(),
                Ok(Err(err)) => err.to_string(),
                Err(err) => err.to_string(),
            };
            bail!("a hollow agent stopped: {why}");
        }
        Ok(())
    }

    /// Waits until the cluster lists all agents as ACTIVE instances with `agentConnected`;
    /// returns their ARNs.
    pub async fn wait_connected(
        &mut self,
        api: &Api,
        timeout: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let want = self.runtimes.len();
        loop {
            self.check_alive().await?;
            let arns = api
                .list_all(
                    "ListContainerInstances",
                    json!({"cluster": CLUSTER}),
                    "containerInstanceArns",
                )
                .await?;
            let mut connected = 0;
            if arns.len() == want {
                for batch in arns.chunks(100) {
                    let described = api
                        .call(
                            "DescribeContainerInstances",
                            json!({"cluster": CLUSTER, "containerInstances": batch}),
                        )
                        .await?;
                    connected += described["containerInstances"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|i| {
                            i["agentConnected"] == json!(true) && i["status"] == json!("ACTIVE")
                        })
                        .count();
                }
                if connected == want {
                    return Ok(arns);
                }
            }
            if arns.len() > want {
                bail!(
                    "{} instances registered for {want} agents: an agent registered twice",
                    arns.len()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "after {timeout:?}, {} of {want} agents registered and {connected} connected",
                    arns.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops every agent (their hollow containers go with them).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        let mut failed = Vec::new();
        for agent in std::mem::take(&mut self.agents) {
            let abort = agent.abort_handle();
            match tokio::time::timeout_at(deadline, agent).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => failed.push(err.to_string()),
                Ok(Err(err)) => failed.push(err.to_string()),
                Err(_) => {
                    abort.abort();
                    failed.push(format!("did not stop within {STOP_TIMEOUT:?}"));
                }
            }
        }
        if let Some(first) = failed.first() {
            bail!("{} hollow agents failed; the first: {first}", failed.len());
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for agent in &self.agents {
            agent.abort();
        }
    }
}
