//! `berth bench`: benchmarks that print their figures, one file each.

pub mod fleet;
pub mod restart;
pub mod run_task;
pub mod scheduler;

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
    /// Restart to serving with many tasks stored.
    Restart(restart::RestartArgs),
    /// The server of `bench fleet` (run by it as a child process; stops when stdin closes).
    #[command(hide = true)]
    FleetServer(fleet::FleetServerArgs),
}

/// Runs a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::RunTask(args) => run_task::run(args).await,
        BenchCommand::Scheduler(args) => scheduler::run(args),
        BenchCommand::Fleet(args) => fleet::run(args).await,
        BenchCommand::Restart(args) => restart::run(args).await,
        BenchCommand::FleetServer(args) => fleet::serve_fleet_server(args).await,
    }
}
