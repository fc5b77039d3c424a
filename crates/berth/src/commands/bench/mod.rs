//! `berth bench`: benchmarks that print their figures, one file each.

pub mod autoscaling;
pub mod console;
pub mod fleet;
pub mod proxy;
pub mod restart;
pub mod run_task;
pub mod scheduler;
pub mod sigv4;
pub mod soak;
pub mod telemetry;
pub mod zero_drop;

use clap::Subcommand;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// RunTask → RUNNING latency against a plain `docker run -d`.
    RunTask(run_task::RunTaskArgs),
    /// Placements per second of the pure scheduler on a synthetic cluster.
    Scheduler(scheduler::SchedulerArgs),
    /// The control plane under a fleet of hollow agents: tasks/s, latencies, memory, restart.
    Fleet(fleet::FleetArgs),
    /// Alarm evaluation and the scaling controller over N scalable targets: CPU per minute.
    Autoscaling(autoscaling::AutoscalingArgs),
    /// Target tracking end to end on real containers sharing a fixed load: scale-out, level,
    /// scale-in, reversals.
    AutoscalingSoak(soak::SoakArgs),
    /// The web console's pages on a cluster of N running tasks: median and p99 render time.
    Console(console::ConsoleArgs),
    /// The load balancers' proxy against a direct connection, nginx and HAProxy, side by side:
    /// requests/s, p50 and p99 at 64 connections (all sharing this machine's cores).
    Proxy(proxy::ProxyArgs),
    /// A load balancer's service redeployed and scaled in under load: every request must be
    /// answered.
    ZeroDrop(zero_drop::ZeroDropArgs),
    /// Signed requests verified per second on one core.
    Sigv4(sigv4::Sigv4Args),
    /// Restart to serving with many tasks stored.
    Restart(restart::RestartArgs),
    /// awslogs: a container writing N lines; ingest rate and write-to-visible lag.
    Logs(telemetry::LogsArgs),
    /// FilterLogEvents over a million stored events.
    FilterLogs(telemetry::FilterLogsArgs),
    /// The agent's CPU with idle awslogs containers and stats on.
    AgentIdle(telemetry::AgentIdleArgs),
    /// From a container burning CPU to its service's CPUUtilization in GetMetricData.
    MetricFreshness(telemetry::MetricFreshnessArgs),
    /// The server of `bench fleet` (run by it as a child process; stops when stdin closes).
    #[command(hide = true)]
    FleetServer(Box<fleet::FleetServerArgs>),
}

/// Runs a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::RunTask(args) => run_task::run(args).await,
        BenchCommand::Scheduler(args) => scheduler::run(args),
        BenchCommand::Fleet(args) => fleet::run(args).await,
        BenchCommand::Restart(args) => restart::run(args).await,
        BenchCommand::Sigv4(args) => sigv4::run(args).await,
        BenchCommand::Console(args) => console::run(args).await,
        BenchCommand::Proxy(args) => proxy::run(args).await,
        BenchCommand::ZeroDrop(args) => zero_drop::run(args).await,
        BenchCommand::Autoscaling(args) => autoscaling::run(args).await,
        BenchCommand::AutoscalingSoak(args) => soak::run(args).await,
        BenchCommand::Logs(args) => telemetry::logs(args).await,
        BenchCommand::FilterLogs(args) => telemetry::filter_logs(args).await,
        BenchCommand::AgentIdle(args) => telemetry::agent_idle(args).await,
        BenchCommand::MetricFreshness(args) => telemetry::metric_freshness(args).await,
        BenchCommand::FleetServer(args) => fleet::serve_fleet_server(*args).await,
    }
}

/// The `q` quantile of `samples` by nearest rank (zero when there are none).
pub fn quantile(samples: &[std::time::Duration], q: f64) -> std::time::Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Calls ECS operation `op` of the server with a JSON body; an error names the operation.
pub async fn call(
    client: &berth_agent::client::ServerClient,
    op: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    client
        .call::<serde_json::Value, serde_json::Value>(op, &body)
        .await
        .with_context(|| format!("{op} failed"))
}

/// A server on loopback with its data under `dir/server` and cluster `cluster`, for the
/// benchmarks that run real agents; the root user's keys.
pub async fn local_server(
    dir: &std::path::Path,
    cluster: &str,
) -> anyhow::Result<(berth_server::Server, berth_core::sigv4::Credentials)> {
    use anyhow::Context;
    let config = berth_server::ServerConfig {
        listen: "127.0.0.1:0".parse().context("listen address")?,
        data_dir: Some(dir.join("server")),
        ..berth_server::ServerConfig::default()
    };
    let server = berth_server::serve(config).await.context("server")?;
    berth_server::handlers::clusters::ensure_cluster(&server.app(), cluster).await?;
    let credentials = crate::commands::server_credentials(&dir.join("server"))?;
    Ok((server, credentials))
}

#[cfg(test)]
mod tests {
    use super::quantile;
    use std::time::Duration;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(
            quantile(&[Duration::from_millis(7)], 0.99),
            Duration::from_millis(7)
        );
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}
