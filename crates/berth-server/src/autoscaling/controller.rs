//! The scaling controller: every few seconds, for each scalable target, keeps the service's
//! desired count within the target's bounds and runs the policies whose alarms are in ALARM
//! (CloudWatch re-invokes a scaling policy for as long as its alarm stays in ALARM).
//!
//! Target tracking scales in proportion: the new count is `ceil(count × metric ÷ target)`,
//! with a ratio less than 1 % above a whole number of tasks
//! taken as that number (a CPU held at its limit samples as 100.2 %: without the tolerance
//! that noise alone would add a task, and a service held at its target would swing between
//! two counts); a scale-in goes down to that count only when every
//! target tracking policy of the service agrees, and never while a scale-out or scale-in
//! cooldown runs (`ScaleOutCooldown`, `ScaleInCooldown`, 300 s by default as on ECS). A
//! scale-out may go further during its cooldown only past what the last one set. Step
//! scaling applies the step whose interval holds the breach (metric − threshold).
//! Scheduled actions set the target's bounds when their schedule fires. The
//! controller changes only the service's desired count, through UpdateService; the
//! deployment controller does the rest. Each change is an activity on the target, with its
//! cause. All of its state (cooldown marks, activities) is in the store.

use super::activities::Activity;
use super::policies::{Policy, POLICIES};
use super::scheduled::{scheduled_key, ScheduledAction, SCHEDULED};
use super::targets::{target_key, Target, TARGETS};
use crate::app::App;
use crate::cloudwatch::alarms::{Alarm, ALARMS};
use crate::cloudwatch::evaluate::periods;
use crate::dispatch::Ctx;
use berth_core::service::ServiceRecord;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How often alarms are evaluated and then targets looked at, in one round, so a policy runs
/// in the round its alarm went to ALARM.
const EVERY: Duration = crate::cloudwatch::evaluate::EVERY;
/// ECS's default cooldowns, seconds.
const DEFAULT_COOLDOWN: i64 = 300;
/// How far above a whole number of tasks a target tracking ratio may be and still count as
/// that number: sampling noise, not load.
const RATIO_TOLERANCE: f64 = 0.01;

/// The tasks target tracking asks for at `current` with the metric at `value`.
pub fn tracked_count(current: i64, value: f64, target_value: f64) -> i64 {
    let ratio = current.max(1) as f64 * value / target_value;
    (ratio / (1.0 + RATIO_TOLERANCE)).ceil() as i64
}

/// A change a policy asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub capacity: i64,
    pub cause: String,
    /// Whether it may lower the count (a scale-in).
    pub scale_in: bool,
}

/// What `alarm`'s metric reads at `now_ms`: its latest value, when that period began, and
/// the values of the last `EvaluationPeriods` periods that have one.
fn reading(app: &App, alarm: &Alarm, now_ms: i64) -> Option<Reading> {
    let present: Vec<(i64, f64)> = periods(&app.cloudwatch, alarm, now_ms)
        .into_iter()
        .filter_map(|(at, v)| v.map(|(value, _)| (at, value)))
        .collect();
    let (at, value) = *present.last()?;
    let wanted = usize::try_from(alarm.evaluation_periods).unwrap_or(usize::MAX);
    let window = present
        .iter()
        .rev()
        .take(wanted)
        .map(|(_, value)| *value)
        .collect();
    Some(Reading {
        value,
        since: at as f64 / 1000.0,
        window,
    })
}

/// A metric as a policy reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The latest period's value (what target tracking scales by).
    pub value: f64,
    /// When that period began (epoch seconds).
    pub since: f64,
    /// The values of the alarm's evaluated periods, newest first (what step scaling
    /// aggregates by its `MetricAggregationType`).
    pub window: Vec<f64>,
}

impl Reading {
    /// The window's values aggregated as `aggregation` says (`Average` when unset).
    fn aggregated(&self, aggregation: Option<&str>) -> f64 {
        let values = self.window.iter().copied();
        match aggregation {
            Some("Minimum") => values.fold(f64::INFINITY, f64::min),
            Some("Maximum") => values.fold(f64::NEG_INFINITY, f64::max),
            _ if self.window.is_empty() => self.value,
            _ => values.sum::<f64>() / self.window.len() as f64,
        }
    }
}

fn cause(alarm: &Alarm, policy: &Policy) -> String {
    format!(
        "monitor alarm {} in state ALARM triggered policy {}",
        alarm.name, policy.name
    )
}

