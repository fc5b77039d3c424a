//! Alarm evaluation: every few seconds each alarm reads its metric's last `EvaluationPeriods`
//! complete periods and moves to ALARM when at least `DatapointsToAlarm` of them breach the
//! threshold, to OK when fewer do, and to INSUFFICIENT_DATA when none has a datapoint (unless
//! `TreatMissingData` says how to count missing periods: `breaching`, `notBreaching`, or
//! `ignore` to keep the state). A state set by SetAlarmState is kept until the alarm's next
//! evaluation as AWS schedules it (one period, at most a minute, later). Only a change of
//! state is written to the store, with a StateUpdate history item and the reason in AWS's
//! words.
//!
//! Actions: an Application Auto Scaling policy named in `AlarmActions` is run by the
//! [autoscaling controller](crate::autoscaling::controller) for as long as the alarm stays in
//! ALARM; other kinds of action (SNS, EC2) are recorded in the history as not run.

use super::alarms::{Alarm, HistoryItem, ALARMS};
use super::statistics::{buckets, statistic, Selection};
use crate::app::App;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde_json::json;
use std::time::Duration;

/// How often alarms are evaluated (by the round the
/// [autoscaling controller](crate::autoscaling::controller::spawn) runs).
pub const EVERY: Duration = Duration::from_secs(5);

/// What an evaluation concludes.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub state: &'static str,
    pub reason: String,
    /// `StateReasonData`: JSON.
    pub data: String,
}

/// One period's value, if it had datapoints: (period start in epoch ms, value, sample count).
pub type Period = (i64, Option<(f64, f64)>);

/// The complete periods before `now_ms` an evaluation reads, oldest first, with the alarm's
/// statistic of each: twice `EvaluationPeriods`, since with missing data treated as
/// `missing` CloudWatch looks further back for enough datapoints.
pub fn periods(store: &super::MetricStore, alarm: &Alarm, now_ms: i64) -> Vec<Period> {
    let period_ms = alarm.period * 1000;
    let end = now_ms.div_euclid(period_ms) * period_ms;
    let count = alarm.evaluation_periods * 2;
    let start = end - count * period_ms;
    let selection = Selection {
        namespace: alarm.namespace.clone(),
        metric_name: alarm.metric_name.clone(),
        dimensions: alarm.dimensions.clone(),
        unit: alarm.unit.clone(),
        start,
        end,
        period: alarm.period,
    };
    let found = buckets(store, &selection);
    (0..count)
        .map(|i| {
            let at = start + i * period_ms;
            let mut merged: Option<super::StatisticSet> = None;
            for ((_, _), set) in found.range((at, String::new())..(at + 1, String::new())) {
                match &mut merged {
                    Some(m) => super::store::merge(m, set),
                    None => merged = Some(*set),
                }
            }
            let value = merged.map(|set| (statistic(&set, &alarm.statistic), set.sample_count));
            (at, value)
        })
        .collect()
}

fn breaches(alarm: &Alarm, value: f64) -> bool {
    let t = alarm.threshold;
    match alarm.comparison_operator.as_str() {
        "GreaterThanOrEqualToThreshold" => value >= t,
        "GreaterThanThreshold" => value > t,
        "LessThanThreshold" => value < t,
        "LessThanOrEqualToThreshold" => value <= t,
        _ => false,
    }
}

fn comparison_words(operator: &str) -> &'static str {
    match operator {
        "GreaterThanOrEqualToThreshold" => "greater than or equal to",
        "GreaterThanThreshold" => "greater than",
        "LessThanThreshold" => "less than",
        _ => "less than or equal to",
    }
}

