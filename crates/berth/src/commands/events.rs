//! `berth events --service NAME [-f] [--output json]`: a service's events, oldest first, with
//! their times; with `--follow`, new ones as they come (DescribeServices every 2 s) until
//! interrupted. With `--output json`, JSON Lines: each event as DescribeServices gives it
//! (`id`, `createdAt`, `message`), one a line.

use super::api::{ecs, write_json_line, ApiArgs, Output};
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
    /// `text`: `TIME  MESSAGE` lines; or `json`: JSON Lines, one ServiceEvent object
    /// (`id`, `createdAt`, `message`) a line, as DescribeServices gives it.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The events of `service` (as DescribeServices gives it, newest first) not in `seen`, oldest
/// first; adds their ids to `seen`.
pub fn new_events(service: &Value, seen: &mut HashSet<String>) -> Vec<Value> {
    let mut events: Vec<&Value> = service["events"].as_array().into_iter().flatten().collect();
    events.reverse();
    events
        .into_iter()
        .filter(|event| seen.insert(event["id"].as_str().unwrap_or_default().to_string()))
        .cloned()
        .collect()
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
        for event in new_events(service, &mut seen) {
            if args.output.is_json() {
                write_json_line(&mut stdout, &event)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_events_come_oldest_first_and_each_only_once() {
        let service = json!({"events": [
            {"id": "b", "createdAt": 2.0, "message": "second"},
            {"id": "a", "createdAt": 1.0, "message": "first"},
        ]});
        let mut seen = HashSet::new();
        let first = new_events(&service, &mut seen);
        assert_eq!(
            first,
            vec![
                json!({"id": "a", "createdAt": 1.0, "message": "first"}),
                json!({"id": "b", "createdAt": 2.0, "message": "second"}),
            ],
            "the objects as DescribeServices gives them"
        );
        let later = json!({"events": [
            {"id": "c", "createdAt": 3.0, "message": "third"},
            {"id": "b", "createdAt": 2.0, "message": "second"},
        ]});
        assert_eq!(
            new_events(&later, &mut seen),
            vec![json!({"id": "c", "createdAt": 3.0, "message": "third"})]
        );
        assert!(new_events(&json!({}), &mut seen).is_empty());
    }
}
