//! Following a service's rollout as it happens, for `berth deploy` and `berth scale`: each
//! deployment's task definition, desired/pending/running counts and rollout state, and the
//! service's new events, until the deployment the command started has COMPLETED (exit 0) or
//! FAILED, rolled back or not (exit 1). On a terminal the deployment lines are redrawn in
//! place; on a pipe each change is a new plain line, so scripts and CI logs read it. With
//! `--output json` there is no redraw: JSON Lines of snapshots
//! (`{"deployments": [...], "events": [...]}`, whenever the deployments change or events come),
//! then `{"outcome": ..., "service": ...}` with the service as DescribeServices gives it.

use super::api::{ecs, short, write_json_line, Output};
use anyhow::bail;
use berth_agent::client::ServerClient;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// It failed; `rolled_back` when the circuit breaker went back to the last deployment.
    Failed {
        reason: String,
        rolled_back: bool,
    },
}

impl Outcome {
    /// How `--output json` names it: `completed`, `failed` or `rolled_back`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed {
                rolled_back: true, ..
            } => "rolled_back",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The exit code: 0 completed, 1 failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Completed => 0,
            Outcome::Failed { .. } => 1,
        }
    }
}

/// A JSON progress line: the service's `deployments` and its new events (ServiceEvent objects,
/// oldest first), as DescribeServices gives them.
pub fn snapshot_json(service: &Value, new_events: &[Value]) -> Value {
    json!({"deployments": service["deployments"], "events": new_events})
}

/// The last JSON line: how it ended (`outcome`, with the `reason` of a failure) and the
/// service as DescribeServices gives it.
pub fn final_json(outcome: &str, reason: Option<&str>, service: &Value) -> Value {
    let mut line = json!({"outcome": outcome, "service": service});
    if let Some(reason) = reason {
        line["reason"] = reason.into();
    }
    line
}

/// One deployment, as a line.
pub fn deployment_line(deployment: &Value) -> String {
    let definition = deployment["taskDefinition"]
        .as_str()
        .map(short)
        .unwrap_or_default();
    let state = deployment["rolloutState"].as_str().unwrap_or("-");
    format!(
        "{:<8} {:<24} desired {:>3}  pending {:>3}  running {:>3}  failed {:>3}  {}",
        deployment["status"].as_str().unwrap_or("-"),
        definition,
        deployment["desiredCount"].as_i64().unwrap_or(0),
        deployment["pendingCount"].as_i64().unwrap_or(0),
        deployment["runningCount"].as_i64().unwrap_or(0),
        deployment["failedTasks"].as_i64().unwrap_or(0),
        state
    )
}

/// Where the rollout of deployment `id` stands: `None` while it is under way.
pub fn outcome(service: &Value, id: &str) -> Option<Outcome> {
    let deployments = service["deployments"].as_array()?;
    let Some(ours) = deployments.iter().find(|d| d["id"] == id) else {
        // Replaced already (a rollback makes a new PRIMARY deployment and drops ours).
        return Some(Outcome::Failed {
            reason: "the deployment was replaced".into(),
            rolled_back: true,
        });
    };
    let steady = deployments.len() == 1
        && ours["desiredCount"] == service["desiredCount"]
        && ours["pendingCount"].as_i64().unwrap_or(0) == 0
        && ours["runningCount"] == ours["desiredCount"];
    match ours["rolloutState"].as_str() {
        Some("COMPLETED") if steady => Some(Outcome::Completed),
        Some("FAILED") => Some(Outcome::Failed {
            reason: ours["rolloutStateReason"]
                .as_str()
                .unwrap_or("the deployment failed")
                .to_string(),
            rolled_back: ours["status"] != "PRIMARY",
        }),
        _ => None,
    }
}

