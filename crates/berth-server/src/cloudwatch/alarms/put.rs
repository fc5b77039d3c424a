//! PutMetricAlarm: an alarm's configuration, checked whole before anything is stored.

use super::{alarm_arn, alarm_key, check_name, tag_pairs, Alarm, HistoryItem, Tag};
use crate::cloudwatch::{dimensions, invalid_value, lenient, missing, unit, Dimension};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

/// The most alarm actions of each kind.
const MAX_ACTIONS: usize = 5;

/// The comparison operators Berth evaluates (the anomaly-band ones need a model it lacks).
const OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];
/// What an alarm may do with periods that have no datapoint.
const TREAT_MISSING: &[&str] = &["breaching", "notBreaching", "ignore", "missing"];
/// PutMetricAlarm's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarmInput {
    alarm_name: Option<String>,
    alarm_description: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    actions_enabled: Option<bool>,
    #[serde(default, rename = "OKActions")]
    ok_actions: Vec<String>,
    #[serde(default)]
    alarm_actions: Vec<String>,
    #[serde(default)]
    insufficient_data_actions: Vec<String>,
    metric_name: Option<String>,
    namespace: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    #[serde(default, deserialize_with = "lenient")]
    period: Option<i64>,
    unit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    evaluation_periods: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    datapoints_to_alarm: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    threshold: Option<f64>,
    comparison_operator: Option<String>,
    treat_missing_data: Option<String>,
    evaluate_low_sample_count_percentile: Option<String>,
    metrics: Option<Value>,
    threshold_metric_id: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    // Newer evaluation options Berth does not implement: refused when given.
    evaluation_window: Option<Value>,
    warm_up_configuration: Option<Value>,
    evaluation_criteria: Option<Value>,
    evaluation_interval: Option<Value>,
    action_configuration: Option<Value>,
}

fn check_actions(actions: &[String], at: &str) -> Result<(), ApiError> {
    if actions.len() > MAX_ACTIONS {
        return Err(invalid_value(format!(
            "The collection {at} must not have more than {MAX_ACTIONS} members."
        )));
    }
    if let Some(bad) = actions.iter().find(|a| !a.starts_with("arn:")) {
        return Err(ApiError::new(
            "ValidationError",
            format!("Invalid arn syntax: {bad}"),
        ));
    }
    Ok(())
}

