//! Task sets as pure logic: the scale arithmetic (computedDesiredCount), the task-set step of a
//! service whose deployments an external controller runs (EXTERNAL or CODE_DEPLOY), and each
//! set's stability. A task set is scheduled like a deployment whose desired count comes from
//! its scale: its tasks are started by its id, replaced when they stop, and drained when it is
//! scaled down or deleted.

use super::bounds::Bounds;
use super::events;
use super::facts::TaskFact;
use super::record::ServiceRecord;
use super::replica::{self, Phase, Slot};
use crate::model::service::{Scale, TaskSet};
use std::collections::{HashMap, HashSet};

/// The one unit of a scale.
pub const PERCENT: &str = "PERCENT";
/// Status of the task set that serves production traffic.
pub const PRIMARY: &str = "PRIMARY";
/// Status of a task set that does not (yet, or any more) serve production traffic.
pub const ACTIVE: &str = "ACTIVE";
/// Status of a deleted task set whose tasks are being stopped.
pub const DRAINING: &str = "DRAINING";
/// Stability of a task set running exactly its computed desired count, all healthy.
pub const STEADY_STATE: &str = "STEADY_STATE";
/// Stability of a task set still starting or stopping tasks.
pub const STABILIZING: &str = "STABILIZING";

/// The deployment controllers whose services run task sets instead of deployments.
pub fn runs_task_sets(controller: Option<&str>) -> bool {
    matches!(controller, Some("EXTERNAL" | "CODE_DEPLOY"))
}

/// The scale a request gives, checked as ECS checks it: a value from 0 to 100, unit
/// PERCENT. A task set created without one runs at 0% (as ECS shows it) until UpdateTaskSet.
pub fn check_scale(scale: Option<&Scale>) -> Result<Scale, String> {
    let Some(scale) = scale else {
        return Ok(Scale {
            value: Some(0.0),
            unit: Some(PERCENT.into()),
        });
    };
    match scale.unit.as_deref() {
        None | Some(PERCENT) => {}
        Some(other) => return Err(format!("'{other}' is not a scale unit: use PERCENT.")),
    }
    let value = scale.value.unwrap_or(0.0);
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return Err(format!(
            "The scale value must be between 0 and 100 (a percentage of the service's desired \
             count), got {value}."
        ));
    }
    Ok(Scale {
        value: Some(value),
        unit: Some(PERCENT.into()),
    })
}

/// `desired × scale% / 100`, always rounded up (1.2 tasks are 2), as ECS computes it. A
/// product that is whole but for floating-point noise (10 × 30%) is not rounded up.
pub fn computed_desired_count(desired: i32, scale: &Scale) -> i32 {
    let exact = f64::from(desired.max(0)) * scale.value.unwrap_or(0.0) / 100.0;
    let rounded = (exact - 1e-9).ceil().clamp(0.0, f64::from(desired.max(0)));
    // Whole and within 0..=desired, so the cast loses nothing.
    rounded as i32
}

/// After a change to a service's task sets or desired count: their counts recomputed, and the
/// service no longer steady.
pub fn changed(record: &mut ServiceRecord, now: f64) {
    recompute(record, now);
    record.state.steady = false;
    record.state.steady_since = None;
}

/// Recomputes every task set's computedDesiredCount from the service's desiredCount (DRAINING
/// sets want none); a set whose count changes is STABILIZING again.
pub fn recompute(record: &mut ServiceRecord, now: f64) {
    let desired = record.service.desired_count.unwrap_or(0);
    for set in record.service.task_sets.iter_mut().flatten() {
        let count = if set.status.as_deref() == Some(DRAINING) {
            0
        } else {
            computed_desired_count(desired, set.scale.as_ref().unwrap_or(&Scale::default()))
        };
        if set.computed_desired_count != Some(count) {
            set.computed_desired_count = Some(count);
            set.updated_at = Some(now);
            set_stability(set, false, now);
        }
    }
}

