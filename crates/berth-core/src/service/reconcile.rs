//! One reconcile of a service, as a pure function: from the stored service and what is
//! observed of its tasks and the cluster's instances, decide which tasks stop and how many
//! start, and update the service (failure counts, backoff, deployments, events). The caller
//! places the launches, records them with [`record_started`] / [`record_unplaced`], and commits
//! everything in one transaction; running it again on the same observations decides nothing
//! new, so a restarted controller continues where it was.

use super::backoff::REPORT_AFTER;
use super::bounds::Bounds;
use super::daemon::{self, DaemonSlot};
use super::events;
use super::facts::{InstanceFact, InstanceState, Targets, TaskFact};
use super::lifecycle::{complete_primary, count_failure, remove_deployment, HistoryUpdate};
use super::record::{IdSource, ServiceRecord};
use super::replica::{self, Phase, Slot, StopWhy};
use super::task_sets;
use crate::model::status::{DeploymentRolloutState, DeploymentStatus, HealthStatus, ServiceStatus};
use std::collections::{HashMap, HashSet};

/// How long a condition that holds (no room, backoff) waits before its event repeats.
pub const EVENT_REPEAT_SECONDS: f64 = 60.0;

/// What the controller observed for one service.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Every task of the service (group `service:NAME`), STOPPED ones included.
    pub tasks: &'a [TaskFact],
    /// Every container instance of the cluster.
    pub instances: &'a [InstanceFact],
    /// Now, in epoch seconds.
    pub now: f64,
}

/// A task the scheduler stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOrder {
    pub task_id: String,
    /// Its stoppedReason.
    pub reason: String,
}

/// What to launch for the PRIMARY deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Launch {
    /// Nothing.
    #[default]
    None,
    /// This many REPLICA tasks, wherever the scheduler places them.
    Replicas(u32),
    /// One DAEMON task on each of these instances.
    OnInstances(Vec<String>),
}

/// The decisions of one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub stops: Vec<StopOrder>,
    pub launch: Launch,
    /// The PRIMARY deployment launches belong to, and its task definition.
    pub deployment_id: Option<String>,
    pub task_definition: Option<String>,
    /// Changes to the service deployment history.
    pub history: Vec<HistoryUpdate>,
    /// Protected tasks it would have stopped to scale in or to replace them, and kept.
    pub held: Vec<String>,
    /// When the first of those tasks' protection ends (epoch seconds): the caller reconciles
    /// again then, so the held stop happens on time.
    pub wake_at: Option<f64>,
    /// For a service that runs task sets: how many tasks each set starts, `(task set id,
    /// count)` (`launch` stays `None`).
    pub task_set_launches: Vec<(String, u32)>,
}

