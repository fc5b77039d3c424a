//! A task's page: its containers (status, exit codes, reasons, ports), why it stopped, and the
//! awslogs output of each container, tailed live.

use super::api::{self, short, text};
use super::html::{url, Html};
use super::session::Viewer;
use super::{failed, live, Outcome};
use crate::error::ApiError;
use axum::extract::Path;
use axum::response::Response;
use serde_json::{json, Value};

/// Log lines shown per container: the newest ones.
const LOG_LINES: usize = 200;

/// `GET /console/clusters/{cluster}/tasks/{task}`.
pub async fn show(viewer: Viewer, Path((cluster, task)): Path<(String, String)>) -> Response {
    let mut h = Html::new();
    match describe(&viewer, &cluster, &task).await {
        Err(e) => failed(&mut h, &e),
        Ok(t) => {
            h.raw("<p>")
                .link(
                    &format!("/console/clusters/{}", url(&cluster)),
                    &format!("Cluster {cluster}"),
                )
                .raw("</p>");
            live(&mut h, "task-summary", Ok(summary(&t)));
            live(&mut h, "task-containers", Ok(containers(&t)));
            live(&mut h, "task-logs", logs(&viewer, &t).await);
        }
    }
    viewer.page(&format!("Task {task}"), &h.into_string())
}

async fn describe(viewer: &Viewer, cluster: &str, task: &str) -> Result<Value, ApiError> {
    let mut answer = api::ecs(
        viewer,
        "DescribeTasks",
        json!({"cluster": cluster, "tasks": [task]}),
    )
    .await?;
    match answer["tasks"].get_mut(0).map(Value::take) {
        Some(t) => Ok(t),
        None => Err(ApiError::invalid_parameter(format!(
            "There is no task {task} in cluster {cluster}."
        ))),
    }
}

fn summary(t: &Value) -> Html {
    let mut h = Html::new();
    h.raw("<dl class=\"summary\">");
    for (label, value) in [
        ("Last status", text(&t["lastStatus"])),
        ("Desired status", text(&t["desiredStatus"])),
        (
            "Task definition",
            short(&text(&t["taskDefinitionArn"])).to_string(),
        ),
        ("Group", text(&t["group"])),
        (
            "Instance",
            short(&text(&t["containerInstanceArn"])).to_string(),
        ),
        ("Started", api::time(&t["startedAt"])),
        ("Stopped", api::time(&t["stoppedAt"])),
        ("Stop code", text(&t["stopCode"])),
        ("Stopped reason", text(&t["stoppedReason"])),
    ] {
        h.el("dt", label).el("dd", &value);
    }
    h.raw("</dl>");
    h
}

fn containers(t: &Value) -> Html {
    let mut h = Html::new();
    h.el("h2", "Containers");
    h.raw("<table class=\"containers\">").head(&[
        "Container",
        "Image",
        "Last status",
        "Exit code",
        "Reason",
        "Ports",
        "Health",
    ]);
    for c in t["containers"].as_array().into_iter().flatten() {
        let ports: Vec<String> = c["networkBindings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                format!(
                    "{}:{}→{}/{}",
                    text(&b["bindIP"]),
                    text(&b["hostPort"]),
                    text(&b["containerPort"]),
                    text(&b["protocol"])
                )
            })
            .collect();
        h.row(&[
            &text(&c["name"]),
            &text(&c["image"]),
            &text(&c["lastStatus"]),
            &text(&c["exitCode"]),
            &text(&c["reason"]),
            &ports.join(", "),
            &text(&c["healthStatus"]),
        ]);
    }
    h.raw("</table>");
    h
}

/// Where a container's awslogs output goes: group and stream.
fn log_stream(container: &Value, task_id: &str) -> Option<(String, String)> {
    let config = &container["logConfiguration"];
    if config["logDriver"] != "awslogs" {
        return None;
    }
    let options = &config["options"];
    let group = options["awslogs-group"].as_str()?;
    let prefix = options["awslogs-stream-prefix"].as_str()?;
    let name = container["name"].as_str()?;
    Some((group.to_string(), format!("{prefix}/{name}/{task_id}")))
}

async fn logs(viewer: &Viewer, t: &Value) -> Outcome {
    let mut h = Html::new();
    h.el("h2", "Logs");
    let td = api::ecs(
        viewer,
        "DescribeTaskDefinition",
        json!({"taskDefinition": text(&t["taskDefinitionArn"])}),
    )
    .await?;
    let task_id = short(t["taskArn"].as_str().unwrap_or_default()).to_string();
    let mut any = false;
    for container in td["taskDefinition"]["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some((group, stream)) = log_stream(container, &task_id) else {
            continue;
        };
        any = true;
        h.el("h3", &text(&container["name"]));
        h.raw("<p class=\"hint\">")
            .text(&format!("{group} › {stream}"))
            .raw("</p>");
        let events = api::logs(
            viewer,
            "GetLogEvents",
            json!({"logGroupName": group, "logStreamName": stream,
                   "limit": LOG_LINES, "startFromHead": false}),
        )
        .await;
        match events {
            Ok(events) => {
                h.raw("<pre class=\"logs\">");
                for e in events["events"].as_array().into_iter().flatten() {
                    h.raw("<span class=\"ts\">")
                        .text(&api::time(&Value::from(
                            e["timestamp"].as_f64().unwrap_or(0.0) / 1000.0,
                        )))
                        .raw("</span> ")
                        .text(&text(&e["message"]))
                        .raw("\n");
                }
                h.raw("</pre>");
            }
            Err(e) if e.name == "ResourceNotFoundException" => {
                h.raw("<p class=\"empty\">No log events yet.</p>");
            }
            Err(e) => failed(&mut h, &e),
        }
    }
    if !any {
        h.raw("<p class=\"empty\">No container of this task logs with the awslogs driver.</p>");
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awslogs_streams_are_prefix_container_and_task_id() {
        let c = json!({"name": "app", "logConfiguration": {"logDriver": "awslogs",
            "options": {"awslogs-group": "/g", "awslogs-stream-prefix": "p"}}});
        assert_eq!(
            log_stream(&c, "abc"),
            Some(("/g".to_string(), "p/app/abc".to_string()))
        );
        let json_file = json!({"name": "app", "logConfiguration": {"logDriver": "json-file"}});
        assert_eq!(log_stream(&json_file, "abc"), None);
    }
}