/// What `policy` asks of a service at `current` desired count, given its alarms in ALARM
/// (with their metric's latest reading); `None` when it asks nothing.
pub fn propose(
    target: &Target,
    policy: &Policy,
    firing: &[(&Alarm, Reading)],
    current: i64,
    now: f64,
) -> Option<Proposal> {
    if let Some(config) = policy.target_tracking() {
        let (alarm, reading) = firing.first()?;
        // A datapoint from before the last scaling does not know of it: acting on it again
        // would overshoot.
        let last = target
            .last_scale_out
            .map(|(at, _)| at)
            .into_iter()
            .chain(target.last_scale_in)
            .fold(f64::NEG_INFINITY, f64::max);
        if reading.since < last {
            return None;
        }
        let wanted = tracked_count(current, reading.value, config.target_value);
        let out = alarm.comparison_operator.starts_with("Greater");
        if out {
            if target.suspended.dynamic_scaling_out_suspended {
                return None;
            }
            let capacity = wanted.min(target.max);
            let cooldown = config.scale_out_cooldown.unwrap_or(DEFAULT_COOLDOWN) as f64;
            let cooling = target
                .last_scale_out
                .is_some_and(|(at, set)| now < at + cooldown && capacity <= set);
            return (capacity > current && !cooling).then(|| Proposal {
                capacity,
                cause: cause(alarm, policy),
                scale_in: false,
            });
        }
        if config.disable_scale_in || target.suspended.dynamic_scaling_in_suspended {
            return None;
        }
        let capacity = wanted.clamp(target.min, current);
        let in_cooldown = config.scale_in_cooldown.unwrap_or(DEFAULT_COOLDOWN) as f64;
        let out_cooldown = config.scale_out_cooldown.unwrap_or(DEFAULT_COOLDOWN) as f64;
        let cooling = target
            .last_scale_in
            .is_some_and(|at| now < at + in_cooldown)
            || target
                .last_scale_out
                .is_some_and(|(at, _)| now < at + out_cooldown);
        return (capacity < current && !cooling).then(|| Proposal {
            capacity,
            cause: cause(alarm, policy),
            scale_in: true,
        });
    }
    let config = policy.step_scaling()?;
    let (alarm, reading) = firing.first()?;
    let breach = reading.aggregated(config.metric_aggregation_type.as_deref()) - alarm.threshold;
    let step = config.step_adjustments.iter().find(|s| {
        s.metric_interval_lower_bound
            .is_none_or(|low| breach >= low)
            && s.metric_interval_upper_bound
                .is_none_or(|high| breach < high)
    })?;
    let adjustment = step.scaling_adjustment;
    let capacity = match config.adjustment_type.as_deref() {
        Some("ExactCapacity") => adjustment,
        Some("PercentChangeInCapacity") => {
            let mut change = (current as f64 * adjustment as f64 / 100.0).trunc() as i64;
            if let Some(least) = config.min_adjustment_magnitude {
                if change.abs() < least && adjustment != 0 {
                    change = least * adjustment.signum();
                }
            }
            current + change
        }
        _ => current + adjustment,
    }
    .clamp(target.min, target.max);
    let scale_in = capacity < current;
    let suspended = if scale_in {
        target.suspended.dynamic_scaling_in_suspended
    } else {
        target.suspended.dynamic_scaling_out_suspended
    };
    let cooldown = config.cooldown.unwrap_or(DEFAULT_COOLDOWN) as f64;
    let last = if scale_in {
        target.last_scale_in
    } else {
        target.last_scale_out.map(|(at, _)| at)
    };
    let cooling = last.is_some_and(|at| now < at + cooldown);
    (capacity != current && !suspended && !cooling).then(|| Proposal {
        capacity,
        cause: cause(alarm, policy),
        scale_in,
    })
}

/// One decision for a target from all its policies: the largest scale-out asked, else the
/// mildest scale-in, taken only when every target tracking policy that may scale in asks
/// for one.
pub fn decide(
    proposals: &[(Proposal, bool)],
    tracking_policies_that_scale_in: usize,
) -> Option<Proposal> {
    if let Some(out) = proposals
        .iter()
        .filter(|(p, _)| !p.scale_in)
        .map(|(p, _)| p)
        .max_by_key(|p| p.capacity)
    {
        return Some(out.clone());
    }
    let ins: Vec<&(Proposal, bool)> = proposals.iter().filter(|(p, _)| p.scale_in).collect();
    let tracking_ins = ins.iter().filter(|(_, tracking)| *tracking).count();
    if ins.is_empty() || tracking_ins < tracking_policies_that_scale_in {
        return None;
    }
    ins.into_iter()
        .map(|(p, _)| p)
        .max_by_key(|p| p.capacity)
        .cloned()
}

