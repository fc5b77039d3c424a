//! `berth instances`: a cluster's container instances — status, whether the agent is
//! connected, tasks, and CPU and memory free of registered — from ListContainerInstances and
//! DescribeContainerInstances.

use super::api::{ecs, short, table, ApiArgs, Output};
use clap::Args;
use serde_json::{json, Value};

/// `berth instances`.
#[derive(Debug, Args)]
pub struct InstancesArgs {
    #[arg(long, default_value = "default")]
    pub cluster: String,
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(args: InstancesArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let mut arns: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"cluster": args.cluster});
        if let Some(token) = &token {
            input["nextToken"] = token.clone().into();
        }
        let page = ecs(&client, "ListContainerInstances", input).await?;
        arns.extend(
            page["containerInstanceArns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut instances: Vec<Value> = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ecs(
            &client,
            "DescribeContainerInstances",
            json!({"cluster": args.cluster, "containerInstances": chunk}),
        )
        .await?;
        instances.extend(
            out["containerInstances"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&instances)?),
        Output::Table => {
            let rows: Vec<Vec<String>> = instances.iter().map(row).collect();
            print!(
                "{}",
                table(
                    &[
                        "INSTANCE",
                        "STATUS",
                        "CONNECTED",
                        "RUNNING",
                        "PENDING",
                        "CPU FREE",
                        "MEMORY FREE",
                        "ZONE"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(())
}

/// The integer value of resource `name` in `resources`.
fn resource(resources: &Value, name: &str) -> Option<i64> {
    resources.as_array()?.iter().find(|r| r["name"] == name)?["integerValue"].as_i64()
}

fn row(instance: &Value) -> Vec<String> {
    let free = |name: &str, unit: &str| match (
        resource(&instance["remainingResources"], name),
        resource(&instance["registeredResources"], name),
    ) {
        (Some(left), Some(total)) => format!("{left}/{total}{unit}"),
        _ => "-".into(),
    };
    let zone = instance["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "ecs.availability-zone"))
        .and_then(|a| a["value"].as_str())
        .unwrap_or("-");
    vec![
        short(instance["containerInstanceArn"].as_str().unwrap_or("-")),
        instance["status"].as_str().unwrap_or("-").to_string(),
        instance["agentConnected"]
            .as_bool()
            .map_or_else(|| "-".to_string(), |c| c.to_string()),
        instance["runningTasksCount"]
            .as_i64()
            .unwrap_or(0)
            .to_string(),
        instance["pendingTasksCount"]
            .as_i64()
            .unwrap_or(0)
            .to_string(),
        free("CPU", ""),
        free("MEMORY", " MiB"),
        zone.to_string(),
    ]
}
