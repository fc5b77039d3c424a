//! ECS services behind load balancers: the glue between the service controller and the
//! target groups, doing what ECS does on a service's behalf.
//!
//! - A task of a service with `loadBalancers` is registered in each of its target groups
//!   once it is RUNNING (and still wanted): an `instance` target, the container instance's id
//!   and the host port bound to the load balancer's `containerPort` of `containerName`
//!   (bridge mode; the container port itself in host mode). The target remembers the task
//!   that owns it.
//! - A task being stopped is first deregistered: whoever asks a registered task to stop sets
//!   it `DEACTIVATING` (see [`deactivate_first`]); its agent keeps it running while its targets
//!   drain for the target group's deregistration delay, then this glue moves it to `STOPPING`
//!   and the agent stops it (SIGTERM, as ECS does, once no new request can reach it).
//! - A target whose owning task is no longer RUNNING and wanted is deregistered (draining).
//! - The service controller reads the targets' health through [`annotate`]: a task behind load
//!   balancers is healthy for a deployment only once every target is healthy, and one whose
//!   target fails its health checks is replaced after the service's health check grace period.
//!
//! Which load balancers a task has is its deployment's: each deployment runs a service
//! revision, and the revision keeps the load balancers, so UpdateService adding or removing one
//! starts a deployment whose tasks are registered in the new set while the old tasks keep the
//! old one until they are replaced.
//!
//! The glue runs every second and whenever a task or service changes, so a task is
//! registered within a second of being RUNNING. Users' own registrations (no owner) are left
//! alone.

use super::health::HealthBoard;
use super::model::{write, Config, Room, Target};
use crate::app::App;
use crate::controllers::services::observe;
use crate::error::ApiError;
use crate::handlers::services::record_event;
use crate::state::TaskEntry;
use berth_core::arn::id_of;
use berth_core::model::service::{LoadBalancer, ServiceRevision};
use berth_core::model::task::Task;
use berth_core::service::facts::{Targets, TaskFact, UnhealthyTarget};
use berth_core::service::record::parse_history_arn;
use berth_core::service::ServiceRecord;
use berth_core::task_state::TaskStatus;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How often the glue looks when nothing changes (draining that ends, missed changes).
const EVERY: Duration = Duration::from_secs(1);

/// A target of a task: (target group ARN, target id, port), as the health board keys it.
pub type TaskTarget = (String, String, u16);

/// The load balancers of a service's tasks, by the deployment that started them.
#[derive(Debug, Default)]
pub struct ServiceLoadBalancers {
    by_deployment: HashMap<String, Vec<LoadBalancer>>,
    /// The service's own, for a task whose deployment is no longer known.
    current: Vec<LoadBalancer>,
}

impl ServiceLoadBalancers {
    /// The load balancers of `record`'s deployments, read from their service revisions.
    pub fn of(app: &App, record: &ServiceRecord) -> ServiceLoadBalancers {
        let current = record.service.load_balancers.clone().unwrap_or_default();
        // A task set's tasks (started by its id) are behind the set's own load balancers.
        let mut by_deployment: HashMap<String, Vec<LoadBalancer>> = record
            .service
            .task_sets
            .iter()
            .flatten()
            .filter_map(|s| Some((s.id.clone()?, s.load_balancers.clone().unwrap_or_default())))
            .collect();
        // One deployment runs the service's own revision: nothing to read (most services).
        if record.state.deployments.len() <= 1 {
            return ServiceLoadBalancers {
                by_deployment,
                current,
            };
        }
        for deployment in &record.state.deployments {
            let lbs = parse_history_arn(&deployment.service_revision_arn, "service-revision")
                .and_then(|(cluster, service, id)| {
                    app.get::<ServiceRevision>(&keys::service_revision(&cluster, &service, &id))
                        .ok()
                        .flatten()
                })
                .map(|revision| revision.value.load_balancers.unwrap_or_default())
                .unwrap_or_else(|| current.clone());
            by_deployment.insert(deployment.id.clone(), lbs);
        }
        ServiceLoadBalancers {
            by_deployment,
            current,
        }
    }

    /// Whether any task of the service is behind a load balancer.
    pub fn any(&self) -> bool {
        !self.current.is_empty() || self.by_deployment.values().any(|lbs| !lbs.is_empty())
    }

