//! The IAM action and resources of every ECS operation, as ECS documents them: `ecs:<Op>` on
//! the cluster, task, task definition, container instance or service it names, with
//! `ecs:cluster` for what lives in a cluster. Operations on a whole cluster (the List
//! operations, container instance registration, agent reports) are on the cluster's ARN, so
//! a policy on one cluster covers them; account-wide ones (ListClusters, task definitions,
//! account settings) are on `*`.

use super::{check, Keys};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::arn::{cluster_name_of, id_of, Arn};
use serde_json::Value;

/// Authorises ECS operation `op` with the JSON input `body`; `AccessDeniedException` when
/// the caller's policies do not allow it.
pub fn authorize_ecs(ctx: &Ctx, op: &str, body: &[u8]) -> Result<(), ApiError> {
    if ctx.caller.is_root() {
        return Ok(());
    }
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut targets = targets(ctx, op, &input);
    // A request naming no resource (an empty list) is judged on `*`, never let through for
    // want of something to judge.
    if targets.is_empty() {
        targets.push(("*".to_string(), Vec::new()));
    }
    check(ctx, &format!("ecs:{op}"), &targets, "AccessDeniedException")
}

/// The resources `op` acts on, each with its condition keys.
fn targets(ctx: &Ctx, op: &str, input: &Value) -> Vec<(String, Keys)> {
    let text = |field: &str| input.get(field).and_then(Value::as_str);
    let list = |field: &str| -> Vec<String> {
        input
            .get(field)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let cluster_name = cluster_name_of(text("cluster").unwrap_or("default"))
        .unwrap_or_else(|| text("cluster").unwrap_or_default().to_string());
    let cluster = ctx.arns.cluster(&cluster_name);
    let request_tags = request_tags(input);
    let in_cluster = |resource: String| {
        let mut context = request_tags.clone();
        context.push(("ecs:cluster".into(), cluster.clone()));
        (resource, context)
    };
    let plain = |resource: String| (resource, request_tags.clone());
    let task_definition = |reference: &str| {
        crate::handlers::task_lookup::resolve_task_definition(ctx, reference)
            .ok()
            .and_then(|r| r.task_definition.task_definition_arn.clone())
            .unwrap_or_else(|| reference.to_string())
    };
    let mut targets = match op {
        "CreateCluster" => vec![plain(
            ctx.arns.cluster(text("clusterName").unwrap_or("default")),
        )],
        "DescribeClusters" => {
            let named = list("clusters");
            let named = if named.is_empty() {
                vec!["default".to_string()]
            } else {
                named
            };
            named
                .iter()
                .map(|c| {
                    plain(
                        ctx.arns
                            .cluster(&cluster_name_of(c).unwrap_or_else(|| c.clone())),
                    )
                })
                .collect()
        }
        "UpdateCluster"
        | "UpdateClusterSettings"
        | "DeleteCluster"
        | "PutClusterCapacityProviders"
        | "ListServices"
        | "ListContainerInstances"
        | "RegisterContainerInstance"
        | "DeregisterContainerInstance"
        | "PutAttributes"
        | "DeleteAttributes"
        | "ListAttributes"
        | "SubmitTaskStateChange"
        | "SubmitContainerStateChange" => {
            vec![in_cluster(cluster.clone())]
        }
        "ListTasks" => match text("containerInstance") {
            Some(instance) => vec![in_cluster(instance_arn(ctx, &cluster_name, instance))],
            None => vec![in_cluster(cluster.clone())],
        },
        "DescribeContainerInstances" | "UpdateContainerInstancesState" => {
            list("containerInstances")
                .iter()
                .map(|i| in_cluster(instance_arn(ctx, &cluster_name, i)))
                .collect()
        }
        "RunTask" | "StartTask" => {
            let mut target =
                in_cluster(task_definition(text("taskDefinition").unwrap_or_default()));
            for instance in list("containerInstances") {
                target.1.push((
                    "ecs:container-instances".into(),
                    instance_arn(ctx, &cluster_name, &instance),
                ));
            }
            vec![target]
        }
        "ExecuteCommand" => {
            let mut target = in_cluster(task_arn(
                ctx,
                &cluster_name,
                text("task").unwrap_or_default(),
            ));
            if let Some(container) = text("container") {
                target
                    .1
                    .push(("ecs:container-name".into(), container.to_string()));
            }
            vec![target]
        }
        "StopTask" => vec![in_cluster(task_arn(
            ctx,
            &cluster_name,
            text("task").unwrap_or_default(),
        ))],
        // GetTaskProtection without `tasks` reads every protected task of the cluster.
        "GetTaskProtection" if list("tasks").is_empty() => vec![in_cluster(cluster.clone())],
        "DescribeTasks" | "UpdateTaskProtection" | "GetTaskProtection" => list("tasks")
            .iter()
            .map(|t| in_cluster(task_arn(ctx, &cluster_name, t)))
            .collect(),
        "CreateService" => vec![in_cluster(
            ctx.arns
                .service(&cluster_name, text("serviceName").unwrap_or_default()),
        )],
        "UpdateService" | "DeleteService" | "ListServiceDeployments" => {
            vec![in_cluster(service_arn(
                ctx,
                &cluster_name,
                text("service").unwrap_or_default(),
            ))]
        }
        // Task sets, as ECS documents them: creating, describing and choosing the primary act
        // on the service; updating and deleting on the task set.
        "CreateTaskSet" | "DescribeTaskSets" | "UpdateServicePrimaryTaskSet" => {
            vec![in_cluster(service_arn(
                ctx,
                &cluster_name,
                text("service").unwrap_or_default(),
            ))]
        }
        "UpdateTaskSet" | "DeleteTaskSet" => vec![in_cluster(task_set_arn(
            ctx,
            &cluster_name,
            text("service").unwrap_or_default(),
            text("taskSet").unwrap_or_default(),
        ))],
        "DescribeServices" => list("services")
            .iter()
            .map(|s| in_cluster(service_arn(ctx, &cluster_name, s)))
            .collect(),
        "DescribeServiceDeployments" => list("serviceDeploymentArns")
            .iter()
            .map(|arn| plain(canonical(ctx, arn)))
            .collect(),
        "DescribeServiceRevisions" => list("serviceRevisionArns")
            .iter()
            .map(|arn| plain(canonical(ctx, arn)))
            .collect(),
        "StopServiceDeployment" => vec![plain(canonical(
            ctx,
            text("serviceDeploymentArn").unwrap_or_default(),
        ))],
        "CreateCapacityProvider" | "UpdateCapacityProvider" => vec![plain(capacity_provider_arn(
            ctx,
            text("name").unwrap_or_default(),
        ))],
        "DeleteCapacityProvider" => vec![plain(capacity_provider_arn(
            ctx,
            text("capacityProvider").unwrap_or_default(),
        ))],
        "DescribeCapacityProviders" => list("capacityProviders")
            .iter()
            .map(|p| plain(capacity_provider_arn(ctx, p)))
            .collect(),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let resource = canonical(ctx, text("resourceArn").unwrap_or_default());
            let mut context = request_tags.clone();
            for key in list("tagKeys") {
                context.push(("aws:TagKeys".into(), key));
            }
            vec![(resource, context)]
        }
        _ => vec![plain("*".to_string())],
    };
    for (resource, context) in &mut targets {
        if resource != "*" {
            for tag in crate::handlers::tags::resource_tags(ctx, resource) {
                if let (Some(key), Some(value)) = (tag.key, tag.value) {
                    context.push((format!("aws:ResourceTag/{key}"), value));
                }
            }
        }
    }
    targets
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` of the request's `tags`.
fn request_tags(input: &Value) -> Keys {
    let mut context = Keys::new();
    let tags = input.get("tags").and_then(Value::as_array);
    for tag in tags.into_iter().flatten() {
        if let Some(key) = tag.get("key").and_then(Value::as_str) {
            let value = tag.get("value").and_then(Value::as_str).unwrap_or_default();
            context.push((format!("aws:RequestTag/{key}"), value.to_string()));
            context.push(("aws:TagKeys".into(), key.to_string()));
        }
    }
    context
}

// A resource is authorised by the ARN of what the handler will act on, never by the ARN as the
// caller spelled it: handlers find tasks, instances and services by the request's cluster and
// the id or name at the end of a reference, and ignore an ARN's region and account.

/// The container instance a reference names in `cluster`, as the handlers resolve it.
fn instance_arn(ctx: &Ctx, cluster: &str, reference: &str) -> String {
    let id = id_of(reference, "container-instance").unwrap_or_else(|| reference.to_string());
    ctx.arns.container_instance(cluster, &id)
}

/// The task a reference names in `cluster`, as the handlers resolve it.
fn task_arn(ctx: &Ctx, cluster: &str, reference: &str) -> String {
    let id = id_of(reference, "task").unwrap_or_else(|| reference.to_string());
    ctx.arns.task(cluster, &id)
}

/// The service a reference names in `cluster`, as the handlers resolve it.
fn service_arn(ctx: &Ctx, cluster: &str, reference: &str) -> String {
    let name = match Arn::parse(reference) {
        Some(arn) if arn.resource_type == "service" => arn.path.last().cloned().unwrap_or_default(),
        _ => reference.to_string(),
    };
    ctx.arns.service(cluster, &name)
}

/// The task set a reference (id or ARN) names in a service of `cluster`, as the handlers
/// resolve it.
fn task_set_arn(ctx: &Ctx, cluster: &str, service: &str, reference: &str) -> String {
    let service = service_arn(ctx, cluster, service);
    let name = service.rsplit('/').next().unwrap_or_default();
    let id = crate::handlers::task_sets::set_id_of(reference);
    format!(
        "arn:aws:ecs:{}:{}:task-set/{cluster}/{name}/{id}",
        ctx.arns.region, ctx.arns.account_id
    )
}

/// The capacity provider a reference (name or ARN) names, as the handlers resolve it.
fn capacity_provider_arn(ctx: &Ctx, reference: &str) -> String {
    ctx.arns
        .capacity_provider(&crate::handlers::capacity_providers::name_of(reference))
}

/// An ECS ARN in this server's region and account (handlers ignore those parts); other text
/// as it is.
fn canonical(ctx: &Ctx, text: &str) -> String {
    match Arn::parse(text) {
        Some(arn) => format!(
            "arn:aws:ecs:{}:{}:{}/{}",
            ctx.arns.region,
            ctx.arns.account_id,
            arn.resource_type,
            arn.path.join("/")
        ),
        None => text.to_string(),
    }
}
