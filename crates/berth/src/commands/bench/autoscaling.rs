//! `berth bench autoscaling`: what evaluating N scalable targets costs. A real server (in
//! this process) gets N services, each a scalable target with a target tracking policy on
//! its CPU (so 2N alarms, made by PutScalingPolicy through the API) and a minute of
//! utilization datapoints; then one minute's worth of rounds (12, one per 5-s tick) of alarm
//! evaluation and the scaling controller is timed, on the CPU time of the process. Prints
//! the CPU per round and per minute, as a share of one core (target: < 5 % for 1,000).

use super::call;
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};

/// Options of `berth bench autoscaling`.
#[derive(Debug, Args)]
pub struct AutoscalingArgs {
    /// How many scalable targets (services, each with a target tracking policy).
    #[arg(long, default_value_t = 1000)]
    pub targets: usize,
}

const CLUSTER: &str = "bench";
/// Rounds a minute holds at the controllers' 5-s tick.
const ROUNDS: u32 = 12;

/// Runs the benchmark and prints its figures.
pub async fn run(args: AutoscalingArgs) -> anyhow::Result<()> {
    if args.targets == 0 {
        bail!("--targets must be at least 1");
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    let (server, credentials) = super::local_server(dir.path(), CLUSTER).await?;
    let client = ServerClient::new(&server.endpoint(), "us-east-1", credentials)?;
    let app = server.app();
    let began = Instant::now();
    call(
        &client,
        "RegisterTaskDefinition",
        json!({"family": "scaled", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 16, "essential": true}]}),
    )
    .await?;
    let now_ms = berth_server::cloudwatch::store::now_ms();
    let mut data = Vec::new();
    for i in 0..args.targets {
        let name = format!("svc-{i}");
        call(
            &client,
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": name, "taskDefinition": "scaled",
                   "desiredCount": 1}),
        )
        .await?;
        let resource = format!("service/{CLUSTER}/{name}");
        scaling(
            &client,
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": resource,
                   "ScalableDimension": "ecs:service:DesiredCount",
                   "MinCapacity": 1, "MaxCapacity": 1}),
        )
        .await?;
        scaling(
            &client,
            "PutScalingPolicy",
            json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": resource,
                   "ScalableDimension": "ecs:service:DesiredCount",
                   "PolicyType": "TargetTrackingScaling",
                   "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0,
                       "PredefinedMetricSpecification":
                           {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}),
        )
        .await?;
        // Four minutes of datapoints, some above the target: the high alarms have data.
        for minute in 0..4 {
            data.push(berth_server::cloudwatch::Datum {
                namespace: "AWS/ECS".into(),
                metric_name: "CPUUtilization".into(),
                dimensions: vec![
                    ("ClusterName".into(), CLUSTER.into()),
                    ("ServiceName".into(), name.clone()),
                ],
                timestamp: now_ms - minute * 60_000,
                statistics: berth_server::cloudwatch::StatisticSet::single(if i % 2 == 0 {
                    80.0
                } else {
                    20.0
                }),
                unit: "Percent".into(),
            });
        }
    }
    app.cloudwatch.put(data)?;
    let setup = began.elapsed();
    // The first round moves the alarms out of INSUFFICIENT_DATA (writes); the rounds timed
    // are the steady state a minute of ticks costs.
    berth_server::cloudwatch::evaluate::evaluate_all(&app, now_ms).await;
    berth_server::autoscaling::controller::run_once(&app, now_ms).await;
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let at = now_ms + i64::from(round) * 5_000;
        let cpu_before = process_cpu()?;
        let wall = Instant::now();
        berth_server::cloudwatch::evaluate::evaluate_all(&app, at).await;
        berth_server::autoscaling::controller::run_once(&app, at).await;
        rounds.push((process_cpu()? - cpu_before, wall.elapsed()));
    }
    server.shutdown().await.ok();
    let cpu: Duration = rounds.iter().map(|r| r.0).sum();
    let wall: Duration = rounds.iter().map(|r| r.1).sum();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "scalable targets: {} (target tracking policies: {}, alarms: {}); setup {:.1} s",
        args.targets,
        args.targets,
        args.targets * 2,
        setup.as_secs_f64()
    );
    println!(
        "one round (alarms evaluated, then the controller): CPU {:.1} ms, wall {:.1} ms",
        ms(cpu) / f64::from(ROUNDS),
        ms(wall) / f64::from(ROUNDS)
    );
    println!(
        "a minute of rounds ({ROUNDS}): CPU {:.1} ms = {:.2} % of one core (target < 5 %)",
        ms(cpu),
        cpu.as_secs_f64() / 60.0 * 100.0
    );
    Ok(())
}

/// An Application Auto Scaling call.
pub(super) async fn scaling(
    client: &ServerClient,
    op: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    client
        .call_json(
            "application-autoscaling",
            &format!("AnyScaleFrontendService.{op}"),
            &body,
        )
        .await
        .with_context(|| format!("{op} failed"))
}

/// CPU time this process has used, from `/proc/self/stat` (utime + stime, in clock ticks of
/// 10 ms): the rounds' own work, and whatever the server's loops do meanwhile.
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("process CPU time")?;
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields after the name start at field 3 (state); utime is field 14, stime 15.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .context("unexpected /proc stat format")
    };
    Ok(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}