/// Reconciles `record` with what was observed. See the module documentation.
pub fn reconcile(record: &mut ServiceRecord, seen: &Observed<'_>, ids: &mut dyn IdSource) -> Plan {
    let mut plan = Plan::default();
    let status = record.service.status;
    if status == Some(ServiceStatus::Inactive) {
        return plan;
    }
    account_stopped(record, seen, ids, &mut plan);
    let name = record.name().to_string();
    let now = seen.now;
    let instances: HashMap<&str, &InstanceFact> =
        seen.instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let primary_id = record.primary().and_then(|p| p.id.clone());
    let grace = f64::from(
        record
            .service
            .health_check_grace_period_seconds
            .unwrap_or(0)
            .max(0),
    );
    let draining_service = status == Some(ServiceStatus::Draining);

    // Sort the live tasks into places (slots); stop the lost, the unhealthy and, when the
    // service is being deleted, all of them.
    let mut slots: Vec<(Slot, String)> = Vec::new();
    let mut stopped_ids: Vec<String> = Vec::new();
    let mut lost_ids: HashSet<&str> = HashSet::new();
    for task in seen.tasks.iter().filter(|t| t.is_live()) {
        let instance = task
            .instance_id
            .as_deref()
            .and_then(|id| instances.get(id))
            .copied();
        let lost = instance.is_none_or(|i| i.state == InstanceState::Lost);
        if lost || draining_service {
            if task.is_wanted() {
                let reason = if lost {
                    events::REASON_INSTANCE_LOST
                } else {
                    events::REASON_SERVICE_DELETED
                };
                plan.stops.push(StopOrder {
                    task_id: task.id.clone(),
                    reason: reason.into(),
                });
                stopped_ids.push(task.id.clone());
            }
            if lost {
                // A lost instance never reports its tasks STOPPED: they hold no place.
                lost_ids.insert(task.id.as_str());
                continue;
            }
        }
        let mut phase = if !task.is_wanted() {
            Phase::Stopping
        } else if task.is_healthy() {
            Phase::Healthy
        } else {
            Phase::Starting
        };
        if phase != Phase::Stopping
            && task.is_unhealthy()
            && task.started_at.is_some_and(|at| now - at >= grace)
        {
            // A failing target group reads as ECS writes it; otherwise a container's checks.
            let reason = match &task.targets {
                Targets::Unhealthy(target) if task.health != HealthStatus::Unhealthy => {
                    record.push_event(ids, events::unhealthy_target(&name, target), now);
                    events::failed_elb_health_checks(&target.target_group_arn)
                }
                _ => {
                    record.push_event(ids, events::failed_health_checks(&name, &task.id), now);
                    events::REASON_FAILED_HEALTH_CHECKS.into()
                }
            };
            plan.stops.push(StopOrder {
                task_id: task.id.clone(),
                reason,
            });
            stopped_ids.push(task.id.clone());
            phase = Phase::Stopping;
        }
        if draining_service {
            phase = Phase::Stopping;
        }
        let slot = Slot {
            id: task.id.clone(),
            primary: primary_id.is_some() && task.deployment_id == primary_id,
            phase,
            draining: instance.is_some_and(|i| i.state == InstanceState::Draining),
            protected: task.is_protected(now),
        };
        let instance_id = task.instance_id.clone().unwrap_or_default();
        slots.push((slot, instance_id));
    }

    if draining_service {
        log_stops(record, ids, stopped_ids, now);
        if slots.is_empty() && plan.stops.is_empty() {
            record.service.status = Some(ServiceStatus::Inactive);
            record.service.desired_count = Some(0);
            for d in record.service.deployments.iter_mut().flatten() {
                d.desired_count = Some(0);
            }
        }
        return plan;
    }

    if record.runs_task_sets() {
        let only: Vec<Slot> = slots.iter().map(|(s, _)| s.clone()).collect();
        let step = task_sets::step(record, &only, seen.tasks, now);
        for stop in step.stops {
            stopped_ids.push(stop.task_id.clone());
            plan.stops.push(StopOrder {
                task_id: stop.task_id,
                reason: stop.reason,
            });
        }
        log_stops(record, ids, stopped_ids, now);
        plan.held = step.held;
        note_held(record, seen, ids, &mut plan);
        if !step.launches.is_empty() {
            if record.state.backoff.may_launch(now) {
                plan.task_set_launches = step.launches;
            } else if record.state.backoff.failures >= REPORT_AFTER {
                record.push_event_throttled(
                    ids,
                    events::unable_to_start(&name),
                    now,
                    EVENT_REPEAT_SECONDS,
                );
            }
        }
        let steady = step.steady && plan.stops.is_empty() && plan.task_set_launches.is_empty();
        mark_steady(record, ids, steady, now);
        return plan;
    }

    // The step of the scheduling strategy.
    let daemon = record.is_daemon();
    let (desired, mut step_stops, launch) = if daemon {
        let daemon_slots: Vec<DaemonSlot> = slots
            .iter()
            .map(|(s, on)| DaemonSlot {
                id: s.id.clone(),
                primary: s.primary,
                phase: s.phase,
                instance_id: on.clone(),
            })
            .collect();
        let mut step = daemon::step(seen.instances, &daemon_slots);
        record.service.desired_count = Some(i32::try_from(step.desired).unwrap_or(i32::MAX));
        // A protected task is not replaced either: its instance gets the PRIMARY's task once
        // the protection ends.
        let protected: HashSet<&str> = slots
            .iter()
            .filter(|(s, _)| s.protected)
            .map(|(s, _)| s.id.as_str())
            .collect();
        step.stop.retain(|(id, why)| {
            let hold = protected.contains(id.as_str()) && *why != StopWhy::Draining;
            if hold {
                plan.held.push(id.clone());
            }
            !hold
        });
        (step.desired, step.stop, Launch::OnInstances(step.start_on))
    } else {
        let desired = u32::try_from(record.service.desired_count.unwrap_or(0).max(0)).unwrap_or(0);
        let bounds = Bounds::of(
            desired,
            record.service.deployment_configuration.as_ref(),
            false,
        );
        let only: Vec<Slot> = slots.iter().map(|(s, _)| s.clone()).collect();
        let step = replica::step(desired, bounds, &only);
        plan.held = step.held;
        (desired, step.stop, Launch::Replicas(step.start))
    };
    let launch_wanted = !matches!(&launch, Launch::Replicas(0))
        && !matches!(&launch, Launch::OnInstances(list) if list.is_empty());

    // Launch only for a PRIMARY that has not failed, and not faster than the backoff allows.
    let primary_failed = record
        .primary()
        .is_some_and(|p| p.rollout_state == Some(DeploymentRolloutState::Failed));
    if launch_wanted && primary_id.is_some() && !primary_failed {
        if record.state.backoff.may_launch(now) {
            plan.launch = launch;
            plan.deployment_id = primary_id.clone();
            plan.task_definition = record.primary().and_then(|p| p.task_definition.clone());
        } else if record.state.backoff.failures >= REPORT_AFTER {
            record.push_event_throttled(
                ids,
                events::unable_to_start(&name),
                now,
                EVENT_REPEAT_SECONDS,
            );
        }
    }

    note_held(record, seen, ids, &mut plan);

    let primary_label = primary_id.clone().unwrap_or_default();
    // Scale-in, replacement and draining stops all read as scaling by the PRIMARY, as in ECS.
    for (id, _why) in step_stops.drain(..) {
        plan.stops.push(StopOrder {
            task_id: id.clone(),
            reason: events::scaling_reason(&primary_label),
        });
        stopped_ids.push(id);
    }
    log_stops(record, ids, stopped_ids, now);

    // Deployments: counts of the older ones shrink as their tasks go; a drained one is removed.
    let stopping: HashSet<&str> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
    let mut wanted_by: HashMap<String, i32> = HashMap::new();
    let mut live_by: HashSet<String> = HashSet::new();
    for task in seen
        .tasks
        .iter()
        .filter(|t| t.is_live() && !lost_ids.contains(t.id.as_str()))
    {
        let Some(d) = task.deployment_id.clone() else {
            continue;
        };
        live_by.insert(d.clone());
        if task.is_wanted() && !stopping.contains(task.id.as_str()) {
            *wanted_by.entry(d).or_default() += 1;
        }
    }
    let mut drained = Vec::new();
    for d in record.service.deployments.iter_mut().flatten() {
        let id = d.id.clone().unwrap_or_default();
        if d.status == Some(DeploymentStatus::Primary) {
            set_if_changed(
                &mut d.desired_count,
                i32::try_from(desired).unwrap_or(i32::MAX),
                &mut d.updated_at,
                now,
            );
        } else if !live_by.contains(&id) {
            drained.push(id);
        } else {
            let wanted = wanted_by.get(&id).copied().unwrap_or(0);
            set_if_changed(&mut d.desired_count, wanted, &mut d.updated_at, now);
        }
    }
    for id in drained {
        remove_deployment(record, &id);
    }

    // Steady state: only the PRIMARY left, with exactly its desired count of healthy tasks.
    let steady = record.deployments().len() == 1
        && plan.stops.is_empty()
        && plan.launch == Launch::None
        && slots.len() == desired as usize
        && slots
            .iter()
            .all(|(s, _)| s.primary && s.phase == Phase::Healthy && !s.draining);
    if steady {
        plan.history.extend(complete_primary(record, ids, now));
    }
    mark_steady(record, ids, steady, now);
    plan
}

