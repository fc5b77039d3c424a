//! Benchmarks of what the agents send besides task state (issue 12's targets), each on a
//! real server with a real agent (its own process, as in production) on the local Docker:
//!
//! - `berth bench logs`: one container writes N lines as fast as it can through the awslogs
//!   driver; every line must arrive, in order, once; prints the sustained ingest rate and
//!   the lag from write to visible in GetLogEvents (p50, p99).
//! - `berth bench filter-logs`: FilterLogEvents over N events of one group (stored with
//!   PutLogEvents), a pattern matching few of them.
//! - `berth bench agent-idle`: the agent's CPU with N idle containers logging with awslogs
//!   and their stats sampled.
//! - `berth bench metric-freshness`: the time from a container starting to burn CPU to its
//!   service's CPUUtilization showing it in GetMetricData.

use super::call;
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use clap::Args;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The test image (`scripts/build-test-image`).
pub(super) const IMAGE: &str = "berth-test/busybox:latest";
pub(super) const CLUSTER: &str = "bench";

/// A server in this process and an agent in its own, on a temp dir.
pub(super) struct Rig {
    server: Option<berth_server::Server>,
    pub(super) client: ServerClient,
    agent: Child,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub(super) async fn start() -> anyhow::Result<Rig> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let (server, credentials) = super::local_server(dir.path(), CLUSTER).await?;
        let endpoint = server.endpoint();
        let agent = Command::new(std::env::current_exe().context("this program")?)
            .args(["agent", "--server", &endpoint, "--cluster", CLUSTER])
            .arg("--data-dir")
            .arg(dir.path().join("agent"))
            .args([
                "--metrics-listen",
                "127.0.0.1:0",
                "--task-cleanup-wait",
                "10s",
            ])
            .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
            .env("BERTH_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting the agent")?;
        let client = ServerClient::new(&endpoint, "us-east-1", credentials)?;
        let rig = Rig {
            server: Some(server),
            client,
            agent,
            _dir: dir,
        };
        rig.wait_for_agent().await?;
        Ok(rig)
    }

    async fn wait_for_agent(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = call(
                &self.client,
                "ListContainerInstances",
                json!({"cluster": CLUSTER}),
            )
            .await?;
            if listed["containerInstanceArns"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the agent did not register within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn logs(&self, op: &str, input: Value) -> anyhow::Result<Value> {
        self.client
            .call_json("logs", &format!("Logs_20140328.{op}"), &input)
            .await
            .with_context(|| op.to_string())
    }

    /// Runs `count` tasks of `family`; their ARNs.
    async fn run_tasks(&self, family: &str, count: usize) -> anyhow::Result<Vec<String>> {
        let mut arns = Vec::new();
        while arns.len() < count {
            let n = (count - arns.len()).min(10);
            let out = call(
                &self.client,
                "RunTask",
                json!({"cluster": CLUSTER, "taskDefinition": family, "count": n}),
            )
            .await?;
            let placed: Vec<String> = out["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
                .collect();
            if placed.is_empty() {
                bail!("RunTask placed no task: {}", out["failures"]);
            }
            arns.extend(placed);
        }
        Ok(arns)
    }

    async fn wait_running(&self, arns: &[String]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut running = 0;
            for chunk in arns.chunks(100) {
                let out = call(
                    &self.client,
                    "DescribeTasks",
                    json!({"cluster": CLUSTER, "tasks": chunk}),
                )
                .await?;
                for task in out["tasks"].as_array().into_iter().flatten() {
                    match task["lastStatus"].as_str() {
                        Some("RUNNING") => running += 1,
                        Some("STOPPED") => bail!("a task stopped: {}", task["stoppedReason"]),
                        _ => {}
                    }
                }
            }
            if running == arns.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{running} of {} tasks RUNNING after 120 s", arns.len());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops every task, the agent and the server; removes the containers.
    pub(super) async fn finish(mut self, arns: &[String]) {
        for arn in arns {
            let _ = call(
                &self.client,
                "StopTask",
                json!({"cluster": CLUSTER, "task": arn}),
            )
            .await;
        }
        let _ = Command::new("kill")
            .arg(self.agent.id().to_string())
            .status();
        let _ = self.agent.wait();
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.amazonaws.ecs.cluster={CLUSTER}"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Options of `berth bench logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Lines the container writes.
    #[arg(long, default_value_t = 200_000)]
    pub lines: u64,
}

/// `berth bench logs`.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let result = measure_logs(&rig, &args).await;
    rig.finish(&[]).await;
    result
}

async fn measure_logs(rig: &Rig, args: &LogsArgs) -> anyhow::Result<()> {
    call(
        &rig.client,
        "RegisterTaskDefinition",
        json!({"family": "writer", "containerDefinitions": [{
            "name": "writer", "image": IMAGE, "memory": 64, "essential": true,
            "command": ["sh", "-c", format!("seq 1 {}; sleep 3600", args.lines)],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/bench/logs", "awslogs-stream-prefix": "bench",
                "awslogs-create-group": "true", "mode": "blocking"}}
        }]}),
    )
    .await?;
    let began = Instant::now();
    let arn = rig.run_tasks("writer", 1).await?.remove(0);
    let task_id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let stream = format!("bench/writer/{task_id}");
    let mut next = 1u64;
    let mut token: Option<String> = None;
    let mut lags: Vec<Duration> = Vec::new();
    let mut first_seen: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while next <= args.lines {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} lines arrived within 300 s",
                next - 1,
                args.lines
            );
        }
        let mut input = json!({"logGroupName": "/bench/logs", "logStreamName": stream,
            "startFromHead": true, "limit": 10000});
        if let Some(token) = &token {
            input["nextToken"] = token.clone().into();
        }
        let page = match rig.logs("GetLogEvents", input).await {
            Ok(page) => page,
            Err(_) if next == 1 => {
                // The stream opens as the container starts.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let seen_at = now_ms();
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for event in &events {
            let message = event["message"].as_str().unwrap_or_default();
            let number: u64 = message
                .parse()
                .with_context(|| format!("line '{message}'"))?;
            if number != next {
                bail!("expected line {next}, got {number}: lost, duplicated or out of order");
            }
            next += 1;
            let written = event["timestamp"].as_i64().unwrap_or(seen_at);
            first_seen.get_or_insert((Instant::now(), written));
            lags.push(Duration::from_millis((seen_at - written).max(0) as u64));
        }
        token = page["nextForwardToken"].as_str().map(str::to_string);
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let done = now_ms();
    let (_, first_written) = first_seen.unwrap_or((Instant::now(), done));
    let span = Duration::from_millis((done - first_written).max(1) as u64);
    lags.sort();
    let quantile =
        |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
    println!("lines: {} (all arrived, in order, none twice)", args.lines);
    println!(
        "ingest: {:.0} lines/s (first line written to last visible: {:.2} s; run to last visible {:.2} s)",
        args.lines as f64 / span.as_secs_f64(),
        span.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    println!(
        "lag write -> visible in GetLogEvents: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(quantile(0.5)),
        ms(quantile(0.99)),
        ms(quantile(1.0))
    );
    Ok(())
}

/// Options of `berth bench filter-logs`.
#[derive(Debug, Args)]
pub struct FilterLogsArgs {
    /// Events stored in the group before the search.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Streams they are spread over.
    #[arg(long, default_value_t = 10)]
    pub streams: u64,
}

/// `berth bench filter-logs`.
pub async fn filter_logs(args: FilterLogsArgs) -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let result = measure_filter(&rig, &args).await;
    rig.finish(&[]).await;
    result
}

async fn measure_filter(rig: &Rig, args: &FilterLogsArgs) -> anyhow::Result<()> {
    let group = "/bench/filter";
    rig.logs("CreateLogGroup", json!({"logGroupName": group}))
        .await?;
    let streams = args.streams.max(1);
    let per_stream = args.events.div_ceil(streams);
    let base = now_ms() - 3_600_000;
    let loading = Instant::now();
    let mut stored = 0u64;
    let mut needles = 0u64;
    for s in 0..streams {
        let stream = format!("app-{s}");
        rig.logs(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await?;
        let mut i = 0u64;
        while i < per_stream && stored < args.events {
            let mut batch = Vec::new();
            while batch.len() < 10_000 && i < per_stream && stored < args.events {
                let n = s * per_stream + i;
                // One event in 10,000 carries the needle.
                let level = if n % 10_000 == 4_242 { "FATAL" } else { "INFO" };
                if level == "FATAL" {
                    needles += 1;
                }
                batch.push(json!({
                    "timestamp": base + (i as i64 * 3_000_000 / per_stream as i64),
                    "message": format!("{level} request {n} served path=/api/v1/items/{} status=200 latency_ms={}", n % 977, n % 313),
                }));
                i += 1;
                stored += 1;
            }
            rig.logs(
                "PutLogEvents",
                json!({"logGroupName": group, "logStreamName": stream, "logEvents": batch}),
            )
            .await?;
        }
    }
    println!(
        "stored {stored} events in {streams} streams in {:.1} s ({:.0} events/s through PutLogEvents)",
        loading.elapsed().as_secs_f64(),
        stored as f64 / loading.elapsed().as_secs_f64()
    );
    for (pattern, label) in [
        ("FATAL", "a term"),
        ("{ $.level = \"x\" }", "a JSON pattern"),
    ] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..3 {
            let began = Instant::now();
            let mut token: Option<String> = None;
            found = 0;
            loop {
                let mut input = json!({"logGroupName": group, "filterPattern": pattern});
                if let Some(token) = &token {
                    input["nextToken"] = token.clone().into();
                }
                let page = rig.logs("FilterLogEvents", input).await?;
                found += page["events"].as_array().map_or(0, Vec::len);
                token = page["nextToken"].as_str().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            times.push(began.elapsed());
        }
        if pattern == "FATAL" && found as u64 != needles {
            bail!("FilterLogEvents found {found} events with FATAL; {needles} were stored");
        }
        times.sort();
        println!(
            "FilterLogEvents over {stored} events, {label} `{pattern}` ({found} found): best {:.0} ms, median {:.0} ms, worst {:.0} ms (all pages)",
            ms(times[0]),
            ms(times[1]),
            ms(times[2])
        );
    }
    Ok(())
}

/// Options of `berth bench agent-idle`.
#[derive(Debug, Args)]
pub struct AgentIdleArgs {
    /// Idle containers logging with awslogs.
    #[arg(long, default_value_t = 100)]
    pub containers: usize,
    /// How long the agent's CPU is measured once they run.
    #[arg(long, default_value = "60s", value_parser = crate::commands::parse_duration)]
    pub window: Duration,
}

/// `berth bench agent-idle`.
pub async fn agent_idle(args: AgentIdleArgs) -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let mut arns = Vec::new();
    let result = measure_idle(&rig, &args, &mut arns).await;
    rig.finish(&arns).await;
    result
}

/// CPU seconds a process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the line (utime, stime): 11 and 12 after the command's ')'.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

async fn measure_idle(
    rig: &Rig,
    args: &AgentIdleArgs,
    arns: &mut Vec<String>,
) -> anyhow::Result<()> {
    call(
        &rig.client,
        "RegisterTaskDefinition",
        json!({"family": "idle", "containerDefinitions": [{
            "name": "idle", "image": IMAGE, "memoryReservation": 8, "essential": true,
            "command": ["sh", "-c", "echo started; exec sleep 3600"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/bench/idle", "awslogs-stream-prefix": "idle",
                "awslogs-create-group": "true"}}
        }]}),
    )
    .await?;
    *arns = rig.run_tasks("idle", args.containers).await?;
    rig.wait_running(arns).await?;
    // Let the starts settle, then measure.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let pid = rig.agent.id();
    let before = cpu_seconds(pid)?;
    let began = Instant::now();
    tokio::time::sleep(args.window).await;
    let used = cpu_seconds(pid)? - before;
    let share = used / began.elapsed().as_secs_f64() * 100.0;
    println!(
        "agent CPU with {} idle awslogs containers (stats every {} s): {:.2} % of one core over {:.0} s ({:.2} CPU s)",
        args.containers,
        berth_agent::stats::INTERVAL.as_secs(),
        share,
        began.elapsed().as_secs_f64(),
        used
    );
    Ok(())
}