    /// The load balancers of `task`.
    pub fn of_task(&self, task: &Task) -> &[LoadBalancer] {
        task.started_by
            .as_deref()
            .and_then(|d| self.by_deployment.get(d))
            .unwrap_or(&self.current)
    }
}

/// The targets of `task` for `lbs` on the instance whose id is `instance_id`: the host port
/// bound to each load balancer's container port, IPv4 first (the container port itself when
/// the task has no binding for it, as in host mode).
pub fn targets_of(task: &Task, lbs: &[LoadBalancer], instance_id: &str) -> Vec<TaskTarget> {
    lbs.iter()
        .filter_map(|lb| {
            let group = lb.target_group_arn.clone()?;
            let port = lb.container_port?;
            let container = task
                .containers
                .iter()
                .flatten()
                .find(|c| c.name.is_some() && c.name == lb.container_name)?;
            // Docker may bind IPv4 and IPv6 on different host ports: ELB reaches IPv4.
            let host_port = container
                .network_bindings
                .iter()
                .flatten()
                .filter(|b| b.container_port == Some(port))
                .min_by_key(|b| b.bind_ip.as_deref().is_some_and(|ip| ip.contains(':')))
                .and_then(|b| b.host_port)
                .unwrap_or(port);
            Some((
                group,
                instance_id.to_string(),
                u16::try_from(host_port).ok()?,
            ))
        })
        .collect()
}

/// The id ELB knows the instance of `task` by (its `ec2InstanceId`), if it is stored.
fn instance_id_of(app: &App, cluster: &str, task: &Task) -> Option<String> {
    let id = id_of(
        task.container_instance_arn.as_deref()?,
        "container-instance",
    )?;
    app.snapshot()
        .instance(&keys::instance(cluster, &id))?
        .value
        .ec2_instance_id
        .clone()
}

/// Where the targets of `task` stand in `config`, as its health checks found them: target
/// groups no load balancer uses (ELB's `unused`) and health checks turned off do not hold
/// the task back.
fn target_state(config: &Config, board: &HealthBoard, targets: &[TaskTarget]) -> Targets {
    if targets.is_empty() {
        return Targets::Pending;
    }
    let mut all_healthy = true;
    for key @ (group_arn, id, port) in targets {
        let Some(group) = config.target_group(group_arn) else {
            continue;
        };
        if config.load_balancers_using(group_arn).is_empty() {
            continue;
        }
        let registered = group
            .targets
            .iter()
            .any(|t| t.id == *id && t.port == *port && t.draining_since.is_none());
        if !registered {
            all_healthy = false;
            continue;
        }
        match board.get(key) {
            Some(health) if health.state == "unhealthy" => {
                return Targets::Unhealthy(UnhealthyTarget {
                    target_group_arn: group_arn.clone(),
                    id: id.clone(),
                    port: *port,
                    reason: health
                        .description
                        .unwrap_or_else(|| "Health checks failed".into()),
                })
            }
            Some(health) if health.state == "healthy" || health.state == "unavailable" => {}
            _ => all_healthy = false,
        }
    }
    if all_healthy {
        Targets::Healthy
    } else {
        Targets::Pending
    }
}

/// Sets the load balancer state of the facts of `record`'s tasks (`tasks` by id), for the
/// service controller.
pub fn annotate(
    app: &App,
    cluster: &str,
    record: &ServiceRecord,
    tasks: &HashMap<String, Arc<TaskEntry>>,
    facts: &mut [TaskFact],
) -> Result<(), ApiError> {
    let lbs = ServiceLoadBalancers::of(app, record);
    if !lbs.any() {
        return Ok(());
    }
    let config = Config::read(app)?;
    for fact in facts.iter_mut() {
        let Some(entry) = tasks.get(&fact.id) else {
            continue;
        };
        let task_lbs = lbs.of_task(&entry.task);
        if task_lbs.is_empty() {
            continue;
        }
        let targets = instance_id_of(app, cluster, &entry.task)
            .map(|instance| targets_of(&entry.task, task_lbs, &instance))
            .unwrap_or_default();
        fact.targets = target_state(&config, &app.elb_health, &targets);
    }
    Ok(())
}

