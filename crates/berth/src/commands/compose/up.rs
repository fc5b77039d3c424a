//! `berth compose up`: each service of the plan, in dependency order, created, updated or left
//! alone — whichever its current ECS service calls for — with each rollout followed live
//! (`progress`) before the services that depend on it start. Exit 1 when a rollout fails.

use super::convert::{ServicePlan, HASH_LABEL};
use super::{secrets, UpArgs};
use crate::commands::api::{ecs, short, Output};
use crate::commands::deploy::primary;
use crate::commands::progress;
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What `up` does to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// There is no ACTIVE service of that name.
    Create,
    /// The service exists; `definition` when its task definition differs from the file's,
    /// `settings` when its replica count or deployment configuration does.
    Update {
        definition: bool,
        settings: bool,
    },
    Unchanged,
}

/// What `plan` calls for given the `current` service (as DescribeServices gives it) and the
/// config hash of its current task definition's container.
pub fn change(plan: &ServicePlan, current: Option<&Value>, current_hash: Option<&str>) -> Change {
    let Some(current) = current.filter(|s| s["status"] == "ACTIVE") else {
        return Change::Create;
    };
    let definition = current_hash != Some(plan.config_hash.as_str());
    let wanted = &plan.service["deploymentConfiguration"];
    let have = &current["deploymentConfiguration"];
    let settings = current["desiredCount"] != plan.service["desiredCount"]
        || ["minimumHealthyPercent", "maximumPercent"]
            .iter()
            .any(|k| have[*k] != wanted[*k]);
    if definition || settings {
        Change::Update {
            definition,
            settings,
        }
    } else {
        Change::Unchanged
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<i32> {
    let plan = super::load(&args.project)?;
    for note in &plan.unsupported {
        eprintln!("berth compose: not supported, ignored: {note}");
    }
    let client = args.api.client()?;
    let cluster = args.project.cluster.as_str();
    let known: Vec<&str> = plan
        .services
        .iter()
        .map(|s| s.service_name.as_str())
        .collect();
    for orphan in super::down::project_services(&client, cluster, &plan.project).await? {
        let name = orphan["serviceName"].as_str().unwrap_or_default();
        if !known.contains(&name) {
            eprintln!(
                "berth compose: service {name} of project {} is not in the file any more; `berth compose down -p {}` removes the project",
                plan.project, plan.project
            );
        }
    }
    let stored = if plan.secrets.is_empty() {
        Stored::default()
    } else {
        let (arns, changed) =
            secrets::ensure_secrets(&client, &plan.project, &plan.secrets).await?;
        let role = plan
            .execution_role
            .as_deref()
            .context("a plan with secrets has an execution role")?;
        let role_arn = secrets::ensure_role(&client, role, &arns).await?;
        Stored {
            arns,
            changed,
            role_arn: Some(role_arn),
        }
    };
    for service in &plan.services {
        let code = up_one(&client, cluster, service, &stored, args.timeout).await?;
        if code != 0 {
            eprintln!(
                "berth compose: stopped at {}: the services after it were not changed",
                service.name
            );
            return Ok(code);
        }
    }
    Ok(0)
}

/// The project's secrets as stored: ARNs by Secrets Manager name, those whose value is new,
/// and the execution role's ARN.
#[derive(Debug, Default)]
struct Stored {
    arns: BTreeMap<String, String>,
    changed: BTreeSet<String>,
    role_arn: Option<String>,
}

/// Brings one service to the plan; the exit code of its rollout (0 when nothing changed).
async fn up_one(
    client: &ServerClient,
    cluster: &str,
    plan: &ServicePlan,
    stored: &Stored,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let name = plan.service_name.as_str();
    let current = settled_service(client, cluster, name, timeout).await?;
    let current_hash = match &current {
        Some(service) if service["status"] == "ACTIVE" => {
            let arn = service["taskDefinition"].as_str().unwrap_or_default();
            let described = ecs(
                client,
                "DescribeTaskDefinition",
                json!({"taskDefinition": arn}),
            )
            .await?;
            described["taskDefinition"]["containerDefinitions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["name"] == plan.name.as_str()))
                .and_then(|c| c["dockerLabels"][HASH_LABEL].as_str())
                .map(str::to_string)
        }
        _ => None,
    };
    let secret_changed = plan.secrets.iter().any(|s| stored.changed.contains(s));
    let answer = match change(plan, current.as_ref(), current_hash.as_deref()) {
        Change::Unchanged if secret_changed => {
            println!("{}: a secret changed, redeploying {name}", plan.name);
            let input = json!({"cluster": cluster, "service": name, "forceNewDeployment": true});
            ecs(client, "UpdateService", input).await?
        }
        Change::Unchanged => {
            let definition = current
                .as_ref()
                .and_then(|s| s["taskDefinition"].as_str())
                .map(short)
                .unwrap_or_default();
            println!("{}: unchanged ({name}, {definition})", plan.name);
            return Ok(0);
        }
        Change::Create => {
            let arn = register(client, plan, stored).await?;
            println!(
                "{}: creating service {name} with {}",
                plan.name,
                short(&arn)
            );
            let mut input = plan.service.clone();
            input["cluster"] = cluster.into();
            input["taskDefinition"] = arn.into();
            ecs(client, "CreateService", input).await?
        }
        Change::Update {
            definition,
            settings,
        } => {
            let mut input = json!({
                "cluster": cluster,
                "service": name,
                "desiredCount": plan.service["desiredCount"],
                "deploymentConfiguration": plan.service["deploymentConfiguration"],
            });
            if definition {
                let arn = register(client, plan, stored).await?;
                println!("{}: updating service {name} to {}", plan.name, short(&arn));
                input["taskDefinition"] = arn.into();
            } else if settings {
                println!(
                    "{}: updating service {name} to {} replicas",
                    plan.name, plan.service["desiredCount"]
                );
            }
            ecs(client, "UpdateService", input).await?
        }
    };
    let id = primary(&answer)?;
    let (outcome, _) = progress::follow(client, cluster, name, &id, timeout, Output::Text).await?;
    Ok(progress::report(name, &outcome))
}

/// Registers the plan's task definition (with the ARNs of its secrets and role); its ARN.
async fn register(
    client: &ServerClient,
    plan: &ServicePlan,
    stored: &Stored,
) -> anyhow::Result<String> {
    let input = secrets::with_arns(
        &plan.task_definition,
        &stored.arns,
        stored.role_arn.as_deref(),
    );
    let registered = ecs(client, "RegisterTaskDefinition", input).await?;
    registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .map(str::to_string)
        .context("RegisterTaskDefinition answered no ARN")
}

/// The service `name` as DescribeServices gives it, `None` when there is none; one being
/// deleted (DRAINING, after a `down`) is waited for until it is gone.
async fn settled_service(
    client: &ServerClient,
    cluster: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Value>> {
    let began = Instant::now();
    loop {
        let out = ecs(
            client,
            "DescribeServices",
            json!({"cluster": cluster, "services": [name]}),
        )
        .await?;
        let service = out["services"].as_array().and_then(|s| s.first()).cloned();
        match service {
            Some(s) if s["status"] == "DRAINING" => {
                if began.elapsed() > timeout {
                    bail!("service {name} is still being deleted after {}s; try again when `berth services` no longer lists it", timeout.as_secs());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ServicePlan {
        ServicePlan {
            name: "web".into(),
            service_name: "shop-web".into(),
            task_definition: json!({"family": "shop-web"}),
            service: json!({"serviceName": "shop-web", "desiredCount": 2,
                            "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100}}),
            config_hash: "abc".into(),
            depends_on: vec![],
            secrets: vec![],
        }
    }

    fn current(count: u32) -> Value {
        json!({"status": "ACTIVE", "desiredCount": count, "taskDefinition": "arn:td/shop-web:1",
               "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100, "deploymentCircuitBreaker": {"enable": true, "rollback": true}}})
    }

    #[test]
    fn a_service_with_the_same_hash_and_count_is_left_alone() {
        assert_eq!(
            change(&plan(), Some(&current(2)), Some("abc")),
            Change::Unchanged
        );
    }

    #[test]
    fn a_new_hash_or_count_updates_only_what_changed() {
        assert_eq!(
            change(&plan(), Some(&current(2)), Some("old")),
            Change::Update {
                definition: true,
                settings: false
            }
        );
        assert_eq!(
            change(&plan(), Some(&current(1)), Some("abc")),
            Change::Update {
                definition: false,
                settings: true
            }
        );
        assert_eq!(
            change(&plan(), Some(&current(2)), None),
            Change::Update {
                definition: true,
                settings: false
            },
            "a task definition not made by compose is replaced"
        );
    }

    #[test]
    fn a_missing_or_deleted_service_is_created() {
        assert_eq!(change(&plan(), None, None), Change::Create);
        let mut inactive = current(2);
        inactive["status"] = "INACTIVE".into();
        assert_eq!(
            change(&plan(), Some(&inactive), Some("abc")),
            Change::Create
        );
    }
}
