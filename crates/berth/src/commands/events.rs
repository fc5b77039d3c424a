//! `berth events --service NAME [-f] [--output json]`: a service's events, oldest first, with
//! their times, and the state changes of its tasks; with `--follow`, new ones as they come
//! (DescribeServices, ListTasks and DescribeTasks every 2 s) until interrupted. With
//! `--output json`, JSON Lines: each event as DescribeServices gives it (`id`, `createdAt`,
//! `message`), and each task change as `{"taskArn", "lastStatus", "at", "stoppedReason"?,
//! "stopCode"?}`, one a line.

use super::api::{ecs, write_json_line, ApiArgs, Output};
use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
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

/// A task's state as last shown, by ARN.
type TaskStates = HashMap<String, String>;

/// The changes of `tasks` (as DescribeTasks gives them) since `shown`, each as
/// `{"taskArn", "lastStatus", "at", …}`; records them in `shown`. `at` is when the task reached
/// that state (`createdAt`, `startedAt`, `stoppedAt`).
pub fn task_changes(tasks: &[Value], shown: &mut TaskStates) -> Vec<Value> {
    let mut changes = Vec::new();
    for task in tasks {
        let (Some(arn), Some(status)) = (task["taskArn"].as_str(), task["lastStatus"].as_str())
        else {
            continue;
        };
        if shown.get(arn).map(String::as_str) == Some(status) {
            continue;
        }
        shown.insert(arn.to_string(), status.to_string());
        let at = match status {
            "STOPPED" | "DEPROVISIONING" | "STOPPING" => task["stoppedAt"]
                .as_f64()
                .or_else(|| task["stoppingAt"].as_f64()),
            "RUNNING" => task["startedAt"].as_f64(),
            _ => None,
        }
        .or_else(|| task["createdAt"].as_f64())
        .unwrap_or(0.0);
        let mut change = json!({"taskArn": arn, "lastStatus": status, "at": at});
        for field in ["stoppedReason", "stopCode"] {
            if let Some(value) = task.get(field).filter(|v| !v.is_null()) {
                change[field] = value.clone();
            }
        }
        changes.push(change);
    }
    changes.sort_by(|a, b| {
        a["at"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["at"].as_f64().unwrap_or(0.0))
    });
    changes
}

/// A task change as a text line.
fn task_line(change: &Value) -> String {
    let arn = change["taskArn"].as_str().unwrap_or_default();
    let mut line = format!(
        "{}  task {} {}",
        berth_core::civil::iso8601(change["at"].as_f64().unwrap_or(0.0) as i64, None),
        super::api::short(arn),
        change["lastStatus"].as_str().unwrap_or_default()
    );
    if let Some(reason) = change["stoppedReason"].as_str() {
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// The service's tasks, running and recently stopped, as DescribeTasks gives them.
async fn service_tasks(
    client: &berth_agent::client::ServerClient,
    cluster: &str,
    service: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut arns = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        let listed = super::api::list_all(
            client,
            "ListTasks",
            json!({"cluster": cluster, "serviceName": service, "desiredStatus": status}),
            "taskArns",
        )
        .await?;
        arns.extend(listed);
    }
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    super::api::describe_all(
        client,
        "DescribeTasks",
        json!({"cluster": cluster}),
        "tasks",
        &arns,
        100,
        "tasks",
    )
    .await
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut shown: TaskStates = HashMap::new();
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
        let tasks = service_tasks(&client, &args.cluster, &args.service).await?;
        for change in task_changes(&tasks, &mut shown) {
            if args.output.is_json() {
                write_json_line(&mut stdout, &change)?;
            } else {
                writeln!(stdout, "{}", task_line(&change))?;
            }
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

    #[test]
    fn task_changes_are_shown_once_each_with_their_reason() {
        let mut shown = TaskStates::new();
        let pending = [
            json!({"taskArn": "arn:aws:ecs:r:1:task/c/t1", "lastStatus": "PENDING", "createdAt": 10.0}),
        ];
        let first = task_changes(&pending, &mut shown);
        assert_eq!(
            first,
            vec![
                json!({"taskArn": "arn:aws:ecs:r:1:task/c/t1", "lastStatus": "PENDING", "at": 10.0})
            ]
        );
        assert!(
            task_changes(&pending, &mut shown).is_empty(),
            "no change, no line"
        );
        let stopped = [
            json!({"taskArn": "arn:aws:ecs:r:1:task/c/t1", "lastStatus": "STOPPED",
            "createdAt": 10.0, "stoppedAt": 30.0, "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited"}),
        ];
        let change = task_changes(&stopped, &mut shown);
        assert_eq!(change[0]["at"], 30.0);
        assert_eq!(
            task_line(&change[0]),
            "1970-01-01T00:00:30Z  task t1 STOPPED: Essential container in task exited"
        );
    }
}
