//! `berth inspect ARN`: any ECS resource as its Describe call shows it, pretty-printed — a
//! cluster, task, service, container instance (by ARN) or task definition (ARN or
//! `family[:revision]`). The output is always JSON; `--output json` is accepted so scripts can
//! pass it to every command.

use super::api::{ecs, ApiArgs, Output};
use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};

/// `berth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An ECS ARN, or a task definition's `family[:revision]`.
    pub resource: String,
    /// Always `json` (the default): the object as its Describe call gives it, pretty-printed.
    /// Accepted so scripts can pass `--output json` to every command.
    #[arg(long, value_enum, default_value = "json")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The resource type of an ECS ARN (`task`, `service`, ...) and, for the ones inside a
/// cluster, the cluster's name.
fn kind_of(arn: &str) -> Option<(&str, Option<&str>)> {
    let rest = arn.strip_prefix("arn:")?;
    let resource = rest.splitn(5, ':').nth(4)?;
    let mut parts = resource.split('/');
    let kind = parts.next()?;
    let cluster = match kind {
        "task" | "service" | "container-instance" => {
            parts.next().filter(|_| resource.matches('/').count() >= 2)
        }
        _ => None,
    };
    Some((kind, cluster))
}

pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    if !args.output.is_json() {
        bail!("inspect prints JSON only: leave out --output, or pass --output json");
    }
    let client = args.api.client()?;
    let reference = args.resource.as_str();
    let (op, input, key) = match kind_of(reference) {
        Some(("cluster", _)) => ("DescribeClusters", json!({"clusters": [reference]}), "clusters"),
        Some(("task", cluster)) => ("DescribeTasks", json!({"cluster": cluster.unwrap_or("default"), "tasks": [reference]}), "tasks"),
        Some(("service", cluster)) => ("DescribeServices", json!({"cluster": cluster.unwrap_or("default"), "services": [reference]}), "services"),
        Some(("container-instance", cluster)) => (
            "DescribeContainerInstances",
            json!({"cluster": cluster.unwrap_or("default"), "containerInstances": [reference]}),
            "containerInstances",
        ),
        Some(("task-definition", _)) | None if !reference.starts_with("arn:") || reference.contains(":task-definition/") => (
            "DescribeTaskDefinition",
            json!({"taskDefinition": reference, "include": ["TAGS"]}),
            "taskDefinition",
        ),
        _ => bail!(
            "'{reference}' is not an ECS cluster, task, service, container instance or task definition ARN (nor a task definition family[:revision])"
        ),
    };
    let out = ecs(&client, op, input).await?;
    let found: Value = match &out[key] {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    if found.is_null() {
        let why = out["failures"][0]["reason"].as_str().unwrap_or("not found");
        bail!("{reference}: {why}");
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_tell_their_kind_and_cluster() {
        let prefix = "arn:aws:ecs:us-east-1:000000000000";
        assert_eq!(
            kind_of(&format!("{prefix}:cluster/default")),
            Some(("cluster", None))
        );
        assert_eq!(
            kind_of(&format!("{prefix}:task/prod/0123")),
            Some(("task", Some("prod")))
        );
        assert_eq!(
            kind_of(&format!("{prefix}:task/0123")),
            Some(("task", None))
        );
        assert_eq!(
            kind_of(&format!("{prefix}:container-instance/prod/ab")),
            Some(("container-instance", Some("prod")))
        );
        assert_eq!(
            kind_of(&format!("{prefix}:task-definition/web:3")),
            Some(("task-definition", None))
        );
        assert_eq!(kind_of("web:3"), None);
    }
}
