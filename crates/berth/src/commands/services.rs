//! `berth services`: a cluster's services — desired, running and pending counts, the task
//! definition, the primary deployment's rollout state — from ListServices and
//! DescribeServices.

use super::api::{age, ecs, now, short, table, ApiArgs, Output};
use clap::Args;
use serde_json::{json, Value};

/// `berth services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[arg(long, default_value = "default")]
    pub cluster: String,
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let mut arns: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"cluster": args.cluster});
        if let Some(token) = &token {
            input["nextToken"] = token.clone().into();
        }
        let page = ecs(&client, "ListServices", input).await?;
        arns.extend(page["serviceArns"].as_array().cloned().unwrap_or_default());
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut services: Vec<Value> = Vec::new();
    for chunk in arns.chunks(10) {
        let out = ecs(
            &client,
            "DescribeServices",
            json!({"cluster": args.cluster, "services": chunk}),
        )
        .await?;
        services.extend(out["services"].as_array().cloned().unwrap_or_default());
    }
    services.sort_by(|a, b| a["serviceName"].as_str().cmp(&b["serviceName"].as_str()));
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&services)?),
        Output::Table => {
            let now = now();
            let rows: Vec<Vec<String>> = services.iter().map(|s| row(s, now)).collect();
            print!(
                "{}",
                table(
                    &[
                        "NAME",
                        "STATUS",
                        "DESIRED",
                        "RUNNING",
                        "PENDING",
                        "DEFINITION",
                        "ROLLOUT",
                        "AGE"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(())
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
