//! `berth logs TASK [--container NAME] [--since 10m] [--follow]`: what a task's containers
//! wrote, read back from CloudWatch Logs where their `awslogs` configuration sent it. Each
//! line is `TIME CONTAINER  MESSAGE`, oldest first, the containers' lines interleaved by time.
//! With `--follow`, new lines as they come until the task has stopped and its last lines are
//! shown (or until interrupted). With `--output json`, JSON Lines instead: each log event as
//! FilterLogEvents gives it (`logStreamName`, `timestamp`, `message`, `ingestionTime`,
//! `eventId`), one a line, in the same order.

use super::api::{ecs, write_json_line, ApiArgs, Output};
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use berth_core::telemetry::awslogs::AwsLogs;
use clap::Args;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

/// `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task: its id or ARN.
    pub task: String,
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Only this container's lines.
    #[arg(long)]
    pub container: Option<String>,
    /// Only lines written in this last while, e.g. 30s, 10m, 1h.
    #[arg(long, value_parser = super::parse_duration)]
    pub since: Option<Duration>,
    /// Keep printing new lines as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// `text`: `TIME CONTAINER  MESSAGE` lines; or `json`: JSON Lines, one log event
    /// (`logStreamName`, `timestamp`, `message`, `ingestionTime`, `eventId`) a line, as
    /// FilterLogEvents gives it.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The fields of a FilterLogEvents event (a FilteredLogEvent) that `--output json` prints.
const EVENT_FIELDS: &[&str] = &[
    "logStreamName",
    "timestamp",
    "message",
    "ingestionTime",
    "eventId",
];

/// A FilterLogEvents `event` as `--output json` prints it: its own fields, nothing added.
pub fn event_json(event: &Value) -> Value {
    let mut object = serde_json::Map::new();
    for field in EVENT_FIELDS {
        if let Some(value) = event.get(*field).filter(|v| !v.is_null()) {
            object.insert((*field).to_string(), value.clone());
        }
    }
    Value::Object(object)
}

/// `event` as a line for people: `TIME CONTAINER  MESSAGE`, the time to the millisecond.
pub fn event_line(event: &Value, container: &str) -> String {
    let timestamp = event["timestamp"].as_i64().unwrap_or(0);
    let seconds = timestamp.div_euclid(1000);
    let nanos = (timestamp.rem_euclid(1000) * 1_000_000) as u32;
    let time = berth_core::civil::iso8601(seconds, Some(nanos));
    // Milliseconds are all CloudWatch keeps.
    let time = time.replace("000000Z", "Z");
    format!(
        "{time} {container}  {}",
        event["message"].as_str().unwrap_or_default()
    )
}

/// Where one container's lines are.
#[derive(Debug, Clone)]
struct Source {
    container: String,
    group: String,
    stream: String,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let task = describe_task(&client, &args.cluster, &args.task).await?;
    let sources = sources(&client, &task, args.container.as_deref()).await?;
    let mut groups: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    for source in sources {
        groups.entry(source.group.clone()).or_default().push(source);
    }
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let mut start = args.since.map(|since| now_ms() - since.as_millis() as i64);
    let mut seen: HashSet<String> = HashSet::new();
    let mut stdout = std::io::stdout();
    loop {
        let stopped_before = args.follow
            && describe_task(&client, &args.cluster, &args.task).await?["lastStatus"] == "STOPPED";
        let mut events: Vec<(Value, String)> = Vec::new();
        for (group, sources) in &groups {
            for event in filter_all(&client, group, sources, start).await? {
                let id = event["eventId"].as_str().unwrap_or_default().to_string();
                if !seen.insert(id) {
                    continue;
                }
                let stream = event["logStreamName"].as_str().unwrap_or_default();
                let container = sources
                    .iter()
                    .find(|s| s.stream == stream)
                    .map_or(stream, |s| s.container.as_str())
                    .to_string();
                events.push((event, container));
            }
        }
        events.sort_by_key(|(event, _)| event["timestamp"].as_i64().unwrap_or(0));
        for (event, container) in &events {
            if args.output.is_json() {
                write_json_line(&mut stdout, &event_json(event))?;
            } else {
                writeln!(stdout, "{}", event_line(event, container))?;
            }
            let timestamp = event["timestamp"].as_i64().unwrap_or(0);
            start = Some(start.map_or(timestamp, |s| s.max(timestamp)));
        }
        stdout.flush()?;
        if !args.follow || (stopped_before && events.is_empty()) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = super::shutdown_signal() => return Ok(()),
        }
    }
}

