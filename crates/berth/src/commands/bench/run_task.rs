//! `berth bench run-task` measures, for N tasks run one after another on this machine, the
//! time from RunTask's answer to RUNNING being visible through DescribeTasks, next to the time
//! of a plain `docker run -d` of the same image and command, measured in the same run
//! (interleaved, so both see the same machine).

use super::{call, quantile};
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use berth_agent::AgentConfig;
use clap::Args;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `berth bench run-task`.
#[derive(Debug, Args)]
pub struct RunTaskArgs {
    /// How many tasks (and as many `docker run -d`) to time.
    #[arg(long, default_value_t = 30)]
    pub tasks: usize,
    /// Image to run (must be present locally: `scripts/build-test-image`).
    #[arg(long, default_value = "busybox:latest")]
    pub image: String,
}

const BENCH_LABEL: &str = "com.berth.bench=run-task";

/// Runs the benchmark and prints its figures.
pub async fn run(args: RunTaskArgs) -> anyhow::Result<()> {
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    let runtime = crate::commands::agent::connect_docker().await?;
    let dir = tempfile::tempdir().context("temp dir")?;
    let (server, credentials) = super::local_server(dir.path(), "bench").await?;
    let endpoint = format!("http://{}", server.addr());
    let mut agent_config = AgentConfig::new(
        &endpoint,
        "bench",
        dir.path().join("agent"),
        credentials.clone(),
    );
    agent_config.task_cleanup_wait = Duration::from_secs(5);
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(berth_agent::run(agent_config, runtime, async {
        let _ = agent_stopped.await;
    }));
    let client = ServerClient::new(&endpoint, "us-east-1", credentials)?;
    let result = measure(&client, &args).await;
    let _ = stop_agent.send(());
    let _ = agent.await;
    cleanup_containers();
    server.shutdown().await.ok();
    let (berth, docker) = result?;
    report(&berth, &docker);
    Ok(())
}

async fn measure(
    client: &ServerClient,
    args: &RunTaskArgs,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    // Wait for the agent to register.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = call(
            client,
            "ListContainerInstances",
            json!({"cluster": "bench"}),
        )
        .await?;
        if listed["containerInstanceArns"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(
        client,
        "RegisterTaskDefinition",
        json!({"family": "bench", "containerDefinitions": [{
            "name": "app", "image": args.image, "memoryReservation": 6, "essential": true,
            "command": ["sleep", "3600"],
            "dockerLabels": {"com.berth.bench": "run-task"}
        }]}),
    )
    .await?;
    let mut berth = Vec::new();
    let mut docker = Vec::new();
    for i in 0..args.tasks {
        berth.push(
            time_run_task(client)
                .await
                .with_context(|| format!("task {i}"))?,
        );
        docker.push(time_docker_run(&args.image)?);
    }
    Ok((berth, docker))
}

/// RunTask, then DescribeTasks every 2 ms until RUNNING; the time from RunTask's answer.
async fn time_run_task(client: &ServerClient) -> anyhow::Result<Duration> {
    let out = call(
        client,
        "RunTask",
        json!({"cluster": "bench", "taskDefinition": "bench"}),
    )
    .await?;
    let accepted = Instant::now();
    let arn = out["tasks"][0]["taskArn"].as_str().map(str::to_string);
    let Some(arn) = arn else {
        bail!("RunTask placed no task: {}", out["failures"])
    };
    loop {
        let described = call(
            client,
            "DescribeTasks",
            json!({"cluster": "bench", "tasks": [arn]}),
        )
        .await?;
        match described["tasks"][0]["lastStatus"].as_str() {
            Some("RUNNING") => return Ok(accepted.elapsed()),
            Some("STOPPED") => bail!("task stopped: {}", described["tasks"][0]["stoppedReason"]),
            _ => {}
        }
        if accepted.elapsed() > Duration::from_secs(60) {
            bail!("task not RUNNING after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn time_docker_run(image: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("docker")
        .args(["run", "-d", "--label", BENCH_LABEL, image, "sleep", "3600"])
        .output()
        .context("docker run")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

fn cleanup_containers() {
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={BENCH_LABEL}")])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
}

/// The `q` quantile (0..=1) of `samples`, by nearest rank.
fn report(berth: &[Duration], docker: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (bm, bp) = (quantile(berth, 0.5), quantile(berth, 0.99));
    let (dm, dp) = (quantile(docker, 0.5), quantile(docker, 0.99));
    println!("tasks: {}", berth.len());
    println!(
        "berth run-task -> RUNNING: median {:.1} ms, p99 {:.1} ms",
        ms(bm),
        ms(bp)
    );
    println!(
        "docker run -d:             median {:.1} ms, p99 {:.1} ms",
        ms(dm),
        ms(dp)
    );
    println!("ratio (berth/docker median): {:.2}", ms(bm) / ms(dm));
}