/// Says once in a while that protected tasks were kept, and when to look at them again.
fn note_held(
    record: &mut ServiceRecord,
    seen: &Observed<'_>,
    ids: &mut dyn IdSource,
    plan: &mut Plan,
) {
    if plan.held.is_empty() {
        return;
    }
    let name = record.name().to_string();
    record.push_event_throttled(
        ids,
        events::unable_to_scale_in(&name, plan.held.len()),
        seen.now,
        EVENT_REPEAT_SECONDS,
    );
    plan.wake_at = seen
        .tasks
        .iter()
        .filter(|t| plan.held.contains(&t.id))
        .filter_map(|t| t.protection_expires_at)
        .min_by(f64::total_cmp);
}

/// Logs the steady state once when the service reaches it; forgets it when it leaves it.
fn mark_steady(record: &mut ServiceRecord, ids: &mut dyn IdSource, steady: bool, now: f64) {
    if !steady {
        record.state.steady = false;
        record.state.steady_since = None;
        return;
    }
    if !record.state.steady {
        let name = record.name().to_string();
        record.push_event(ids, events::steady_state(&name), now);
        record.state.steady = true;
        record.state.steady_since = Some(now);
    }
    let since = record.state.steady_since.unwrap_or(now);
    if record.state.backoff.failures > 0 && now - since >= super::backoff::STABLE_AFTER {
        record.state.backoff.reset();
    }
}

