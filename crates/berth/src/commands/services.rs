//! `berth services`: a cluster's services — desired, running and pending counts, the task
//! definition, the primary deployment's rollout state — from ListServices and
//! DescribeServices.

use super::api::{age, describe_all, list_all, now, short, ListingArgs};
use clap::Args;
use serde_json::{json, Value};

/// `berth services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
}

pub async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    let client = args.listing.api.client()?;
    let cluster = json!({"cluster": args.listing.cluster});
    let arns = list_all(&client, "ListServices", cluster.clone(), "serviceArns").await?;
    let mut services = describe_all(
        &client,
        "DescribeServices",
        cluster,
        "services",
        &arns,
        10,
        "services",
    )
    .await?;
    services.sort_by(|a, b| a["serviceName"].as_str().cmp(&b["serviceName"].as_str()));
    let now = now();
    args.listing.show(
        &services,
        &[
            "NAME",
            "STATUS",
            "DESIRED",
            "RUNNING",
            "PENDING",
            "DEFINITION",
            "ROLLOUT",
            "AGE",
        ],
        |s| row(s, now),
    )
}

fn row(service: &Value, now: f64) -> Vec<String> {
    let number = |v: &Value| {
        v.as_i64()
            .map_or_else(|| "-".to_string(), |n| n.to_string())
    };
    let primary = service["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY"));
    vec![
        service["serviceName"].as_str().unwrap_or("-").to_string(),
        service["status"].as_str().unwrap_or("-").to_string(),
        number(&service["desiredCount"]),
        number(&service["runningCount"]),
        number(&service["pendingCount"]),
        service["taskDefinition"]
            .as_str()
            .map_or_else(|| "-".to_string(), short),
        primary
            .and_then(|d| d["rolloutState"].as_str())
            .unwrap_or("-")
            .to_string(),
        age(service["createdAt"].as_f64(), now),
    ]
}
