//! `berth bench scheduler` times the pure placement engine, single-threaded, on a synthetic
//! cluster: `--instances` instances of 2–16 vCPU and 4–16 GiB in three zones, `--tasks` task
//! placements in batches of `--batch` (RunTask's at most 10), with binpack(memory) behind a
//! memberOf constraint or spread(attribute:zone) then spread(instanceId). It prints
//! `placements/s: <number>`.

use anyhow::bail;
use berth_core::scheduler::workload::{Placement, Workload, MEMBER_OF};
use clap::{Args, ValueEnum};
use std::time::Instant;

/// The strategy to time.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchStrategy {
    /// binpack(memory) after memberOf.
    Binpack,
    /// spread(attribute:zone), then spread(instanceId).
    Spread,
}

/// Options of `berth bench scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Container instances in the cluster.
    #[arg(long, default_value_t = 5000)]
    pub instances: usize,
    /// Task placements to make.
    #[arg(long, default_value_t = 100_000)]
    pub tasks: usize,
    /// Placement strategy.
    #[arg(long, value_enum, default_value = "binpack")]
    pub strategy: BenchStrategy,
    /// Tasks per batch (one RunTask call places at most 10).
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Seed of the cluster's sizes and of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the benchmark and prints its figures.
pub fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    if args.instances == 0 || args.tasks == 0 || args.batch == 0 {
        bail!("--instances, --tasks and --batch must be at least 1");
    }
    let placement = match args.strategy {
        BenchStrategy::Binpack => Placement::Binpack,
        BenchStrategy::Spread => Placement::Spread,
    };
    let workload = Workload::new(args.instances, placement, args.batch, args.seed);
    let built = Instant::now();
    let mut snapshot = workload.snapshot();
    let snapshot_time = built.elapsed();
    let started = Instant::now();
    let stats = workload.run(&mut snapshot, args.tasks, args.seed);
    let elapsed = started.elapsed();
    let description = match placement {
        Placement::Binpack => format!("binpack(memory) after memberOf({MEMBER_OF})"),
        Placement::Spread => "spread(attribute:zone), spread(instanceId)".to_string(),
    };
    println!(
        "scheduler: {} instances, {} tasks in batches of {}, {description}",
        args.instances, args.tasks, args.batch
    );
    println!(
        "placed: {}  unplaced: {}  snapshot: {:.1} ms  placing: {:.3} s",
        stats.placed,
        stats.unplaced,
        snapshot_time.as_secs_f64() * 1e3,
        elapsed.as_secs_f64()
    );
    let seconds = elapsed.as_secs_f64().max(1e-9);
    println!("placements/s: {:.0}", stats.placed as f64 / seconds);
    Ok(())
}