/// Follows `service` until deployment `id` ends or `timeout` passes; prints as it goes (as
/// `output` asks). How it ended, and the service as last described.
pub async fn follow(
    client: &ServerClient,
    cluster: &str,
    service_name: &str,
    id: &str,
    timeout: Duration,
    output: Output,
) -> anyhow::Result<(Outcome, Value)> {
    let json_lines = output.is_json();
    let terminal = !json_lines && std::io::stdout().is_terminal();
    let mut last_deployments = Value::Null;
    let mut stdout = std::io::stdout();
    let mut seen_events: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut drawn = 0usize;
    let mut last_lines: Vec<String> = Vec::new();
    let began = Instant::now();
    loop {
        let out = ecs(
            client,
            "DescribeServices",
            json!({"cluster": cluster, "services": [service_name]}),
        )
        .await?;
        let Some(service) = out["services"].as_array().and_then(|s| s.first()).cloned() else {
            bail!("service '{service_name}' is gone from cluster '{cluster}'");
        };
        // Events are newest first; show the new ones oldest first.
        let mut events: Vec<&Value> = service["events"].as_array().into_iter().flatten().collect();
        events.reverse();
        let mut new_events: Vec<Value> = Vec::new();
        for event in events {
            let event_id = event["id"].as_str().unwrap_or_default().to_string();
            if seen_events.insert(event_id) && !first {
                new_events.push(event.clone());
            }
        }
        first = false;
        let messages: Vec<&str> = new_events
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default())
            .collect();
        let lines: Vec<String> = service["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(deployment_line)
            .collect();
        if json_lines {
            if service["deployments"] != last_deployments || !new_events.is_empty() {
                write_json_line(&mut stdout, &snapshot_json(&service, &new_events))?;
            }
            last_deployments = service["deployments"].clone();
        } else if terminal {
            if drawn > 0 {
                write!(stdout, "\x1b[{drawn}A\x1b[J")?;
            }
            for event in &messages {
                writeln!(stdout, "  event: {event}")?;
            }
            for line in &lines {
                writeln!(stdout, "{line}")?;
            }
            drawn = lines.len();
        } else {
            for event in &messages {
                writeln!(stdout, "event: {event}")?;
            }
            if lines != last_lines {
                for line in &lines {
                    writeln!(stdout, "{line}")?;
                }
            }
        }
        stdout.flush()?;
        last_lines = lines;
        if let Some(outcome) = outcome(&service, id) {
            return Ok((outcome, service));
        }
        if began.elapsed() > timeout {
            if json_lines {
                write_json_line(&mut stdout, &final_json("timed_out", None, &service))?;
            }
            bail!(
                "the deployment of service '{service_name}' has not finished after {}s; it goes on — follow it with `berth events --service {service_name} -f`",
                timeout.as_secs()
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = super::shutdown_signal() => {
                if json_lines {
                    write_json_line(&mut stdout, &final_json("interrupted", None, &service))?;
                }
                bail!("interrupted; the deployment goes on")
            }
        }
    }
}

/// Prints how it ended, as `output` asks (the final JSON line carries `service`, as last
/// described); the exit code (0 completed, 1 failed).
pub fn report_as(
    output: Output,
    service_name: &str,
    outcome: &Outcome,
    service: &Value,
) -> anyhow::Result<i32> {
    if !output.is_json() {
        return Ok(report(service_name, outcome));
    }
    let reason = match outcome {
        Outcome::Completed => None,
        Outcome::Failed { reason, .. } => Some(reason.as_str()),
    };
    write_json_line(
        &mut std::io::stdout(),
        &final_json(outcome.name(), reason, service),
    )?;
    Ok(outcome.exit_code())
}

/// Prints how it ended; the exit code (0 completed, 1 failed).
pub fn report(service: &str, outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Completed => {
            println!("deployment of {service} completed");
            0
        }
        Outcome::Failed {
            reason,
            rolled_back: true,
        } => {
            println!("deployment of {service} failed and was rolled back: {reason}");
            1
        }
        Outcome::Failed { reason, .. } => {
            println!("deployment of {service} failed: {reason}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, status: &str, state: &str) -> Value {
        json!({"id": id, "status": status, "rolloutState": state, "taskDefinition": "arn:aws:ecs:us-east-1:0:task-definition/web:3",
               "desiredCount": 2, "pendingCount": 1, "runningCount": 1, "failedTasks": 0})
    }

    #[test]
    fn a_deployment_line_says_counts_and_state() {
        let line = deployment_line(&deployment("d", "PRIMARY", "IN_PROGRESS"));
        assert!(line.starts_with("PRIMARY  web:3"), "{line}");
        assert!(
            line.contains("desired   2  pending   1  running   1"),
            "{line}"
        );
        assert!(line.ends_with("IN_PROGRESS"), "{line}");
    }

    #[test]
    fn a_rollout_completes_when_its_deployment_is_the_only_one_left() {
        let two = json!({"deployments": [deployment("new", "PRIMARY", "COMPLETED"), deployment("old", "ACTIVE", "COMPLETED")]});
        assert_eq!(outcome(&two, "new"), None);
        let one =
            json!({"desiredCount": 2, "deployments": [deployment("new", "PRIMARY", "COMPLETED")]});
        assert_eq!(outcome(&one, "new"), None, "one task of two still pending");
        let mut steady = deployment("new", "PRIMARY", "COMPLETED");
        steady["pendingCount"] = 0.into();
        steady["runningCount"] = 2.into();
        let one = json!({"desiredCount": 2, "deployments": [steady.clone()]});
        assert_eq!(outcome(&one, "new"), Some(Outcome::Completed));
        let scaled = json!({"desiredCount": 3, "deployments": [steady]});
        assert_eq!(
            outcome(&scaled, "new"),
            None,
            "the deployment has not taken the new count yet"
        );
    }

    #[test]
    fn a_failed_rollout_says_whether_it_was_rolled_back() {
        let service = json!({"deployments": [deployment("back", "PRIMARY", "IN_PROGRESS"), deployment("new", "ACTIVE", "FAILED")]});
        assert!(matches!(
            outcome(&service, "new"),
            Some(Outcome::Failed {
                rolled_back: true,
                ..
            })
        ));
        let gone = json!({"deployments": [deployment("back", "PRIMARY", "COMPLETED")]});
        assert!(matches!(
            outcome(&gone, "new"),
            Some(Outcome::Failed {
                rolled_back: true,
                ..
            })
        ));
        assert_eq!(report("web", &Outcome::Completed), 0);
    }

    #[test]
    fn json_lines_name_the_outcome_and_carry_the_described_service() {
        let failed = |rolled_back| Outcome::Failed {
            reason: "tasks failed".into(),
            rolled_back,
        };
        assert_eq!(Outcome::Completed.name(), "completed");
        assert_eq!(failed(false).name(), "failed");
        assert_eq!(failed(true).name(), "rolled_back");
        assert_eq!(Outcome::Completed.exit_code(), 0);
        assert_eq!(failed(true).exit_code(), 1);

        let service = json!({"serviceName": "web", "desiredCount": 2,
                             "deployments": [deployment("d", "PRIMARY", "IN_PROGRESS")]});
        let event =
            json!({"id": "e", "createdAt": 1.0, "message": "(service web) has started 1 tasks"});
        assert_eq!(
            snapshot_json(&service, std::slice::from_ref(&event)),
            json!({"deployments": [deployment("d", "PRIMARY", "IN_PROGRESS")], "events": [event]})
        );
        assert_eq!(
            final_json("completed", None, &service),
            json!({"outcome": "completed", "service": service})
        );
        assert_eq!(
            final_json("failed", Some("tasks failed"), &service)["reason"],
            "tasks failed"
        );
    }
}
