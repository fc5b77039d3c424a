//! Launching a service's tasks with the scheduler, through the placement layer RunTask uses
//! (`handlers::tasks::placement`): the service's strategies, or ECS's default for services
//! (spread over availability zones, then over instances), and its constraints with its task
//! definition's. The controller writes the placed tasks in the transaction that also writes
//! the service, guarded by the revisions of the instances they go to, as RunTask's commit is
//! (what an instance has left derives from its tasks).

use crate::app::App;
use crate::error::ApiError;
use crate::handlers::capacity_providers::strategy as capacity_strategy;
use crate::handlers::task_lookup::new_task_ids;
use crate::handlers::tasks::placement;
use berth_core::model::task::{Task, TaskOverride};
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::model::{merge_tags, Tag};
use berth_core::resources::task_resources;
use berth_core::scheduler::{default_service_strategies, Reason, Snapshot, TaskRequest};
use berth_core::service::events::{closest_instance_short_of, NO_INSTANCES};
use berth_core::service::reconcile::Launch;
use berth_core::service::ServiceRecord;
use berth_core::task_state::{new_task, NewTask};
use std::collections::BTreeMap;

/// What a launch produced: new tasks (by id) and the instances they reserve on (by id, with
/// the revision they were read at), and why any task could not be placed.
#[derive(Debug, Default)]
pub struct Launched {
    pub tasks: Vec<(String, Task)>,
    pub instances: BTreeMap<String, u64>,
    pub unplaced: Option<String>,
}

/// Everything a launch reads besides the store.
#[derive(Debug)]
pub struct LaunchInput<'a> {
    pub cluster: &'a str,
    pub service: &'a ServiceRecord,
    pub deployment_id: &'a str,
    pub task_definition: &'a TaskDefinitionRecord,
    pub now: f64,
}

/// Places and builds the tasks of `launch` on the cluster as the state cache holds it.
pub fn launch(
    app: &App,
    turn: &mut placement::Turn,
    input: &LaunchInput<'_>,
    launch: &Launch,
) -> Result<Launched, ApiError> {
    let mut out = Launched::default();
    let td = &input.task_definition.task_definition;
    let service = &input.service.service;
    let mut request = TaskRequest {
        resources: task_resources(td, &TaskOverride::default()),
        group: format!("service:{}", input.service.name()),
        strategies: placement::strategies(
            service.placement_strategy.as_deref(),
            default_service_strategies,
        )?,
        constraints: placement::constraints(
            service.placement_constraints.as_deref(),
            td.placement_constraints.as_deref(),
        )?,
        required_attributes: crate::handlers::tasks::requirements_for(
            td,
            &capacity_strategy::service_launch_type(service),
        ),
        count: 0,
    };
    let (snapshot, instances, placed, providers) = match launch {
        Launch::None => return Ok(out),
        Launch::Replicas(n) => {
            // With a capacity provider strategy: a request per provider, split so the
            // deployment's tasks keep the strategy's base and weights.
            let batch = capacity_strategy::service_batch(
                app,
                input.cluster,
                input.service.name(),
                input.deployment_id,
                service.capacity_provider_strategy.as_deref(),
                request,
                *n as usize,
            )?;
            let plan = placement::plan_batches(
                app,
                turn,
                input.cluster,
                &batch.requests,
                placement::seed(),
            );
            let call = plan.calls.into_iter().next().unwrap_or_default();
            if call.outcome.unplaced > 0 {
                out.unplaced = Some(unplaced_reason(&plan.snapshot, &call.outcome.failures));
            }
            let providers = batch.providers_of(&call.batches);
            (
                plan.snapshot,
                plan.instances,
                call.outcome.placements,
                providers,
            )
        }
        Launch::OnInstances(ids) => {
            request.count = 1;
            let (mut snapshot, instances) = placement::snapshot(app, turn, input.cluster);
            let mut placed = Vec::new();
            for id in ids {
                let Some(i) = snapshot.index_of(id) else {
                    continue;
                };
                match snapshot.place_on(i, &request) {
                    Ok(()) => placed.push(i),
                    Err(reason) => {
                        out.unplaced = Some(unplaced_reason(&snapshot, &[(i, reason)]));
                    }
                }
            }
            let providers = vec![None; placed.len()];
            (snapshot, instances, placed, providers)
        }
    };
    let tags = task_tags(input);
    for (i, provider) in placed.into_iter().zip(providers) {
        let id = snapshot.id(i);
        let Some(stored) = instances.get(id) else {
            continue;
        };
        out.instances.insert(id.to_string(), stored.mod_revision);
        let pick = out.tasks.len();
        let (task_id, mut task) = build_task(app, input, snapshot.arn(i), &tags, pick);
        task.capacity_provider_name = provider;
        out.tasks.push((task_id, task));
    }
    Ok(out)
}