/// The tasks (by ARN) that own a registered target not yet deregistered.
pub fn registered_owners(app: &App) -> Result<HashSet<String>, ApiError> {
    Ok(Config::read(app)?
        .target_groups
        .iter()
        .flat_map(|g| g.targets.iter())
        .filter(|t| t.draining_since.is_none())
        .filter_map(|t| t.owner.clone())
        .collect())
}

/// After `task` was asked to stop: when it is RUNNING and registered in a target group
/// (`owners`, from [`registered_owners`]), it goes `DEACTIVATING` so its targets drain before
/// its agent stops it. Returns whether it did.
pub fn deactivate_first(task: &mut Task, owners: &HashSet<String>) -> bool {
    let registered = task
        .task_arn
        .as_deref()
        .is_some_and(|arn| owners.contains(arn));
    if registered && TaskStatus::of(task) == TaskStatus::Running {
        task.last_status = Some(TaskStatus::Deactivating);
        return true;
    }
    false
}

/// Everything one pass of the glue saw.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The targets that should be registered, with the ARN of the task that owns each.
    pub(super) wanted: BTreeMap<TaskTarget, String>,
    /// Every task of a service behind load balancers: ARN → (cluster, service).
    pub(super) services_of: HashMap<String, (String, String)>,
    /// Tasks DEACTIVATING: (cluster, task id, ARN).
    deactivating: Vec<(String, String, String)>,
}

fn look(app: &App) -> Result<Seen, ApiError> {
    let mut seen = Seen::default();
    for (cluster, record) in observe::active_services(app)? {
        let lbs = ServiceLoadBalancers::of(app, &record);
        if !lbs.any() {
            continue;
        }
        let name = record.name().to_string();
        for entry in observe::service_tasks(app, &cluster, &name)?.values() {
            let task = &entry.task;
            let arn = entry.arn().to_string();
            // Whatever its load balancers now, a task draining is let go once drained.
            if TaskStatus::of(task) == TaskStatus::Deactivating {
                seen.services_of
                    .insert(arn.clone(), (cluster.clone(), name.clone()));
                seen.deactivating
                    .push((cluster.clone(), entry.id().to_string(), arn));
                continue;
            }
            let task_lbs = lbs.of_task(task);
            if task_lbs.is_empty() {
                continue;
            }
            seen.services_of
                .insert(arn.clone(), (cluster.clone(), name.clone()));
            let wanted = task.desired_status != Some(TaskStatus::Stopped);
            if TaskStatus::of(task) == TaskStatus::Running && wanted {
                let Some(instance) = instance_id_of(app, &cluster, task) else {
                    continue;
                };
                for target in targets_of(task, task_lbs, &instance) {
                    seen.wanted.insert(target, arn.clone());
                }
            }
        }
    }
    Ok(seen)
}

/// What one pass changes in the target groups: per (cluster, service, target group),
/// how many targets it registered and deregistered.
pub(super) type Changes = BTreeMap<(String, String, String), (usize, usize)>;

fn add(to: &mut Changes, more: Changes) {
    for (key, (registered, deregistered)) in more {
        let entry = to.entry(key).or_default();
        entry.0 += registered;
        entry.1 += deregistered;
    }
}