fn set_if_changed(field: &mut Option<i32>, value: i32, updated_at: &mut Option<f64>, now: f64) {
    if *field != Some(value) {
        *field = Some(value);
        *updated_at = Some(now);
    }
}

/// Logs the stops of this reconcile as one event.
fn log_stops(record: &mut ServiceRecord, ids: &mut dyn IdSource, stopped: Vec<String>, now: f64) {
    if !stopped.is_empty() {
        let name = record.name().to_string();
        record.push_event(ids, events::stopped_tasks(&name, &stopped), now);
    }
}

/// Accounts for tasks that reached STOPPED since the last reconcile: failures count towards
/// their deployment's failedTasks (and the circuit breaker) and the backoff. Ids of tasks no
/// longer stored are forgotten.
fn account_stopped(
    record: &mut ServiceRecord,
    seen: &Observed<'_>,
    ids: &mut dyn IdSource,
    plan: &mut Plan,
) {
    let present: HashSet<&str> = seen.tasks.iter().map(|t| t.id.as_str()).collect();
    record
        .state
        .accounted
        .retain(|id| present.contains(id.as_str()));
    let mut newly: Vec<&TaskFact> = seen
        .tasks
        .iter()
        .filter(|t| !t.is_live())
        .filter(|t| !record.state.accounted.contains(&t.id))
        .collect();
    newly.sort_by(|a, b| {
        a.stopped_at
            .unwrap_or(0.0)
            .total_cmp(&b.stopped_at.unwrap_or(0.0))
            .then_with(|| a.id.cmp(&b.id))
    });
    for task in newly {
        record.state.accounted.push(task.id.clone());
        if !task.has_failed() {
            continue;
        }
        record
            .state
            .backoff
            .record_failure(task.ran_for(), seen.now);
        if let Some(deployment) = task.deployment_id.as_deref() {
            plan.history
                .extend(count_failure(record, deployment, ids, seen.now));
        }
    }
}

/// Records the tasks the caller launched for the plan: `(service NAME) has started N tasks`.
pub fn record_started(
    record: &mut ServiceRecord,
    ids: &mut dyn IdSource,
    task_ids: &[String],
    now: f64,
) {
    if !task_ids.is_empty() {
        let name = record.name().to_string();
        record.push_event(ids, events::started_tasks(&name, task_ids), now);
        record.state.steady = false;
        record.state.steady_since = None;
    }
}

/// Records that a task could not be placed, with the closest reason; repeated at most once a
/// minute.
pub fn record_unplaced(record: &mut ServiceRecord, ids: &mut dyn IdSource, reason: &str, now: f64) {
    let name = record.name().to_string();
    record.push_event_throttled(
        ids,
        events::unable_to_place(&name, reason),
        now,
        EVENT_REPEAT_SECONDS,
    );
}

#[cfg(test)]
mod tests;