/// The service as a launch for task set `set` sees it: the set's launch type, capacity
/// provider strategy and network configuration in place of the service's, so the set's tasks
/// are placed, dressed (awsvpc interface, Fargate platform) and split over providers exactly
/// as a deployment's.
pub fn as_task_set(
    record: &ServiceRecord,
    set: &berth_core::model::service::TaskSet,
) -> ServiceRecord {
    let mut view = record.clone();
    let service = &mut view.service;
    service.launch_type = set.launch_type.clone();
    service.capacity_provider_strategy = set.capacity_provider_strategy.clone();
    service.network_configuration = set.network_configuration.clone();
    service.platform_version = set.platform_version.clone();
    view
}

/// The tags a new task of the service carries: propagated from the service or the task
/// definition, and ECS's managed tags when enabled.
fn task_tags(input: &LaunchInput<'_>) -> Vec<Tag> {
    let service = &input.service.service;
    let mut tags = Vec::new();
    match service.propagate_tags.as_deref() {
        Some("SERVICE") => merge_tags(&mut tags, service.tags.as_deref().unwrap_or_default()),
        Some("TASK_DEFINITION") => merge_tags(&mut tags, &input.task_definition.tags),
        _ => {}
    }
    if service.enable_ecs_managed_tags == Some(true) {
        let managed = [
            Tag {
                key: Some("aws:ecs:clusterName".into()),
                value: Some(input.cluster.to_string()),
            },
            Tag {
                key: Some("aws:ecs:serviceName".into()),
                value: Some(input.service.name().to_string()),
            },
        ];
        merge_tags(&mut tags, &managed);
    }
    tags
}

/// A new task of the service on `instance_arn` (as RunTask builds one: PROVISIONING, a
/// container ARN per container), started by the deployment, in group `service:NAME`.
fn build_task(
    app: &App,
    input: &LaunchInput<'_>,
    instance_arn: &str,
    tags: &[Tag],
    pick: usize,
) -> (String, Task) {
    let td = &input.task_definition.task_definition;
    let arns = &app.arns;
    let count = td.container_definitions.as_ref().map_or(0, Vec::len);
    let (id, task_arn, container_arns) = new_task_ids(arns, input.cluster, count);
    let service = &input.service.service;
    let task = new_task(NewTask {
        task_arn,
        cluster_arn: arns.cluster(input.cluster),
        container_instance_arn: instance_arn.to_string(),
        task_definition: td,
        container_arns,
        overrides: TaskOverride::default(),
        started_by: Some(input.deployment_id.to_string()),
        group: format!("service:{}", input.service.name()),
        launch_type: capacity_strategy::service_launch_type(service),
        tags: tags.to_vec(),
        enable_execute_command: service.enable_execute_command.unwrap_or(false),
        now: input.now,
    });
    let mut task = task;
    let vpc = service
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref());
    crate::handlers::tasks::dress_task(app, &mut task, td, vpc, pick);
    (id, task)
}

/// The reason of the closest matching instance, in the words of ECS's service events.
fn unplaced_reason(snapshot: &Snapshot, failures: &[(usize, Reason)]) -> String {
    let Some((i, reason)) = failures.first() else {
        return NO_INSTANCES.to_string();
    };
    let id = snapshot.id(*i);
    match reason {
        Reason::Resource(shortfall) => {
            let what = match shortfall.reason() {
                "RESOURCE:CPU" => "CPU units",
                "RESOURCE:MEMORY" => "memory",
                "RESOURCE:PORTS" | "RESOURCE:PORTS_UDP" => {
                    return format!(
                        "The closest matching (container-instance {id}) is already using a \
                         port required by your task."
                    )
                }
                other => other,
            };
            closest_instance_short_of(id, what)
        }
        Reason::Agent => {
            format!("The closest matching (container-instance {id}) has its agent disconnected.")
        }
        Reason::Attribute(_) => format!(
            "The closest matching (container-instance {id}) is missing an attribute required by \
             your task."
        ),
        other => format!(
            "The closest matching (container-instance {id}) encountered error \"{}\"",
            other.code()
        ),
    }
}
