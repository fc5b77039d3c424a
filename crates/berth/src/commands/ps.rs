//! `berth ps`: a cluster's tasks at a glance — status, health, where to reach them, age, and
//! why they stopped — from ListTasks and DescribeTasks.

use super::api::{age, ecs, now, short, table, ApiArgs, Output};
use clap::Args;
use serde_json::{json, Value};

/// `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Only the tasks of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Stopped tasks too.
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(args: PsArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let mut arns: Vec<Value> = Vec::new();
    let statuses: &[&str] = if args.all {
        &["RUNNING", "STOPPED"]
    } else {
        &["RUNNING"]
    };
    for desired in statuses {
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"cluster": args.cluster, "desiredStatus": desired});
            if let Some(service) = &args.service {
                input["serviceName"] = service.clone().into();
            }
            if let Some(token) = &token {
                input["nextToken"] = token.clone().into();
            }
            let page = ecs(&client, "ListTasks", input).await?;
            arns.extend(page["taskArns"].as_array().cloned().unwrap_or_default());
            token = page["nextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let mut tasks: Vec<Value> = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ecs(
            &client,
            "DescribeTasks",
            json!({"cluster": args.cluster, "tasks": chunk}),
        )
        .await?;
        tasks.extend(out["tasks"].as_array().cloned().unwrap_or_default());
    }
    tasks.sort_by(|a, b| {
        b["createdAt"]
            .as_f64()
            .partial_cmp(&a["createdAt"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&tasks)?),
        Output::Table => {
            let now = now();
            let rows: Vec<Vec<String>> = tasks.iter().map(|t| row(t, now)).collect();
            print!(
                "{}",
                table(
                    &[
                        "TASK",
                        "DEFINITION",
                        "STATUS",
                        "HEALTH",
                        "PORTS",
                        "AGE",
                        "STOPPED"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(())
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