/// Registers the wanted targets and deregisters those whose task no longer wants them, in
/// ELBv2 writes of what one transaction takes (none when nothing changes).
pub(super) async fn sync_targets(app: &App, seen: &Seen, now: f64) -> Result<Changes, ApiError> {
    let room = Room::of(app);
    // The next write's transaction and the changes it makes, and whether groups were left.
    let plan = |config: &Config| -> (Txn, Changes, bool) {
        let mut txn = Txn::new();
        let mut changes = Changes::new();
        let mut room = room;
        for group in &config.target_groups {
            let mut targets = group.targets.clone();
            let mut changed = false;
            let mut counted = Changes::new();
            let mut count = |owner: &str, registered: bool| {
                if let Some((cluster, service)) = seen.services_of.get(owner) {
                    let entry = counted
                        .entry((cluster.clone(), service.clone(), group.arn.clone()))
                        .or_default();
                    if registered {
                        entry.0 += 1;
                    } else {
                        entry.1 += 1;
                    }
                }
            };
            // Deregister: owned targets whose task no longer wants them.
            for target in targets.iter_mut() {
                let key = (group.arn.clone(), target.id.clone(), target.port);
                let Some(owner) = target.owner.clone() else {
                    continue;
                };
                if target.draining_since.is_none() && !seen.wanted.contains_key(&key) {
                    target.draining_since = Some(now);
                    changed = true;
                    count(&owner, false);
                }
            }
            // Register: wanted targets not registered (or draining).
            for ((group_arn, id, port), owner) in
                seen.wanted.range((group.arn.clone(), String::new(), 0)..)
            {
                if *group_arn != group.arn {
                    break;
                }
                match targets.iter_mut().find(|t| t.id == *id && t.port == *port) {
                    Some(t) if t.draining_since.is_none() && t.owner.as_ref() == Some(owner) => {}
                    Some(t) => {
                        let fresh = t.draining_since.is_some();
                        t.draining_since = None;
                        t.owner = Some(owner.clone());
                        changed = true;
                        if fresh {
                            count(owner, true);
                        }
                    }
                    None => {
                        targets.push(Target {
                            id: id.clone(),
                            port: *port,
                            availability_zone: None,
                            draining_since: None,
                            owner: Some(owner.clone()),
                        });
                        changed = true;
                        count(owner, true);
                    }
                }
            }
            if changed {
                let group = super::model::TargetGroup {
                    targets,
                    ..group.clone()
                };
                let record = encode(&group);
                if !room.take(group.key().len() + record.len(), txn.ops.is_empty()) {
                    return (txn, changes, true);
                }
                txn = txn.put(group.key(), record);
                add(&mut changes, counted);
            }
        }
        (txn, changes, false)
    };
    let mut all = Changes::new();
    loop {
        // Look before writing: most passes change nothing and take no write.
        let (txn, _, _) = plan(&Config::read(app)?);
        if txn.ops.is_empty() {
            return Ok(all);
        }
        let (changes, more) = write(app, |config| {
            let (txn, changes, more) = plan(config);
            Ok((txn, (changes, more)))
        })
        .await?;
        add(&mut all, changes);
        if !more {
            return Ok(all);
        }
    }
}

/// Moves the DEACTIVATING tasks whose targets have all drained on to STOPPING, so their
/// agents stop them.
async fn finish_deactivation(app: &App, seen: &Seen) -> Result<(), ApiError> {
    if seen.deactivating.is_empty() {
        return Ok(());
    }
    let owners: HashSet<String> = Config::read(app)?
        .target_groups
        .iter()
        .flat_map(|g| g.targets.iter())
        .filter_map(|t| t.owner.clone())
        .collect();
    for (cluster, id, arn) in &seen.deactivating {
        if owners.contains(arn) {
            continue;
        }
        let key = keys::task(cluster, id);
        let Some(stored) = app.get::<Task>(&key)? else {
            continue;
        };
        if TaskStatus::of(&stored.value) != TaskStatus::Deactivating {
            continue;
        }
        let mut task = stored.value.clone();
        task.last_status = Some(TaskStatus::Stopping);
        let txn = Txn::new()
            .when(Compare::at(&key, stored.mod_revision))
            .put(&key, encode(&task));
        // A lost race (the agent reported meanwhile) is looked at again next pass.
        app.commit(txn).await?;
    }
    Ok(())
}

/// One pass: registrations, deregistrations, and deactivations that are over.
pub async fn pass(app: &App, now: f64) -> Result<(), ApiError> {
    let seen = look(app)?;
    let changes = sync_targets(app, &seen, now).await?;
    for ((cluster, service, group), (registered, deregistered)) in changes {
        if registered > 0 {
            let message = format!(
                "(service {service}) registered {registered} targets in (target-group {group})"
            );
            record_event(app, &cluster, &service, message).await;
        }
        if deregistered > 0 {
            let message = format!(
                "(service {service}) deregistered {deregistered} targets in (target-group {group})"
            );
            record_event(app, &cluster, &service, message).await;
        }
    }
    finish_deactivation(app, &seen).await
}

/// Runs the glue for as long as the app lives: a pass whenever a service or a task changes
/// and every [`EVERY`].
pub fn spawn(app: Arc<App>) {
    crate::controllers::on_changes(app, EVERY, |app| async move {
        let now = crate::cloudwatch::store::now_ms() as f64 / 1000.0;
        if let Err(e) = pass(&app, now).await {
            tracing::warn!(error = %e.message, "load balancer registrations of services");
        }
    });
}

#[cfg(test)]
mod tests;