/// A number as AWS writes it in a reason: `90.0`, `52.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// A period's start as AWS writes it in a reason: `01/12/26 04:28:00` (day/month/year, UTC).
fn reason_time(epoch_ms: i64) -> String {
    let iso = berth_core::civil::iso8601(epoch_ms.div_euclid(1000), None);
    // 2026-12-01T04:28:00Z
    match (
        iso.get(2..4),
        iso.get(5..7),
        iso.get(8..10),
        iso.get(11..19),
    ) {
        (Some(year), Some(month), Some(day), Some(time)) => format!("{day}/{month}/{year} {time}"),
        _ => iso,
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The state `alarm` should be in given the periods [`periods`] `read` (oldest first) at
/// `now_ms`; `None` when it keeps its state (all missing, `TreatMissingData` = `ignore`).
pub fn evaluate(alarm: &Alarm, read: &[Period], now_ms: i64) -> Option<Verdict> {
    let treat = alarm.treat_missing_data.as_deref().unwrap_or("missing");
    let needed = usize::try_from(alarm.datapoints_needed()).unwrap_or(usize::MAX);
    let wanted = usize::try_from(alarm.evaluation_periods).unwrap_or(usize::MAX);
    // Missing periods that count (as breaching or not) are the last N periods; otherwise the
    // last N datapoints there are.
    let periods: Vec<Period> = if treat == "breaching" || treat == "notBreaching" {
        read[read.len().saturating_sub(wanted)..].to_vec()
    } else {
        let mut present: Vec<Period> = read
            .iter()
            .rev()
            .filter(|(_, v)| v.is_some())
            .take(wanted)
            .copied()
            .collect();
        present.reverse();
        present
    };
    let mut breaching = 0usize;
    let mut known = 0usize;
    for (_, value) in &periods {
        let breach = match value {
            Some((v, _)) => Some(breaches(alarm, *v)),
            None => match treat {
                "breaching" => Some(true),
                "notBreaching" => Some(false),
                _ => None,
            },
        };
        if let Some(breach) = breach {
            known += 1;
            breaching += usize::from(breach);
        }
    }
    // Newest first, as AWS lists them in a reason.
    let present: Vec<(i64, f64, f64)> = periods
        .iter()
        .rev()
        .filter_map(|(at, v)| v.map(|(value, count)| (*at, value, count)))
        .collect();
    let shown: Vec<String> = present
        .iter()
        .map(|(at, value, _)| format!("{} ({})", number(*value), reason_time(*at)))
        .collect();
    let data = json!({
        "version": "1.0",
        "queryDate": berth_core::civil::iso8601(now_ms.div_euclid(1000), None),
        "startDate": periods.first().map(|(at, _)| berth_core::civil::iso8601(at.div_euclid(1000), None)),
        "statistic": alarm.statistic,
        "period": alarm.period,
        "recentDatapoints": present.iter().rev().map(|p| p.1).collect::<Vec<_>>(),
        "threshold": alarm.threshold,
        "evaluatedDatapoints": present.iter().map(|(at, value, count)| json!({
            "timestamp": berth_core::civil::iso8601(at.div_euclid(1000), None),
            "sampleCount": count,
            "value": value,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let words = comparison_words(&alarm.comparison_operator);
    let total = wanted;
    if breaching >= needed {
        return Some(Verdict {
            state: "ALARM",
            reason: format!(
                "Threshold Crossed: {breaching} out of the last {total} datapoints [{}] {} {words} \
                 the threshold ({}) (minimum {} for OK -> ALARM transition).",
                shown.join(", "),
                if breaching == 1 { "was" } else { "were" },
                number(alarm.threshold),
                plural(needed, "datapoint"),
            ),
            data,
        });
    }
    if known == 0 {
        if treat == "ignore" {
            return None;
        }
        return Some(Verdict {
            state: "INSUFFICIENT_DATA",
            reason: format!(
                "Insufficient Data: {} unknown.",
                if total == 1 {
                    "1 datapoint was".to_string()
                } else {
                    format!("{total} datapoints were")
                }
            ),
            data,
        });
    }
    let fine = known - breaching;
    Some(Verdict {
        state: "OK",
        reason: format!(
            "Threshold Crossed: {fine} out of the last {total} datapoints [{}] {} not {words} the \
             threshold ({}) (minimum 1 datapoint for ALARM -> OK transition).",
            shown.join(", "),
            if fine == 1 { "was" } else { "were" },
            number(alarm.threshold),
        ),
        data,
    })
}

/// Applies `verdict` to `alarm` at `now` (epoch seconds); whether its state changed.
pub fn apply(alarm: &mut Alarm, verdict: Verdict, now: f64) -> bool {
    if alarm.state == verdict.state {
        return false;
    }
    alarm.set_state(verdict.state, verdict.reason, Some(verdict.data), now);
    let actions = match verdict.state {
        "ALARM" => alarm.alarm_actions.clone(),
        "OK" => alarm.ok_actions.clone(),
        _ => alarm.insufficient_data_actions.clone(),
    };
    if alarm.actions_enabled {
        for action in actions {
            // Scaling policies are run by the autoscaling controller while the alarm stays
            // in ALARM; Berth has no other kind of action to run.
            let scaling =
                action.starts_with("arn:aws:autoscaling:") && action.contains(":scalingPolicy:");
            let (summary, data) = if scaling {
                (
                    format!("Successfully executed action {action}"),
                    json!({"actionState": "Succeeded", "notificationResource": action}),
                )
            } else {
                (
                    format!("Failed to execute action {action}"),
                    json!({
                        "actionState": "Failed",
                        "notificationResource": action,
                        "error": "Berth runs scaling policies only",
                    }),
                )
            };
            alarm.record(HistoryItem {
                timestamp: now,
                kind: "Action".into(),
                summary,
                data: data.to_string(),
            });
        }
    }
    true
}

/// Evaluates every alarm once at `now_ms`, but those whose state SetAlarmState holds; writes
/// those whose state changes or whose hold ends. Returns how many it wrote.
pub async fn evaluate_all(app: &App, now_ms: i64) -> usize {
    let alarms = match app.list::<Alarm>(ALARMS) {
        Ok(alarms) => alarms,
        Err(e) => {
            tracing::warn!("cannot read the alarms: {}", e.message);
            return 0;
        }
    };
    let mut changed = 0;
    for found in alarms {
        let mut alarm = found.value;
        let now = now_ms as f64 / 1000.0;
        if alarm.held_until.is_some_and(|until| now < until) {
            continue;
        }
        let periods = periods(&app.cloudwatch, &alarm, now_ms);
        let Some(verdict) = evaluate(&alarm, &periods, now_ms) else {
            continue;
        };
        let held = alarm.held_until.take().is_some();
        if !apply(&mut alarm, verdict, now) && !held {
            continue;
        }
        let key = super::alarms::alarm_key(&alarm.name);
        // A writer that came first (PutMetricAlarm, SetAlarmState) wins; the next round
        // evaluates what it wrote.
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&alarm));
        match app.commit(txn).await {
            Ok(result) if result.succeeded => changed += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(alarm = %alarm.name, "cannot store the alarm's state: {}", e.message)
            }
        }
    }
    changed
}