/// Sets the service's desired count through UpdateService, as the account's root user (the
/// service-linked role of AWS). The activity is on the target, `InProgress`, before the count
/// moves (so whoever sees the new count finds its cause, as on AWS), and ends `Successful` or
/// `Failed` with UpdateService's answer.
async fn scale(app: &Arc<App>, target: &Target, current: i64, change: Proposal, now: f64) {
    let caller = match crate::auth::root_principal(app) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::warn!("autoscaling cannot act: {}", e.message);
            return;
        }
    };
    let ctx = Ctx {
        app: app.clone(),
        caller,
    };
    let id = super::new_id();
    let started = Activity {
        id: id.clone(),
        description: format!(
            "Setting desired count to {} (from {current}).",
            change.capacity
        ),
        cause: format!(
            "{} at {}",
            change.cause,
            berth_core::civil::iso8601(now as i64, None)
        ),
        start: now,
        end: None,
        status: "InProgress".into(),
        message: String::new(),
    };
    let key = target_key(&target.resource_id);
    if !modify_target(app, &key, |stored| stored.record(started.clone())).await {
        return;
    }
    let body = json!({
        "cluster": target.cluster,
        "service": target.service,
        "desiredCount": change.capacity,
    });
    let answer = crate::dispatch::dispatch(ctx, "UpdateService", body.to_string().as_bytes()).await;
    let (status, message) = match &answer {
        Ok(_) => (
            "Successful",
            format!(
                "Successfully set desired count to {}. Change successfully fulfilled by ecs.",
                change.capacity
            ),
        ),
        Err(e) => (
            "Failed",
            format!("Failed to set desired count: {}", e.message),
        ),
    };
    let end = app.now();
    tracing::info!(resource = %target.resource_id, from = current, to = change.capacity, status, "autoscaling: {}", change.cause);
    if answer.is_ok() {
        let message = format!(
            "(service {}) desired count changed from {current} to {} by Application Auto \
             Scaling: {}.",
            target.service, change.capacity, change.cause
        );
        crate::handlers::services::record_event(app, &target.cluster, &target.service, message)
            .await;
    }
    modify_target(app, &key, |stored| {
        if answer.is_ok() {
            if change.scale_in {
                stored.last_scale_in = Some(now);
            } else {
                stored.last_scale_out = Some((now, change.capacity));
            }
        }
        if let Some(activity) = stored.activities.iter_mut().find(|a| a.id == id) {
            activity.end = Some(end);
            activity.status = status.into();
            activity.message = message.clone();
        }
    })
    .await;
}

/// Applies `change` to the stored target at `key` with a compare-and-swap, again on a
/// conflict; false when the target is gone or the store refuses.
async fn modify_target(app: &Arc<App>, key: &str, mut change: impl FnMut(&mut Target)) -> bool {
    loop {
        let Ok(Some(found)) = app.get::<Target>(key) else {
            return false;
        };
        let mut stored = found.value;
        change(&mut stored);
        let txn = Txn::new()
            .when(Compare::at(key, found.mod_revision))
            .put(key, encode(&stored));
        match app.commit(txn).await {
            Ok(result) if result.succeeded => return true,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("cannot record a scaling activity: {}", e.message);
                return false;
            }
        }
    }
}

/// Applies the bounds of scheduled `action` (at store revision `revision`), due at `at`, to
/// its target, marking it fired, with an activity.
async fn run_scheduled(app: &Arc<App>, action: &ScheduledAction, revision: u64, at: i64, now: f64) {
    let key = target_key(&action.resource_id);
    let action_key = scheduled_key(&action.resource_id, &action.name);
    loop {
        let Ok(Some(found)) = app.get::<Target>(&key) else {
            return;
        };
        let mut target = found.value;
        let min = action.min.unwrap_or(target.min);
        let max = action.max.unwrap_or(target.max).max(min);
        let mut parts = Vec::new();
        if action.min.is_some() {
            parts.push(format!("min capacity to {min}"));
        }
        if action.max.is_some() {
            parts.push(format!("max capacity to {max}"));
        }
        target.min = min;
        target.max = max;
        target.record(Activity {
            id: super::new_id(),
            description: format!("Setting {}", parts.join(" and ")),
            cause: format!(
                "scheduled action name {} was triggered at {}",
                action.name,
                berth_core::civil::iso8601(at, None)
            ),
            start: now,
            end: Some(now),
            status: "Successful".into(),
            message: format!("Successfully set {}.", parts.join(" and ")),
        });
        let mut fired = action.clone();
        fired.last_fired = Some(at as f64);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .when(Compare::at(&action_key, revision))
            .put(&key, encode(&target))
            .put(&action_key, encode(&fired));
        match app.commit(txn).await {
            Ok(result) if result.succeeded => {
                tracing::info!(resource = %action.resource_id, action = %action.name, min, max, "autoscaling: scheduled action fired");
                return;
            }
            // The action itself changed (or went): the next tick sees it anew.
            Ok(_)
                if app
                    .get::<ScheduledAction>(&action_key)
                    .ok()
                    .flatten()
                    .map(|a| a.mod_revision)
                    != Some(revision) =>
            {
                return
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("cannot run a scheduled action: {}", e.message);
                return;
            }
        }
    }
}

