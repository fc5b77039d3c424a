//! DescribeAlarms and DescribeAlarmsForMetric.

use super::{Alarm, ALARMS, STATES};
use crate::cloudwatch::{dimensions, invalid_value, lenient, missing, unit, Dimension};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

/// DescribeAlarms' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsInput {
    #[serde(default)]
    alarm_names: Vec<String>,
    alarm_name_prefix: Option<String>,
    #[serde(default)]
    alarm_types: Vec<String>,
    children_of_alarm_name: Option<String>,
    parents_of_alarm_name: Option<String>,
    state_value: Option<String>,
    action_prefix: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    max_records: Option<i64>,
    next_token: Option<String>,
}

/// DescribeAlarms: the metric alarms that pass every filter, by name, in pages of
/// MaxRecords (default 50, at most 100).
pub fn describe_alarms(ctx: &Ctx, input: DescribeAlarmsInput) -> Result<Value, ApiError> {
    crate::cloudwatch::authorize(ctx, "DescribeAlarms")?;
    if !input.alarm_names.is_empty() && input.alarm_name_prefix.is_some() {
        return Err(crate::cloudwatch::combination(
            "AlarmNames and AlarmNamePrefix cannot be given together.",
        ));
    }
    if let Some(state) = &input.state_value {
        if !STATES.contains(&state.as_str()) {
            return Err(invalid_value(format!(
                "The value {state} for parameter StateValue is not valid: use OK, ALARM or \
                 INSUFFICIENT_DATA."
            )));
        }
    }
    if input.alarm_names.len() > 100 {
        return Err(invalid_value(
            "The collection AlarmNames must not have more than 100 members.",
        ));
    }
    let max = input.max_records.unwrap_or(50);
    if !(1..=100).contains(&max) {
        return Err(invalid_value(
            "The parameter MaxRecords must be from 1 to 100.",
        ));
    }
    let wants_metric =
        input.alarm_types.is_empty() || input.alarm_types.iter().any(|t| t == "MetricAlarm");
    // Berth has no composite alarms: they have no children and no parents.
    let relational =
        input.children_of_alarm_name.is_some() || input.parents_of_alarm_name.is_some();
    let alarms: Vec<Alarm> = if !wants_metric || relational {
        Vec::new()
    } else {
        ctx.list::<Alarm>(ALARMS)?
            .into_iter()
            .map(|a| a.value)
            .filter(|a| input.alarm_names.is_empty() || input.alarm_names.contains(&a.name))
            .filter(|a| {
                input
                    .alarm_name_prefix
                    .as_ref()
                    .is_none_or(|p| a.name.starts_with(p.as_str()))
            })
            .filter(|a| input.state_value.as_ref().is_none_or(|s| *s == a.state))
            .filter(|a| {
                input.action_prefix.as_ref().is_none_or(|p| {
                    a.alarm_actions
                        .iter()
                        .chain(&a.ok_actions)
                        .chain(&a.insufficient_data_actions)
                        .any(|action| action.starts_with(p.as_str()))
                })
            })
            .collect()
    };
    let (page, next) = page(&alarms, input.next_token.as_deref(), max, |a| &a.name)?;
    let mut out = json!({
        "MetricAlarms": page.iter().map(|a| a.describe()).collect::<Vec<_>>(),
        "CompositeAlarms": [],
    });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

/// One page of `items` (sorted by `name_of`) after the name in `token`, and the token of the
/// next page.
fn page<'a, T>(
    items: &'a [T],
    token: Option<&str>,
    max: i64,
    name_of: impl Fn(&T) -> &str,
) -> Result<(&'a [T], Option<String>), ApiError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match token {
        None => 0,
        Some(token) => {
            let after = b64
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ApiError::new("InvalidNextToken", "The NextToken is not valid."))?;
            items.partition_point(|item| name_of(item) <= after.as_str())
        }
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let end = start.saturating_add(max).min(items.len());
    let page = &items[start..end];
    let next = (end < items.len())
        .then(|| page.last().map(|last| b64.encode(name_of(last))))
        .flatten();
    Ok((page, next))
}

/// DescribeAlarmsForMetric's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsForMetricInput {
    metric_name: Option<String>,
    namespace: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    #[serde(default, deserialize_with = "lenient")]
    period: Option<i64>,
    unit: Option<String>,
}

/// DescribeAlarmsForMetric: the alarms on one metric (its dimensions exactly), narrowed by
/// statistic, period and unit when given.
pub fn describe_alarms_for_metric(
    ctx: &Ctx,
    input: DescribeAlarmsForMetricInput,
) -> Result<Value, ApiError> {
    crate::cloudwatch::authorize(ctx, "DescribeAlarmsForMetric")?;
    let metric_name = input.metric_name.ok_or_else(|| missing("MetricName"))?;
    let namespace = input.namespace.ok_or_else(|| missing("Namespace"))?;
    let dimensions = dimensions(&input.dimensions, "")?;
    let unit = unit(input.unit.as_deref(), "Unit")?;
    let alarms: Vec<Value> = ctx
        .list::<Alarm>(ALARMS)?
        .into_iter()
        .map(|a| a.value)
        .filter(|a| a.metric_name == metric_name && a.namespace == namespace)
        .filter(|a| a.dimensions == dimensions)
        .filter(|a| input.statistic.as_ref().is_none_or(|s| *s == a.statistic))
        .filter(|_| input.extended_statistic.is_none())
        .filter(|a| input.period.is_none_or(|p| p == a.period))
        .filter(|a| unit.is_none() || a.unit == unit)
        .map(|a| a.describe())
        .collect();
    Ok(json!({ "MetricAlarms": alarms }))
}
