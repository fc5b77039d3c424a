//! `berth compose down`: the project's services (found by their `com.docker.compose.project`
//! tag, so a service removed from the file goes too) deleted with `force` (scaled to 0, their
//! tasks stopped), waited for until INACTIVE, and their task definitions deregistered; then
//! the project's secrets and execution role are deleted.

use super::convert::PROJECT_LABEL;
use super::DownArgs;
use crate::commands::api::{describe_all, ecs, list_all};
use anyhow::bail;
use berth_agent::client::ServerClient;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The ACTIVE services of `cluster` tagged with `project`.
pub async fn project_services(
    client: &ServerClient,
    cluster: &str,
    project: &str,
) -> anyhow::Result<Vec<Value>> {
    let arns = list_all(
        client,
        "ListServices",
        json!({"cluster": cluster}),
        "serviceArns",
    )
    .await?;
    let services = describe_all(
        client,
        "DescribeServices",
        json!({"cluster": cluster, "include": ["TAGS"]}),
        "services",
        &arns,
        10,
        "services",
    )
    .await?;
    Ok(services
        .into_iter()
        .filter(|s| s["status"] == "ACTIVE" && tagged(s, project))
        .collect())
}

/// Whether `service` carries the project tag of `project`.
fn tagged(service: &Value, project: &str) -> bool {
    service["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == PROJECT_LABEL && t["value"] == project)
}

/// The family of a task definition ARN (`...:task-definition/shop-web:3` → `shop-web`).
fn family_of(arn: &str) -> Option<String> {
    let last = arn.rsplit('/').next()?;
    Some(
        last.rsplit_once(':')
            .map_or(last, |(family, _)| family)
            .to_string(),
    )
}

pub async fn run(args: DownArgs) -> anyhow::Result<i32> {
    let project = super::project_only(&args.project)?;
    let cluster = args.project.cluster.as_str();
    let client = args.api.client()?;
    let services = project_services(&client, cluster, &project).await?;
    if services.is_empty() {
        println!("project {project} has no services in cluster {cluster}");
        super::secrets::remove(&client, &project).await?;
        return Ok(0);
    }
    let mut names = Vec::new();
    let mut families = BTreeSet::new();
    for service in &services {
        let name = service["serviceName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        families.extend(service["taskDefinition"].as_str().and_then(family_of));
        ecs(
            &client,
            "DeleteService",
            json!({"cluster": cluster, "service": name, "force": true}),
        )
        .await?;
        println!("deleting service {name}");
        names.push(Value::String(name));
    }
    wait_inactive(&client, cluster, &names, args.timeout).await?;
    for family in &families {
        let arns = list_all(
            &client,
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "status": "ACTIVE"}),
            "taskDefinitionArns",
        )
        .await?;
        for arn in arns.iter().filter_map(Value::as_str) {
            if family_of(arn).as_deref() == Some(family.as_str()) {
                ecs(
                    &client,
                    "DeregisterTaskDefinition",
                    json!({"taskDefinition": arn}),
                )
                .await?;
            }
        }
        println!("deregistered task definition family {family}");
    }
    super::secrets::remove(&client, &project).await?;
    println!("project {project} removed");
    Ok(0)
}

/// Waits until every service of `names` is INACTIVE (its tasks stopped).
async fn wait_inactive(
    client: &ServerClient,
    cluster: &str,
    names: &[Value],
    timeout: Duration,
) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let described = describe_all(
            client,
            "DescribeServices",
            json!({"cluster": cluster}),
            "services",
            names,
            10,
            "services",
        )
        .await?;
        let left: Vec<&str> = described
            .iter()
            .filter(|s| s["status"] != "INACTIVE")
            .filter_map(|s| s["serviceName"].as_str())
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if began.elapsed() > timeout {
            bail!(
                "services {} still have tasks stopping after {}s; they go on stopping",
                left.join(", "),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_belongs_to_the_project_of_its_tag() {
        let service = json!({"tags": [{"key": PROJECT_LABEL, "value": "shop"}]});
        assert!(tagged(&service, "shop"));
        assert!(!tagged(&service, "shop2"));
        assert!(!tagged(&json!({}), "shop"));
    }

    #[test]
    fn a_family_is_read_from_a_task_definition_arn() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:0:task-definition/shop-web:3").as_deref(),
            Some("shop-web")
        );
    }
}
