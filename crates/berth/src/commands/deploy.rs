//! `berth deploy SERVICE --image [CONTAINER=]IMAGE` and `berth scale SERVICE COUNT`: change a
//! service with ordinary ECS calls (RegisterTaskDefinition of the service's definition with
//! the new image, then UpdateService; or UpdateService of the desired count) and follow the
//! rollout live (`progress`) until it completes (exit 0) or fails (exit 1); with
//! `--output json`, as JSON Lines of progress and a final `{"outcome", "service"}` line.

use super::api::{ecs, ApiArgs, Output};
use super::progress;
use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// `berth deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The service.
    pub service: String,
    /// The new image of a container: CONTAINER=IMAGE, or IMAGE when the task has one
    /// container; repeatable.
    #[arg(long = "image", required = true)]
    pub images: Vec<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// How long to follow the rollout.
    #[arg(long, default_value = "10m", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// `text`: the deployments redrawn live (plain lines on a pipe) and the service's events;
    /// or `json`: JSON Lines, `{"deployments": [...], "events": [...]}` as they change (the
    /// service's objects as DescribeServices gives them), then
    /// `{"outcome": "completed"|"failed"|"rolled_back"|"timed_out"|"interrupted", "service": ...}`.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `berth scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The service.
    pub service: String,
    /// Its new desired count.
    pub count: u32,
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// How long to follow the change.
    #[arg(long, default_value = "10m", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// `text`: the deployments redrawn live (plain lines on a pipe) and the service's events;
    /// or `json`: JSON Lines, `{"deployments": [...], "events": [...]}` as they change (the
    /// service's objects as DescribeServices gives them), then
    /// `{"outcome": "completed"|"failed"|"rolled_back"|"timed_out"|"interrupted", "service": ...}`.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The fields of a described task definition that RegisterTaskDefinition takes back.
const REGISTRABLE: &[&str] = &[
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// `definition` (as DescribeTaskDefinition gives it) with `images` applied, as a
/// RegisterTaskDefinition input.
pub fn with_images(definition: &Value, images: &[String]) -> anyhow::Result<Value> {
    let mut input = Map::new();
    for field in REGISTRABLE {
        if let Some(value) = definition.get(*field).filter(|v| !v.is_null()) {
            input.insert((*field).to_string(), value.clone());
        }
    }
    let containers = input
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .context("the task definition has no containers")?;
    let names: Vec<String> = containers
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    for spec in images {
        let (container, image) = match spec.split_once('=') {
            Some((container, image)) => (container.to_string(), image),
            None if names.len() == 1 => (names[0].clone(), spec.as_str()),
            None => bail!(
                "the task has containers {}: say which gets the image, as --image CONTAINER={spec}",
                names.join(", ")
            ),
        };
        if image.is_empty() {
            bail!("--image {spec} names no image");
        }
        let Some(def) = containers
            .iter_mut()
            .find(|c| c["name"] == container.as_str())
        else {
            bail!(
                "the task has no container '{container}'; it has {}",
                names.join(", ")
            );
        };
        def["image"] = image.into();
    }
    Ok(Value::Object(input))
}

/// The id of the PRIMARY deployment of an UpdateService answer.
pub fn primary(updated: &Value) -> anyhow::Result<String> {
    updated["service"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["status"] == "PRIMARY")
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
        .context("UpdateService answered no PRIMARY deployment")
}

pub async fn deploy(args: DeployArgs) -> anyhow::Result<i32> {
    let client = args.api.client()?;
    let out = ecs(
        &client,
        "DescribeServices",
        json!({"cluster": args.cluster, "services": [args.service]}),
    )
    .await?;
    let Some(service) = out["services"].as_array().and_then(|s| s.first()) else {
        bail!(
            "no service '{}' in cluster '{}' (`berth services` lists them)",
            args.service,
            args.cluster
        );
    };
    let current = service["taskDefinition"].as_str().unwrap_or_default();
    let described = ecs(
        &client,
        "DescribeTaskDefinition",
        json!({"taskDefinition": current}),
    )
    .await?;
    let input = with_images(&described["taskDefinition"], &args.images)?;
    let registered = ecs(&client, "RegisterTaskDefinition", input).await?;
    let arn = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered no ARN")?
        .to_string();
    if !args.output.is_json() {
        println!("registered {}", super::api::short(&arn));
    }
    let updated = ecs(
        &client,
        "UpdateService",
        json!({"cluster": args.cluster, "service": args.service, "taskDefinition": arn}),
    )
    .await?;
    let id = primary(&updated)?;
    let (outcome, service) = progress::follow(
        &client,
        &args.cluster,
        &args.service,
        &id,
        args.timeout,
        args.output,
    )
    .await?;
    progress::report_as(args.output, &args.service, &outcome, &service)
}

pub async fn scale(args: ScaleArgs) -> anyhow::Result<i32> {
    let client = args.api.client()?;
    let updated = ecs(
        &client,
        "UpdateService",
        json!({"cluster": args.cluster, "service": args.service, "desiredCount": args.count}),
    )
    .await?;
    let id = primary(&updated)?;
    let (outcome, service) = progress::follow(
        &client,
        &args.cluster,
        &args.service,
        &id,
        args.timeout,
        args.output,
    )
    .await?;
    progress::report_as(args.output, &args.service, &outcome, &service)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> Value {
        json!({"family": "web", "revision": 3, "status": "ACTIVE", "taskDefinitionArn": "arn",
               "containerDefinitions": [{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "busybox"}],
               "cpu": "256", "registeredAt": 1.0, "requiresAttributes": []})
    }

    #[test]
    fn a_new_image_goes_to_the_named_container_and_only_registrable_fields_are_kept() {
        let input = with_images(&definition(), &["app=nginx:2".into()]).expect("applies");
        assert_eq!(input["containerDefinitions"][0]["image"], "nginx:2");
        assert_eq!(input["containerDefinitions"][1]["image"], "busybox");
        assert_eq!(input["cpu"], "256");
        for dropped in [
            "revision",
            "status",
            "taskDefinitionArn",
            "registeredAt",
            "requiresAttributes",
        ] {
            assert!(input.get(dropped).is_none(), "{dropped}");
        }
    }

    #[test]
    fn an_image_without_a_container_needs_a_single_container_task() {
        let error = with_images(&definition(), &["nginx:2".into()]).expect_err("ambiguous");
        assert!(
            error.to_string().contains("--image CONTAINER=nginx:2"),
            "{error}"
        );
        let error = with_images(&definition(), &["db=postgres".into()]).expect_err("no such");
        assert!(error.to_string().contains("no container 'db'"), "{error}");
        let one = json!({"family": "x", "containerDefinitions": [{"name": "only", "image": "a"}]});
        let input = with_images(&one, &["b".into()]).expect("the only one");
        assert_eq!(input["containerDefinitions"][0]["image"], "b");
    }
}
