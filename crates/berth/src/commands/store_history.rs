//! `berth store check-history FILE...`: the linearizability check of the store operations that
//! servers recorded (`BERTH_STORE_HISTORY`), as the failover tests run it.

use clap::Args;
use std::path::PathBuf;

/// Options of `berth store check-history`.
#[derive(Debug, Args)]
pub struct CheckHistoryArgs {
    /// History files, one per server process (a process killed -9 may leave a torn last line).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Checks the histories; exit code 0 when no anomaly is found, 1 otherwise.
pub fn run(args: &CheckHistoryArgs) -> anyhow::Result<i32> {
    match berth_store::history::check(&args.files) {
        Ok(summary) => {
            println!(
                "history: {} operations ({} committed writes, {} reads, {} failed guards, {} of \
                 unknown outcome) on {} keys in {} files: linearizable, no anomaly",
                summary.ops,
                summary.writes,
                summary.reads,
                summary.failed_guards,
                summary.indeterminate,
                summary.keys,
                args.files.len()
            );
            if !summary.unexplained_revisions.is_empty() {
                println!(
                    "history: {} revisions read but written by no recorded operation (writes of \
                     killed processes)",
                    summary.unexplained_revisions.len()
                );
            }
            Ok(0)
        }
        Err(anomalies) => {
            println!("history: {} anomalies", anomalies.len());
            for anomaly in anomalies.iter().take(50) {
                println!("  {anomaly}");
            }
            Ok(1)
        }
    }
}