/// Looks at every target once at `now_ms`; returns how many it scaled.
pub async fn run_once(app: &Arc<App>, now_ms: i64) -> usize {
    let read = || -> Result<_, crate::error::ApiError> {
        Ok((
            app.list::<Target>(TARGETS)?,
            app.list::<Policy>(POLICIES)?,
            app.list::<Alarm>(ALARMS)?,
            app.list::<ScheduledAction>(SCHEDULED)?,
        ))
    };
    let (targets, policies, alarms, scheduled) = match read() {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("autoscaling cannot read its state: {}", e.message);
            return 0;
        }
    };
    let now = now_ms as f64 / 1000.0;
    let mut scaled = 0;
    for target in targets.into_iter().map(|t| t.value) {
        let Ok(Some(service)) =
            app.get::<ServiceRecord>(&keys::service(&target.cluster, &target.service))
        else {
            continue;
        };
        if !target.suspended.scheduled_scaling_suspended {
            let due = scheduled
                .iter()
                .filter(|a| a.value.resource_id == target.resource_id)
                .find_map(|a| a.value.due(now).map(|at| (a, at)));
            if let Some((action, at)) = due {
                run_scheduled(app, &action.value, action.mod_revision, at, now).await;
                scaled += 1;
                continue;
            }
        }
        let current = i64::from(service.value.service.desired_count.unwrap_or(0));
        // Bounds first: a count outside them is brought back, whatever the policies say.
        let bound = current.clamp(target.min, target.max);
        if bound != current {
            let cause = if bound > current {
                format!("minimum capacity was set to {}", target.min)
            } else {
                format!("maximum capacity was set to {}", target.max)
            };
            let change = Proposal {
                capacity: bound,
                cause,
                scale_in: bound < current,
            };
            scale(app, &target, current, change, now).await;
            scaled += 1;
            continue;
        }
        let mut proposals = Vec::new();
        let mut tracking_that_scale_in = 0;
        for policy in policies
            .iter()
            .map(|p| &p.value)
            .filter(|p| p.resource_id == target.resource_id)
        {
            let tracking = policy.target_tracking();
            if tracking.as_ref().is_some_and(|c| !c.disable_scale_in) {
                tracking_that_scale_in += 1;
            }
            let firing: Vec<(&Alarm, Reading)> = alarms
                .iter()
                .map(|a| &a.value)
                .filter(|a| {
                    a.state == "ALARM" && a.actions_enabled && a.alarm_actions.contains(&policy.arn)
                })
                .filter_map(|a| reading(app, a, now_ms).map(|r| (a, r)))
                .collect();
            if firing.is_empty() {
                continue;
            }
            if let Some(proposal) = propose(&target, policy, &firing, current, now) {
                proposals.push((proposal, tracking.is_some()));
            }
        }
        if let Some(change) = decide(&proposals, tracking_that_scale_in) {
            scale(app, &target, current, change, now).await;
            scaled += 1;
        }
    }
    scaled
}

/// Evaluates every alarm and then runs the controller, one round every 5 s, until the server
/// closes.
pub fn spawn(app: Arc<App>) {
    // Rounds start a second past each multiple of 5 s of the clock, so a period that ends on
    // a minute is judged a second after it ends, not up to 5 s later.
    let now = crate::cloudwatch::store::now_ms();
    let step = EVERY.as_millis() as i64;
    let wait = (step - now.rem_euclid(step) + 1000).rem_euclid(step);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        crate::controllers::every(app, EVERY, |app| async move {
            crate::cloudwatch::evaluate::evaluate_all(&app, crate::cloudwatch::store::now_ms())
                .await;
            run_once(&app, crate::cloudwatch::store::now_ms()).await;
        });
    });
}