/// Marks `set` STEADY_STATE or STABILIZING; `stabilityStatusAt` moves only on a change.
pub fn set_stability(set: &mut TaskSet, steady: bool, now: f64) {
    let status = if steady { STEADY_STATE } else { STABILIZING };
    if set.stability_status.as_deref() != Some(status) {
        set.stability_status = Some(status.into());
        set.stability_status_at = Some(now);
    }
}

/// A task the step stops, and why (its stoppedReason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetStop {
    pub task_id: String,
    pub reason: String,
}

/// What the task-set step decides for a service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetStep {
    /// Tasks to stop.
    pub stops: Vec<SetStop>,
    /// Tasks each set starts: `(task set id, count)`.
    pub launches: Vec<(String, u32)>,
    /// Protected tasks it would have stopped to scale in, and kept.
    pub held: Vec<String>,
    /// Whether every set runs exactly its computed count, all healthy, and nothing drains.
    pub steady: bool,
}

/// One step of every task set of `record` towards its computedDesiredCount. `slots` are the
/// service's live tasks that still hold a place (not on lost instances), `tasks` everything
/// observed of them (for the set each belongs to). Updates each set's stability and removes
/// DRAINING sets with no task left.
pub fn step(record: &mut ServiceRecord, slots: &[Slot], tasks: &[TaskFact], now: f64) -> SetStep {
    let mut out = SetStep {
        steady: true,
        ..SetStep::default()
    };
    let set_of: HashMap<&str, &str> = tasks
        .iter()
        .filter_map(|t| Some((t.id.as_str(), t.deployment_id.as_deref()?)))
        .collect();
    let config = record.service.deployment_configuration.clone();
    let sets = record.service.task_sets.get_or_insert_with(Vec::new);
    let known: HashSet<String> = sets.iter().filter_map(|s| s.id.clone()).collect();
    let mut drained = Vec::new();
    for set in sets.iter_mut() {
        let id = set.id.clone().unwrap_or_default();
        let mine: Vec<Slot> = slots
            .iter()
            .filter(|s| set_of.get(s.id.as_str()) == Some(&id.as_str()))
            .map(|s| Slot {
                primary: true,
                ..s.clone()
            })
            .collect();
        if set.status.as_deref() == Some(DRAINING) {
            out.steady = false;
            if mine.is_empty() {
                drained.push(id);
                continue;
            }
            for slot in mine.iter().filter(|s| s.phase != Phase::Stopping) {
                out.stops.push(SetStop {
                    task_id: slot.id.clone(),
                    reason: events::scaling_reason(&id),
                });
            }
            set_stability(set, false, now);
            continue;
        }
        let desired = u32::try_from(set.computed_desired_count.unwrap_or(0).max(0)).unwrap_or(0);
        let bounds = Bounds::of(desired, config.as_ref(), false);
        let step = replica::step(desired, bounds, &mine);
        for (task_id, _why) in &step.stop {
            out.stops.push(SetStop {
                task_id: task_id.clone(),
                reason: events::scaling_reason(&id),
            });
        }
        out.held.extend(step.held.iter().cloned());
        if step.start > 0 {
            out.launches.push((id.clone(), step.start));
        }
        let steady = step.stop.is_empty()
            && step.start == 0
            && mine.len() == desired as usize
            && mine
                .iter()
                .all(|s| s.phase == Phase::Healthy && !s.draining);
        set_stability(set, steady, now);
        out.steady &= steady;
    }
    sets.retain(|s| !s.id.as_ref().is_some_and(|id| drained.contains(id)));
    // Tasks of no task set (one deleted and forgotten, or started before an update) go.
    for slot in slots.iter().filter(|s| s.phase != Phase::Stopping) {
        let owner = set_of.get(slot.id.as_str()).copied().unwrap_or_default();
        if !known.contains(owner) {
            out.steady = false;
            out.stops.push(SetStop {
                task_id: slot.id.clone(),
                reason: events::scaling_reason(owner),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
