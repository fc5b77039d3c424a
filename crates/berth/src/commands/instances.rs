//! `berth instances`: a cluster's container instances — status, whether the agent is
//! connected, tasks, and CPU and memory free of registered — from ListContainerInstances and
//! DescribeContainerInstances.

use super::api::{describe_all, list_all, short, ListingArgs};
use clap::Args;
use serde_json::{json, Value};

/// `berth instances`.
#[derive(Debug, Args)]
pub struct InstancesArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
}

pub async fn run(args: InstancesArgs) -> anyhow::Result<()> {
    let client = args.listing.api.client()?;
    let cluster = json!({"cluster": args.listing.cluster});
    let arns = list_all(
        &client,
        "ListContainerInstances",
        cluster.clone(),
        "containerInstanceArns",
    )
    .await?;
    let instances = describe_all(
        &client,
        "DescribeContainerInstances",
        cluster,
        "containerInstances",
        &arns,
        100,
        "containerInstances",
    )
    .await?;
    args.listing.show(
        &instances,
        &[
            "INSTANCE",
            "STATUS",
            "CONNECTED",
            "RUNNING",
            "PENDING",
            "CPU FREE",
            "MEMORY FREE",
            "ZONE",
        ],
        row,
    )
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
