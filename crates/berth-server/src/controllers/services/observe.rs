//! What the service controller reads from the state cache before it reconciles a service: the
//! service's tasks (with their store revisions, to stop them safely), their facts, and the
//! facts of the cluster's container instances.

use crate::app::App;
use crate::error::ApiError;
use crate::handlers::tasks::placement::{instances_of, scheduler_snapshot};
use crate::state::{scoped, TaskEntry};
use berth_core::arn::id_of;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::{PlacementConstraint, Task};
use berth_core::model::task_definition::{TaskDefinition, TaskDefinitionRecord};
use berth_core::model::ServiceStatus;
use berth_core::scheduler::{parse_constraints, Constraint};
use berth_core::service::facts::{InstanceFact, TaskFact};
use berth_core::service::ServiceRecord;
use berth_store::keys;
use berth_store::typed::Versioned;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The name of the cluster a service record belongs to.
pub fn cluster_of(record: &ServiceRecord) -> Option<String> {
    let arn = record.service.cluster_arn.as_deref()?;
    berth_core::arn::cluster_name_of(arn)
}

/// Every service that is not INACTIVE, with the name of its cluster.
pub fn active_services(app: &App) -> Result<Vec<(String, ServiceRecord)>, ApiError> {
    Ok(app
        .list::<ServiceRecord>(keys::SERVICES)?
        .into_iter()
        .filter(|stored| stored.value.service.status != Some(ServiceStatus::Inactive))
        .filter_map(|stored| Some((cluster_of(&stored.value)?, stored.value)))
        .collect())
}

/// The tasks of service `name` in `cluster` (group `service:{name}`, started by one of its
/// deployments: a RunTask that merely names the group is not the service's), STOPPED ones
/// included, keyed by task id.
pub fn service_tasks(
    app: &App,
    cluster: &str,
    name: &str,
) -> Result<HashMap<String, Arc<TaskEntry>>, ApiError> {
    Ok(app
        .snapshot()
        .service_tasks(&scoped(cluster, name), None)
        .map(|t| (t.id().to_string(), Arc::clone(t)))
        .collect())
}

/// Whether a task was started by a service deployment (`startedBy` = `ecs-svc/...`).
pub fn is_service_task(task: &Task) -> bool {
    task.started_by
        .as_deref()
        .is_some_and(|s| s.starts_with("ecs-svc/"))
}

/// The task definition an ARN names, if it is stored.
pub fn task_definition(app: &App, arn: &str) -> Result<Option<TaskDefinitionRecord>, ApiError> {
    Ok(app
        .snapshot()
        .definition(arn)
        .map(|record| (**record).clone()))
}

/// Whether any essential container of `td` has a health check (its tasks are healthy only
/// once HEALTHY).
pub fn has_health_checks(td: &TaskDefinition) -> bool {
    td.container_definitions
        .iter()
        .flatten()
        .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
}

/// The facts of the service's tasks.
pub fn task_facts(
    app: &App,
    tasks: &HashMap<String, Arc<TaskEntry>>,
) -> Result<Vec<TaskFact>, ApiError> {
    let mut checks: HashMap<String, bool> = HashMap::new();
    let mut facts = Vec::with_capacity(tasks.len());
    for task in tasks.values() {
        let arn = task.task.task_definition_arn.clone().unwrap_or_default();
        let checked = match checks.get(&arn) {
            Some(c) => *c,
            None => {
                let c = task_definition(app, &arn)?
                    .is_some_and(|r| has_health_checks(&r.task_definition));
                checks.insert(arn, c);
                c
            }
        };
        facts.push(TaskFact::of(&task.task, checked));
    }
    facts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(facts)
}

/// The facts of the instances `ids` of `cluster` that are stored (each once), without
/// placement eligibility, which only DAEMON services read.
pub fn facts_of_instances<'a>(
    app: &App,
    cluster: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Vec<InstanceFact> {
    let state = app.snapshot();
    ids.collect::<BTreeSet<&str>>()
        .into_iter()
        .filter_map(|id| state.instance(&keys::instance(cluster, id)))
        .map(|stored| InstanceFact::of(&stored.value, true))
        .collect()
}

/// The facts of the cluster's instances for a service with `constraints` running `td`:
/// eligible (for DAEMON) means ACTIVE, agent connected and every memberOf constraint met.
pub fn instance_facts(
    app: &App,
    cluster: &str,
    constraints: &[PlacementConstraint],
    td: &TaskDefinition,
) -> Result<Vec<InstanceFact>, ApiError> {
    let state = app.snapshot();
    let instances = instances_of(&state, cluster);
    let stored: Vec<&Arc<Versioned<ContainerInstance>>> = instances.values().collect();
    let snapshot = scheduler_snapshot(&state, &instances);
    let parsed = parse_constraints(
        constraints,
        td.placement_constraints.as_deref().unwrap_or_default(),
    )
    .unwrap_or_default();
    Ok(stored
        .iter()
        .map(|v| {
            let id = v
                .value
                .container_instance_arn
                .as_deref()
                .and_then(|a| id_of(a, "container-instance"))
                .unwrap_or_default();
            let meets = snapshot.index_of(&id).is_some_and(|i| {
                parsed.iter().all(|c| match c {
                    Constraint::MemberOf(expr) => expr.matches(&snapshot.subjects(i)),
                    Constraint::DistinctInstance => true,
                })
            });
            InstanceFact::of(&v.value, meets)
        })
        .collect())
}
