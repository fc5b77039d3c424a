//! `berth events --service NAME [-f]`: a service's events, oldest first, with their times;
//! with `--follow`, new ones as they come (DescribeServices every 2 s) until interrupted.

use super::api::{ecs, ApiArgs};
use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;

/// `berth events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The service.
    #[arg(long)]
    pub service: String,
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Keep printing new events as they come.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut stdout = std::io::stdout();
    loop {
        let out = ecs(
            &client,
            "DescribeServices",
            json!({"cluster": args.cluster, "services": [args.service]}),
        )
        .await?;
        let Some(service) = out["services"].as_array().and_then(|s| s.first()) else {
            bail!(
                "no service '{}' in cluster '{}': {}",
                args.service,
                args.cluster,
                out["failures"][0]["reason"].as_str().unwrap_or("MISSING")
            );
        };
        let mut events: Vec<&Value> = service["events"].as_array().into_iter().flatten().collect();
        events.reverse();
        for event in events {
            let id = event["id"].as_str().unwrap_or_default().to_string();
            if !seen.insert(id) {
                continue;
            }
            writeln!(
                stdout,
                "{}  {}",
                berth_core::civil::iso8601(event["createdAt"].as_f64().unwrap_or(0.0) as i64, None),
                event["message"].as_str().unwrap_or_default()
            )?;
        }
        stdout.flush()?;
        if !args.follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = super::shutdown_signal() => return Ok(()),
        }
    }
}
