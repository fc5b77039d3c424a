//! `berth bench`: benchmarks that print their figures, one file each.

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
}

/// Runs a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::RunTask(args) => run_task::run(args).await,
        BenchCommand::Scheduler(args) => scheduler::run(args),
    }
}