/// PutMetricAlarm: creates the alarm (state INSUFFICIENT_DATA until evaluated) or replaces
/// its whole configuration, keeping its state, as AWS does.
pub async fn put_metric_alarm(ctx: &Ctx, input: PutMetricAlarmInput) -> Result<Value, ApiError> {
    let name = check_name(input.alarm_name.as_deref(), "AlarmName")?;
    if input.metrics.is_some() || input.threshold_metric_id.is_some() {
        return Err(invalid_value(
            "Berth evaluates alarms on one metric: give MetricName, Namespace, Statistic and \
             Period instead of Metrics (metric math is not supported).",
        ));
    }
    let unsupported = [
        ("EvaluationWindow", input.evaluation_window.is_some()),
        ("WarmUpConfiguration", input.warm_up_configuration.is_some()),
        ("EvaluationCriteria", input.evaluation_criteria.is_some()),
        ("EvaluationInterval", input.evaluation_interval.is_some()),
        ("ActionConfiguration", input.action_configuration.is_some()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(invalid_value(format!(
            "Berth does not support the parameter {name}: alarms evaluate the last \
             EvaluationPeriods periods of their metric."
        )));
    }
    if input.extended_statistic.is_some() || input.evaluate_low_sample_count_percentile.is_some() {
        return Err(invalid_value(
            "Berth does not compute percentiles: give Statistic (SampleCount, Average, Sum, \
             Minimum or Maximum) instead of ExtendedStatistic.",
        ));
    }
    let metric_name = input.metric_name.ok_or_else(|| missing("MetricName"))?;
    let namespace = input.namespace.ok_or_else(|| missing("Namespace"))?;
    let statistic = input.statistic.ok_or_else(|| missing("Statistic"))?;
    if !crate::cloudwatch::STATISTICS.contains(&statistic.as_str()) {
        return Err(invalid_value(format!(
            "The value {statistic} for parameter Statistic is not valid: use SampleCount, \
             Average, Sum, Minimum or Maximum."
        )));
    }
    let period = input.period.ok_or_else(|| missing("Period"))?;
    if !([10, 20, 30].contains(&period) || (period >= 60 && period % 60 == 0)) {
        return Err(invalid_value(format!(
            "The parameter Period must be 10, 20, 30 or a multiple of 60 seconds; {period} is not."
        )));
    }
    let evaluation_periods = input
        .evaluation_periods
        .ok_or_else(|| missing("EvaluationPeriods"))?;
    if evaluation_periods < 1 {
        return Err(invalid_value(
            "The parameter EvaluationPeriods must be at least 1.",
        ));
    }
    if period * evaluation_periods > 7 * 24 * 3600 {
        return Err(invalid_value(
            "The evaluation period of an alarm (Period times EvaluationPeriods) must not be \
             longer than 7 days.",
        ));
    }
    if let Some(m) = input.datapoints_to_alarm {
        if m < 1 || m > evaluation_periods {
            return Err(invalid_value(format!(
                "The parameter DatapointsToAlarm must be from 1 to EvaluationPeriods \
                 ({evaluation_periods}); {m} is not."
            )));
        }
    }
    let threshold = input.threshold.ok_or_else(|| missing("Threshold"))?;
    if !threshold.is_finite() {
        return Err(invalid_value("The parameter Threshold must be a number."));
    }
    let comparison_operator = input
        .comparison_operator
        .ok_or_else(|| missing("ComparisonOperator"))?;
    if !OPERATORS.contains(&comparison_operator.as_str()) {
        return Err(invalid_value(format!(
            "The value {comparison_operator} for parameter ComparisonOperator is not supported: \
             use {}.",
            OPERATORS.join(", ")
        )));
    }
    if let Some(treat) = &input.treat_missing_data {
        if !TREAT_MISSING.contains(&treat.as_str()) {
            return Err(invalid_value(format!(
                "The value {treat} for parameter TreatMissingData is not valid: use {}.",
                TREAT_MISSING.join(", ")
            )));
        }
    }
    if input
        .alarm_description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(invalid_value(
            "The parameter AlarmDescription must be at most 1024 characters long.",
        ));
    }
    check_actions(&input.ok_actions, "OKActions")?;
    check_actions(&input.alarm_actions, "AlarmActions")?;
    check_actions(&input.insufficient_data_actions, "InsufficientDataActions")?;
    let dimensions = dimensions(&input.dimensions, "")?;
    let unit = unit(input.unit.as_deref(), "Unit")?;
    let tags = tag_pairs(&input.tags)?;
    let arn = alarm_arn(ctx, &name);
    crate::cloudwatch::authorize_on(ctx, "PutMetricAlarm", &arn)?;

    let key = alarm_key(&name);
    loop {
        let now = ctx.now();
        let existing = ctx.get::<Alarm>(&key)?;
        let mut alarm = Alarm {
            name: name.clone(),
            arn: arn.clone(),
            description: input.alarm_description.clone(),
            actions_enabled: input.actions_enabled.unwrap_or(true),
            ok_actions: input.ok_actions.clone(),
            alarm_actions: input.alarm_actions.clone(),
            insufficient_data_actions: input.insufficient_data_actions.clone(),
            namespace: namespace.clone(),
            metric_name: metric_name.clone(),
            statistic: statistic.clone(),
            dimensions: dimensions.clone(),
            period,
            unit: unit.clone(),
            evaluation_periods,
            datapoints_to_alarm: input.datapoints_to_alarm,
            threshold,
            comparison_operator: comparison_operator.clone(),
            treat_missing_data: input.treat_missing_data.clone(),
            configuration_updated: now,
            state: "INSUFFICIENT_DATA".into(),
            state_reason: "Unchecked: Initial alarm creation".into(),
            state_reason_data: None,
            state_updated: now,
            state_transitioned: now,
            held_until: None,
            tags: tags.clone(),
            history: Vec::new(),
        };
        let (guard, summary) = match &existing {
            Some(old) => {
                // The configuration is replaced; state and history stay.
                let old = &old.value;
                alarm.state = old.state.clone();
                alarm.state_reason = old.state_reason.clone();
                alarm.state_reason_data = old.state_reason_data.clone();
                alarm.state_updated = old.state_updated;
                alarm.state_transitioned = old.state_transitioned;
                alarm.held_until = old.held_until;
                alarm.history = old.history.clone();
                // As on AWS, Tags apply when an alarm is made; an update keeps its tags
                // (TagResource changes them).
                alarm.tags = old.tags.clone();
                (
                    Compare::at(&key, existing.as_ref().map_or(0, |e| e.mod_revision)),
                    format!("Alarm \"{name}\" updated"),
                )
            }
            None => (Compare::absent(&key), format!("Alarm \"{name}\" created")),
        };
        alarm.record(HistoryItem {
            timestamp: now,
            kind: "ConfigurationUpdate".into(),
            summary,
            data: json!({"version": "1.0", "type": if existing.is_some() { "Update" } else { "Create" }})
                .to_string(),
        });
        let txn = Txn::new().when(guard).put(&key, encode(&alarm));
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({}));
        }
    }
}
