//! What the service controller reads from the view before it reconciles a service: the
//! service's tasks (with their store revisions, to stop them safely), their facts, and the
//! facts of the cluster's container instances.

use crate::app::App;
use crate::error::ApiError;
use berth_core::arn::id_of;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::{PlacementConstraint, Task};
use berth_core::model::task_definition::{TaskDefinition, TaskDefinitionRecord};
use berth_core::scheduler::{parse_constraints, Constraint, Snapshot};
use berth_core::service::facts::{InstanceFact, TaskFact};
use berth_store::keys;
use berth_store::typed::Versioned;
use std::collections::HashMap;

/// The tasks of service `name` in `cluster` (group `service:{name}`, started by one of its
/// deployments: a RunTask that merely names the group is not the service's), STOPPED ones
/// included, keyed by task id.
pub fn service_tasks(
    app: &App,
    cluster: &str,
    name: &str,
) -> Result<HashMap<String, Versioned<Task>>, ApiError> {
    let group = format!("service:{name}");
    Ok(app
        .list::<Task>(&keys::tasks_of(cluster))?
        .into_iter()
        .filter(|t| t.value.group.as_deref() == Some(group.as_str()))
        .filter(|t| is_service_task(&t.value))
        .filter_map(|t| {
            let id = t.value.task_arn.as_deref().and_then(|a| id_of(a, "task"))?;
            Some((id, t))
        })
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
    let Some((family, revision)) = arn.rsplit('/').next().and_then(|s| s.rsplit_once(':')) else {
        return Ok(None);
    };
    let Ok(revision) = revision.parse::<u32>() else {
        return Ok(None);
    };
    Ok(app
        .get::<TaskDefinitionRecord>(&keys::task_definition(family, revision))?
        .map(|v| v.value))
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
    tasks: &HashMap<String, Versioned<Task>>,
) -> Result<Vec<TaskFact>, ApiError> {
    let mut checks: HashMap<String, bool> = HashMap::new();
    let mut facts = Vec::with_capacity(tasks.len());
    for task in tasks.values() {
        let arn = task.value.task_definition_arn.clone().unwrap_or_default();
        let checked = match checks.get(&arn) {
            Some(c) => *c,
            None => {
                let c = task_definition(app, &arn)?
                    .is_some_and(|r| has_health_checks(&r.task_definition));
                checks.insert(arn, c);
                c
            }
        };
        facts.push(TaskFact::of(&task.value, checked));
    }
    facts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(facts)
}

/// The container instances of `cluster` (INACTIVE ones included, so their tasks read as lost).
pub fn instances(app: &App, cluster: &str) -> Result<Vec<Versioned<ContainerInstance>>, ApiError> {
    app.list::<ContainerInstance>(&keys::instances_of(cluster))
}

/// The facts of the cluster's instances for a service with `constraints` running `td`:
/// eligible (for DAEMON) means ACTIVE, agent connected and every memberOf constraint met.
pub fn instance_facts(
    app: &App,
    cluster: &str,
    constraints: &[PlacementConstraint],
    td: &TaskDefinition,
) -> Result<Vec<InstanceFact>, ApiError> {
    let stored = instances(app, cluster)?;
    let tasks: Vec<Task> = app
        .list::<Task>(&keys::tasks_of(cluster))?
        .into_iter()
        .map(|t| t.value)
        .collect();
    let snapshot = Snapshot::from_model(stored.iter().map(|v| &v.value), tasks.iter());
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
