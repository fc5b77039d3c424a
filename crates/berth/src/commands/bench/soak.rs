//! `berth bench autoscaling-soak`: target tracking end to end, on a real server, a real agent
//! and real containers (issue 15's first target). A service of one task gets a fixed total
//! load that its tasks share, as a load balancer would share requests: `--load` tokens (empty
//! directories made with `mkdir`, which is atomic, in a Docker volume every task mounts); a
//! task holding a token burns all of its 256 CPU units, a task without one waits. With L
//! tokens and N ≥ L tasks the service's average CPU is L × 100 ÷ N %, so a target of T %
//! settles at ⌈L × 100 ÷ T⌉ tasks. A task that is stopped gives its token back (its shell
//! traps SIGTERM), so the load survives scale-in.
//!
//! The bench registers the scalable target (minimum 1) and a target tracking policy with the
//! default cooldowns, watches the desired count until it has held one level for
//! `--settle-minutes`, then stops the load and waits for the minimum. It prints the time to
//! the first scale-out, the level and the CPU there, the time to scale in, every change of
//! the desired count and the reversals of direction.

use super::autoscaling::scaling;
use super::call;
use super::telemetry::{now_ms, Rig, CLUSTER, IMAGE};
use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `berth bench autoscaling-soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Tasks' worth of CPU the shared load keeps busy.
    #[arg(long, default_value_t = 2)]
    pub load: usize,
    /// The policy's target average CPU, percent.
    #[arg(long, default_value_t = 50.0)]
    pub target: f64,
    /// Track `ECSServiceAverageCPUUtilizationHighResolution` (20-s periods) instead of the
    /// 1-minute `ECSServiceAverageCPUUtilization`.
    #[arg(long)]
    pub high_resolution: bool,
    /// How long the desired count must hold one level before the load stops, minutes.
    #[arg(long, default_value_t = 5)]
    pub settle_minutes: u64,
    /// The scalable target's maximum capacity.
    #[arg(long, default_value_t = 10)]
    pub max: i64,
}

/// The task's command: take a token and burn while holding it, until `/load/stop` exists;
/// give the token back on SIGTERM. (The client suite's shared-load test runs it too.)
const SCRIPT: &str = include_str!("shared-load.sh");

const SERVICE: &str = "soak";
const RESOURCE: &str = "service/bench/soak";
const DIMENSION: &str = "ecs:service:DesiredCount";
/// How long any one phase may take before the bench gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(40 * 60);

/// One change of the desired count: seconds since the load started, from, to.
type Change = (f64, i64, i64);

/// Runs the benchmark and prints its figures.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.load == 0 || args.target <= 0.0 || args.max < 2 {
        bail!("--load must be at least 1, --target above 0 and --max at least 2");
    }
    let rig = Rig::start().await?;
    let volume = format!("berth-soak-{}", now_ms());
    // Interrupted, it still stops its tasks and removes what it made.
    let result = tokio::select! {
        result = soak(&rig, &args, &volume) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let _ = scaling(
        &rig.client,
        "DeregisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION}),
    )
    .await;
    let _ = call(
        &rig.client,
        "DeleteService",
        json!({"cluster": CLUSTER, "service": SERVICE, "force": true}),
    )
    .await;
    rig.finish(&[]).await;
    let _ = Command::new("docker")
        .args(["volume", "rm", "-f", &volume])
        .output();
    result
}

async fn soak(rig: &Rig, args: &SoakArgs, volume: &str) -> anyhow::Result<()> {
    call(
        &rig.client,
        "RegisterTaskDefinition",
        json!({"family": SERVICE, "cpu": "256", "memory": "64",
               "volumes": [{"name": volume, "dockerVolumeConfiguration":
                   {"scope": "shared", "autoprovision": true, "driver": "local"}}],
               "containerDefinitions": [{
                   "name": "load", "image": IMAGE, "essential": true,
                   "command": ["sh", "-c", SCRIPT],
                   "environment": [{"name": "TOKENS", "value": args.load.to_string()}],
                   "mountPoints": [{"sourceVolume": volume, "containerPath": "/load"}],
                   "stopTimeout": 5}]}),
    )
    .await?;
    call(
        &rig.client,
        "CreateService",
        json!({"cluster": CLUSTER, "serviceName": SERVICE, "taskDefinition": SERVICE,
               "desiredCount": 1}),
    )
    .await?;
    wait_for_a_running_task(rig).await?;
    let started = Instant::now();
    let metric = if args.high_resolution {
        "ECSServiceAverageCPUUtilizationHighResolution"
    } else {
        "ECSServiceAverageCPUUtilization"
    };
    scaling(
        &rig.client,
        "RegisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION,
               "MinCapacity": 1, "MaxCapacity": args.max}),
    )
    .await?;
    scaling(
        &rig.client,
        "PutScalingPolicy",
        json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": RESOURCE,
               "ScalableDimension": DIMENSION, "PolicyType": "TargetTrackingScaling",
               "TargetTrackingScalingPolicyConfiguration": {
                   "TargetValue": args.target,
                   "PredefinedMetricSpecification": {"PredefinedMetricType": metric}}}),
    )
    .await?;
    let expected = (args.load as f64 * 100.0 / args.target).ceil() as i64;
    println!(
        "autoscaling soak: {} tasks' worth of CPU shared by the service's tasks, target {} % on {metric}, default cooldowns; expected level {expected}",
        args.load, args.target
    );

    // Scale-out until one level holds for the settle time.
    let mut changes: Vec<Change> = Vec::new();
    let mut current = 1;
    let settle = Duration::from_secs(args.settle_minutes * 60);
    let mut held_since = Instant::now();
    loop {
        if watch(rig, started, &mut current, &mut changes).await? {
            held_since = Instant::now();
        }
        if !changes.is_empty() && held_since.elapsed() >= settle {
            break;
        }
        if started.elapsed() > PHASE_LIMIT {
            bail!(
                "no level held for {} min within {} min",
                args.settle_minutes,
                PHASE_LIMIT.as_secs() / 60
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let level = current;
    let level_cpu = average_cpu(rig, settle).await?;

    // The load stops; scale-in to the minimum.
    stop_the_load(volume)?;
    let stopped = Instant::now();
    let stopped_at = started.elapsed().as_secs_f64();
    println!("  {stopped_at:>6.1} s: the load stops");
    while current > 1 {
        if stopped.elapsed() > PHASE_LIMIT {
            bail!(
                "the service was still at {current} tasks {} min after the load stopped",
                PHASE_LIMIT.as_secs() / 60
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        watch(rig, started, &mut current, &mut changes).await?;
    }
    let scale_in = stopped.elapsed().as_secs_f64();
    let activities = scaling(
        &rig.client,
        "DescribeScalingActivities",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE}),
    )
    .await?;
    let activities = activities["ScalingActivities"]
        .as_array()
        .map_or(0, Vec::len);

    let first_out = changes.first().map_or(0.0, |c| c.0);
    let (first_target, in_target) = if args.high_resolution {
        // 3 and 15 periods of 20 s.
        (60.0, 300.0)
    } else {
        (180.0, 900.0)
    };
    println!(
        "first scale-out: {first_out:.1} s after the load started (the high alarm's 3 periods need {first_target:.0} s; target <= 180 s: {})",
        if first_out <= 180.0 { "met" } else { "NOT met" }
    );
    println!(
        "level: {level} tasks (expected {expected} +- 1: {}), average CPU over its last {} min: {level_cpu:.1} % (target {} %)",
        if (level - expected).abs() <= 1 {
            "met"
        } else {
            "NOT met"
        },
        args.settle_minutes,
        args.target
    );
    println!(
        "scale-in to the minimum: {scale_in:.1} s after the load stopped (the low alarm's 15 periods need {in_target:.0} s; target <= 900 s: {})",
        if scale_in <= 900.0 { "met" } else { "NOT met" }
    );
    let reversals = reversals(&changes);
    println!(
        "changes of the desired count: {}; reversals of direction: {reversals} (target <= 1: {}); {activities} scaling activities recorded",
        changes.len(),
        if reversals <= 1 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Reads the desired count; a change from `current` is printed and added to `changes`.
/// Whether it changed.
async fn watch(
    rig: &Rig,
    started: Instant,
    current: &mut i64,
    changes: &mut Vec<Change>,
) -> anyhow::Result<bool> {
    let desired = desired_count(rig).await?;
    if desired == *current {
        return Ok(false);
    }
    let at = started.elapsed().as_secs_f64();
    println!("  {at:>6.1} s: desired count {current} -> {desired}");
    changes.push((at, *current, desired));
    *current = desired;
    Ok(true)
}

async fn desired_count(rig: &Rig) -> anyhow::Result<i64> {
    let out = call(
        &rig.client,
        "DescribeServices",
        json!({"cluster": CLUSTER, "services": [SERVICE]}),
    )
    .await?;
    out["services"][0]["desiredCount"]
        .as_i64()
        .context("DescribeServices gave no desiredCount")
}

async fn wait_for_a_running_task(rig: &Rig) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = call(
            &rig.client,
            "ListTasks",
            json!({"cluster": CLUSTER, "serviceName": SERVICE}),
        )
        .await?;
        let arns = listed["taskArns"].clone();
        if arns.as_array().is_some_and(|a| !a.is_empty()) {
            let out = call(
                &rig.client,
                "DescribeTasks",
                json!({"cluster": CLUSTER, "tasks": arns}),
            )
            .await?;
            if out["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["lastStatus"] == "RUNNING")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the service's first task was not RUNNING within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The service's average CPUUtilization over the last `window`, from GetMetricStatistics.
async fn average_cpu(rig: &Rig, window: Duration) -> anyhow::Result<f64> {
    let end = now_ms() / 1000;
    let out: Value = rig
        .client
        .call_json(
            "monitoring",
            "GraniteServiceVersion20100801.GetMetricStatistics",
            &json!({
                "Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER},
                               {"Name": "ServiceName", "Value": SERVICE}],
                "StartTime": (end - window.as_secs() as i64) as f64,
                "EndTime": end as f64,
                "Period": window.as_secs().max(60),
                "Statistics": ["Average"],
            }),
        )
        .await
        .context("GetMetricStatistics")?;
    let points = out["Datapoints"].as_array().cloned().unwrap_or_default();
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| p["Average"].as_f64())
        .collect();
    if values.is_empty() {
        bail!("GetMetricStatistics had no CPUUtilization of the service at its level");
    }
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// Makes `/load/stop` in the tasks' shared volume.
fn stop_the_load(volume: &str) -> anyhow::Result<()> {
    let out = Command::new("docker")
        .args(["run", "--rm", "-v", &format!("{volume}:/load"), IMAGE])
        .args(["touch", "/load/stop"])
        .output()
        .context("docker run")?;
    if !out.status.success() {
        bail!(
            "could not stop the load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// How many times the direction of `changes` turns (out then in counts one).
fn reversals(changes: &[Change]) -> usize {
    let directions: Vec<bool> = changes.iter().map(|(_, from, to)| to > from).collect();
    directions.windows(2).filter(|w| w[0] != w[1]).count()
}

#[cfg(test)]
mod tests {
    use super::reversals;

    #[test]
    fn a_turn_of_direction_is_a_reversal_and_steps_the_same_way_are_not() {
        assert_eq!(reversals(&[]), 0);
        assert_eq!(reversals(&[(1.0, 1, 2), (2.0, 2, 4)]), 0);
        assert_eq!(reversals(&[(1.0, 1, 2), (2.0, 2, 4), (3.0, 4, 1)]), 1);
        assert_eq!(
            reversals(&[(1.0, 1, 2), (2.0, 2, 1), (3.0, 1, 2), (4.0, 2, 1)]),
            3
        );
    }
}
