//! `berth ps`: a cluster's tasks at a glance — status, health, where to reach them, age, and
//! why they stopped — from ListTasks and DescribeTasks.

use super::api::{age, describe_all, list_all, now, short, ListingArgs};
use clap::Args;
use serde_json::{json, Value};

/// `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only the tasks of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Stopped tasks too.
    #[arg(short, long)]
    pub all: bool,
    #[command(flatten)]
    pub listing: ListingArgs,
}

pub async fn run(args: PsArgs) -> anyhow::Result<()> {
    let client = args.listing.api.client()?;
    let statuses: &[&str] = if args.all {
        &["RUNNING", "STOPPED"]
    } else {
        &["RUNNING"]
    };
    let mut arns: Vec<Value> = Vec::new();
    for desired in statuses {
        let mut input = json!({"cluster": args.listing.cluster, "desiredStatus": desired});
        if let Some(service) = &args.service {
            input["serviceName"] = service.clone().into();
        }
        arns.extend(list_all(&client, "ListTasks", input, "taskArns").await?);
    }
    let cluster = json!({"cluster": args.listing.cluster});
    let mut tasks = describe_all(
        &client,
        "DescribeTasks",
        cluster,
        "tasks",
        &arns,
        100,
        "tasks",
    )
    .await?;
    tasks.sort_by(|a, b| {
        b["createdAt"]
            .as_f64()
            .partial_cmp(&a["createdAt"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let now = now();
    args.listing.show(
        &tasks,
        &[
            "TASK",
            "DEFINITION",
            "STATUS",
            "HEALTH",
            "PORTS",
            "AGE",
            "STOPPED",
        ],
        |t| row(t, now),
    )
}

/// One task as a row.
fn row(task: &Value, now: f64) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let definition = task["taskDefinitionArn"]
        .as_str()
        .map_or_else(|| "-".to_string(), short);
    let ports: Vec<String> = task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["networkBindings"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| {
            Some(format!(
                "{}:{}->{}/{}",
                b["bindIP"].as_str().unwrap_or("0.0.0.0"),
                b["hostPort"].as_i64()?,
                b["containerPort"].as_i64()?,
                b["protocol"].as_str().unwrap_or("tcp")
            ))
        })
        .collect();
    let stopped = match (task["stopCode"].as_str(), task["stoppedReason"].as_str()) {
        (Some(code), Some(reason)) => format!("{code}: {reason}"),
        (None, Some(reason)) => reason.to_string(),
        _ => String::new(),
    };
    vec![
        short(task["taskArn"].as_str().unwrap_or("-")),
        definition,
        text(&task["lastStatus"]),
        text(&task["healthStatus"]),
        if ports.is_empty() {
            "-".into()
        } else {
            ports.join(",")
        },
        age(task["createdAt"].as_f64(), now),
        stopped,
    ]
}