async fn describe_task(client: &ServerClient, cluster: &str, task: &str) -> anyhow::Result<Value> {
    let out = ecs(
        client,
        "DescribeTasks",
        json!({"cluster": cluster, "tasks": [task]}),
    )
    .await?;
    match out["tasks"].as_array().and_then(|t| t.first()) {
        Some(task) => Ok(task.clone()),
        None => bail!(
            "no task '{task}' in cluster '{cluster}': {}",
            out["failures"][0]["reason"].as_str().unwrap_or("MISSING")
        ),
    }
}

/// The log streams of the task's awslogs containers (only `only`'s when given).
async fn sources(
    client: &ServerClient,
    task: &Value,
    only: Option<&str>,
) -> anyhow::Result<Vec<Source>> {
    let arn = task["taskArn"].as_str().unwrap_or_default();
    let definition = ecs(
        client,
        "DescribeTaskDefinition",
        json!({"taskDefinition": task["taskDefinitionArn"]}),
    )
    .await?;
    let definitions = definition["taskDefinition"]["containerDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(only) = only {
        if !definitions.iter().any(|d| d["name"] == only) {
            bail!("the task has no container named '{only}'");
        }
    }
    let mut sources = Vec::new();
    for def in &definitions {
        let name = def["name"].as_str().unwrap_or_default();
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let config = &def["logConfiguration"];
        if config["logDriver"] != "awslogs" {
            if only.is_some() {
                bail!(
                    "container '{name}' logs with {} rather than awslogs: read it on its host with `docker logs`",
                    config["logDriver"].as_str().unwrap_or("Docker's default driver")
                );
            }
            continue;
        }
        let options: BTreeMap<String, String> =
            serde_json::from_value(config["options"].clone()).unwrap_or_default();
        let options = AwsLogs::from_options(&options)
            .map_err(|e| anyhow::anyhow!("container '{name}': {e}"))?;
        let runtime_id = task["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .and_then(|c| c["runtimeId"].as_str())
            .unwrap_or_default();
        sources.push(Source {
            container: name.to_string(),
            group: options.group.clone(),
            stream: options.stream_name(name, arn, runtime_id),
        });
    }
    if sources.is_empty() {
        bail!("none of the task's containers logs with the awslogs driver: read them on their host with `docker logs`");
    }
    Ok(sources)
}

/// Every event of `sources`' streams in `group` from `start` on (FilterLogEvents, paged).
async fn filter_all(
    client: &ServerClient,
    group: &str,
    sources: &[Source],
    start: Option<i64>,
) -> anyhow::Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({
            "logGroupName": group,
            "logStreamNames": sources.iter().map(|s| s.stream.clone()).collect::<Vec<_>>(),
        });
        if let Some(start) = start {
            input["startTime"] = start.into();
        }
        if let Some(token) = &token {
            input["nextToken"] = token.clone().into();
        }
        let page: Value = match client
            .call_json("logs", "Logs_20140328.FilterLogEvents", &input)
            .await
        {
            Ok(page) => page,
            // A stream opens as its container starts: none yet is no line yet.
            Err(berth_agent::client::ClientError::Api { kind, .. })
                if kind == "ResourceNotFoundException" =>
            {
                return Ok(events)
            }
            Err(e) => {
                return Err(e).with_context(|| format!("FilterLogEvents on log group {group}"))
            }
        };
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            return Ok(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Value {
        json!({"logStreamName": "web/app/abc", "timestamp": 1_700_000_000_123_i64,
               "message": "hello", "ingestionTime": 1_700_000_000_200_i64, "eventId": "7"})
    }

    #[test]
    fn a_json_event_is_the_filter_log_events_object() {
        assert_eq!(event_json(&event()), event());
        let mut extra = event();
        extra["container"] = "app".into();
        extra["ingestionTime"] = Value::Null;
        let shown = event_json(&extra);
        assert!(shown.get("container").is_none(), "nothing invented");
        assert!(shown.get("ingestionTime").is_none(), "no nulls");
        assert_eq!(shown["message"], "hello");
    }

    #[test]
    fn a_text_line_has_the_time_to_the_millisecond_and_the_container() {
        assert_eq!(
            event_line(&event(), "app"),
            "2023-11-14T22:13:20.123Z app  hello"
        );
    }
}