/// Options of `berth bench metric-freshness`.
#[derive(Debug, Args)]
pub struct MetricFreshnessArgs {
    /// How many times to measure.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// `berth bench metric-freshness`.
pub async fn metric_freshness(args: MetricFreshnessArgs) -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let mut arns = Vec::new();
    let result = measure_freshness(&rig, &args, &mut arns).await;
    rig.finish(&arns).await;
    result
}

async fn measure_freshness(
    rig: &Rig,
    args: &MetricFreshnessArgs,
    arns: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut times = Vec::new();
    for run in 0..args.runs {
        let family = format!("burn{run}");
        call(
            &rig.client,
            "RegisterTaskDefinition",
            json!({"family": family, "cpu": "256", "memory": "128", "containerDefinitions": [{
                "name": "burn", "image": IMAGE, "essential": true,
                "command": ["sh", "-c", "while :; do :; done"]
            }]}),
        )
        .await?;
        let service = format!("burner{run}");
        call(
            &rig.client,
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": service, "taskDefinition": family, "desiredCount": 1}),
        )
        .await?;
        let began = Instant::now();
        let start_ms = now_ms();
        loop {
            if began.elapsed() > Duration::from_secs(300) {
                bail!("CPUUtilization of {service} did not show within 300 s");
            }
            let out = rig
                .client
                .call_json::<_, Value>(
                    "monitoring",
                    "GraniteServiceVersion20100801.GetMetricData",
                    &json!({
                        "MetricDataQueries": [{"Id": "cpu", "MetricStat": {
                            "Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                                "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER},
                                               {"Name": "ServiceName", "Value": service}]},
                            "Period": 60, "Stat": "Maximum"}}],
                        "StartTime": (start_ms / 1000 - 120) as f64,
                        "EndTime": (now_ms() / 1000 + 60) as f64,
                    }),
                )
                .await
                .context("GetMetricData")?;
            let busy = out["MetricDataResults"][0]["Values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .any(|v| v >= 50.0);
            if busy {
                times.push(began.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        call(
            &rig.client,
            "DeleteService",
            json!({"cluster": CLUSTER, "service": service, "force": true}),
        )
        .await?;
    }
    arns.clear();
    times.sort();
    println!(
        "CreateService of a CPU-burning task -> its CPUUtilization >= 50 % in GetMetricData: best {:.1} s, worst {:.1} s over {} runs",
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    );
    Ok(())
}
