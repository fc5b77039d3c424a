//! Metric alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms,
//! SetAlarmState, DescribeAlarmHistory, EnableAlarmActions and DisableAlarmActions. An alarm
//! is a record in the store (`/cloudwatch/alarms/NAME`) holding its configuration, its state
//! and its recent history, so it survives restarts; [`super::evaluate`] moves its state as
//! its metric's datapoints come.
//!
//! Berth evaluates alarms on one metric (`MetricName`, `Namespace`, `Statistic`); metric math
//! (`Metrics`), percentiles (`ExtendedStatistic`) and composite alarms are refused with a
//! clear error rather than stored and never evaluated.

use super::{dimensions, invalid_value, lenient, missing, unit, Dimension};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where alarms are kept in the store.
pub const ALARMS: &str = "/cloudwatch/alarms/";
/// History items kept per alarm (the oldest go first).
const HISTORY_KEPT: usize = 100;
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
/// Alarm states.
pub const STATES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];

/// The store key of alarm `name`.
pub fn alarm_key(name: &str) -> String {
    format!("{ALARMS}{name}")
}

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub namespace: String,
    pub metric_name: String,
    pub statistic: String,
    /// Sorted (Name, Value) pairs.
    pub dimensions: Vec<(String, String)>,
    /// Seconds.
    pub period: i64,
    pub unit: Option<String>,
    pub evaluation_periods: i64,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: Option<String>,
    /// Epoch seconds.
    pub configuration_updated: f64,
    pub state: String,
    pub state_reason: String,
    pub state_reason_data: Option<String>,
    pub state_updated: f64,
    pub state_transitioned: f64,
    pub tags: Vec<(String, String)>,
    /// Oldest first.
    pub history: Vec<HistoryItem>,
}

/// One entry of an alarm's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// Epoch seconds.
    pub timestamp: f64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub kind: String,
    pub summary: String,
    /// JSON, as AWS gives `HistoryData`.
    pub data: String,
}

impl Alarm {
    /// How many of the evaluated periods must breach to alarm.
    pub fn datapoints_needed(&self) -> i64 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// Adds `item`, forgetting the oldest beyond what is kept.
    pub fn record(&mut self, item: HistoryItem) {
        self.history.push(item);
        if self.history.len() > HISTORY_KEPT {
            let extra = self.history.len() - HISTORY_KEPT;
            self.history.drain(..extra);
        }
    }

    /// Moves the alarm to `state` at `now` (epoch seconds) for `reason`, with a StateUpdate
    /// history item when the state changes.
    pub fn set_state(&mut self, state: &str, reason: String, data: Option<String>, now: f64) {
        let changed = self.state != state;
        if changed {
            let summary = format!("Alarm updated from {} to {state}", self.state);
            let history = json!({
                "version": "1.0",
                "oldState": {"stateValue": self.state, "stateReason": self.state_reason},
                "newState": {"stateValue": state, "stateReason": reason},
            });
            self.record(HistoryItem {
                timestamp: now,
                kind: "StateUpdate".into(),
                summary,
                data: history.to_string(),
            });
            self.state = state.to_string();
            self.state_transitioned = now;
        }
        self.state_reason = reason;
        self.state_reason_data = data;
        self.state_updated = now;
    }

    /// The alarm as DescribeAlarms shows it (`MetricAlarm`).
    pub fn describe(&self) -> Value {
        let dimensions: Vec<Value> = self
            .dimensions
            .iter()
            .map(|(name, value)| json!({"Name": name, "Value": value}))
            .collect();
        let mut out = json!({
            "AlarmName": self.name,
            "AlarmArn": self.arn,
            "AlarmConfigurationUpdatedTimestamp": self.configuration_updated,
            "ActionsEnabled": self.actions_enabled,
            "OKActions": self.ok_actions,
            "AlarmActions": self.alarm_actions,
            "InsufficientDataActions": self.insufficient_data_actions,
            "StateValue": self.state,
            "StateReason": self.state_reason,
            "StateUpdatedTimestamp": self.state_updated,
            "StateTransitionedTimestamp": self.state_transitioned,
            "MetricName": self.metric_name,
            "Namespace": self.namespace,
            "Statistic": self.statistic,
            "Dimensions": dimensions,
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison_operator,
        });
        let optional = [
            (
                "AlarmDescription",
                self.description.clone().map(Value::from),
            ),
            (
                "StateReasonData",
                self.state_reason_data.clone().map(Value::from),
            ),
            ("Unit", self.unit.clone().map(Value::from)),
            (
                "DatapointsToAlarm",
                self.datapoints_to_alarm.map(Value::from),
            ),
            (
                "TreatMissingData",
                self.treat_missing_data.clone().map(Value::from),
            ),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out[name] = value;
            }
        }
        out
    }
}

/// A tag as the API spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: Option<String>,
    value: Option<String>,
}

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
}

fn check_name(name: Option<&str>, at: &str) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| missing(at))?;
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid_value(format!(
            "The parameter {at} must be 1 to 255 characters long."
        )));
    }
    Ok(name.to_string())
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
    if input.extended_statistic.is_some() || input.evaluate_low_sample_count_percentile.is_some() {
        return Err(invalid_value(
            "Berth does not compute percentiles: give Statistic (SampleCount, Average, Sum, \
             Minimum or Maximum) instead of ExtendedStatistic.",
        ));
    }
    let metric_name = input.metric_name.ok_or_else(|| missing("MetricName"))?;
    let namespace = input.namespace.ok_or_else(|| missing("Namespace"))?;
    let statistic = input.statistic.ok_or_else(|| missing("Statistic"))?;
    if !super::statistics::STATISTICS.contains(&statistic.as_str()) {
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
    let mut tags = Vec::new();
    for (i, tag) in input.tags.iter().enumerate() {
        let at = format!("Tags.member.{}", i + 1);
        let key = tag
            .key
            .clone()
            .ok_or_else(|| missing(&format!("{at}.Key")))?;
        let value = tag
            .value
            .clone()
            .ok_or_else(|| missing(&format!("{at}.Value")))?;
        tags.push((key, value));
    }
    let arn = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        ctx.arns.region, ctx.arns.account_id
    );
    super::authorize_on(ctx, "PutMetricAlarm", &arn)?;

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
            tags: tags.clone(),
            history: Vec::new(),
        };
        let (guard, summary) = match &existing {
            Some(old) => {
                // The configuration is replaced; state, history and tags stay.
                let old = &old.value;
                alarm.state = old.state.clone();
                alarm.state_reason = old.state_reason.clone();
                alarm.state_reason_data = old.state_reason_data.clone();
                alarm.state_updated = old.state_updated;
                alarm.state_transitioned = old.state_transitioned;
                alarm.history = old.history.clone();
                if tags.is_empty() {
                    alarm.tags = old.tags.clone();
                }
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
    super::authorize(ctx, "DescribeAlarms")?;
    if !input.alarm_names.is_empty() && input.alarm_name_prefix.is_some() {
        return Err(super::combination(
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
    super::authorize(ctx, "DescribeAlarmsForMetric")?;
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

/// An input naming alarms: DeleteAlarms, EnableAlarmActions, DisableAlarmActions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNamesInput {
    alarm_names: Option<Vec<String>>,
}

/// DeleteAlarms: all the named alarms, or none when one of them does not exist.
pub async fn delete_alarms(ctx: &Ctx, input: AlarmNamesInput) -> Result<Value, ApiError> {
    let names = input.alarm_names.ok_or_else(|| missing("AlarmNames"))?;
    if names.len() > 100 {
        return Err(invalid_value(
            "The collection AlarmNames must not have more than 100 members.",
        ));
    }
    let mut txn = Txn::new();
    for name in &names {
        let arn = format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            ctx.arns.region, ctx.arns.account_id
        );
        super::authorize_on(ctx, "DeleteAlarms", &arn)?;
        let key = alarm_key(name);
        let found = ctx.get::<Alarm>(&key)?.ok_or_else(|| not_found(name))?;
        txn = txn.when(Compare::at(&key, found.mod_revision)).delete(&key);
    }
    if !names.is_empty() && !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ResourceConflict",
            "An alarm changed while it was being deleted; try again.",
        ));
    }
    Ok(json!({}))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFound",
        format!("The alarm {name} does not exist."),
    )
}

/// EnableAlarmActions / DisableAlarmActions: sets ActionsEnabled of the named alarms that
/// exist (AWS ignores the others).
pub async fn set_actions_enabled(
    ctx: &Ctx,
    op: &str,
    input: AlarmNamesInput,
    enabled: bool,
) -> Result<Value, ApiError> {
    let names = input.alarm_names.ok_or_else(|| missing("AlarmNames"))?;
    for name in names {
        let arn = format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            ctx.arns.region, ctx.arns.account_id
        );
        super::authorize_on(ctx, op, &arn)?;
        update(ctx, &name, |alarm| {
            alarm.actions_enabled = enabled;
            Ok(())
        })
        .await
        .or_else(|e| {
            if e.name == "ResourceNotFound" {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    Ok(json!({}))
}

/// Reads alarm `name`, applies `change` and writes it back, again if another writer came
/// first.
pub async fn update(
    ctx: &Ctx,
    name: &str,
    change: impl Fn(&mut Alarm) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let key = alarm_key(name);
    loop {
        let found = ctx.get::<Alarm>(&key)?.ok_or_else(|| not_found(name))?;
        let mut alarm = found.value;
        change(&mut alarm)?;
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&alarm));
        if ctx.commit(txn).await?.succeeded {
            return Ok(());
        }
    }
}

/// SetAlarmState's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    alarm_name: Option<String>,
    state_value: Option<String>,
    state_reason: Option<String>,
    state_reason_data: Option<String>,
}

/// SetAlarmState: sets the state until the next evaluation moves it, as AWS does (for
/// testing actions).
pub async fn set_alarm_state(ctx: &Ctx, input: SetAlarmStateInput) -> Result<Value, ApiError> {
    let name = check_name(input.alarm_name.as_deref(), "AlarmName")?;
    let state = input.state_value.ok_or_else(|| missing("StateValue"))?;
    if !STATES.contains(&state.as_str()) {
        return Err(invalid_value(format!(
            "The value {state} for parameter StateValue is not valid: use OK, ALARM or \
             INSUFFICIENT_DATA."
        )));
    }
    let reason = input.state_reason.ok_or_else(|| missing("StateReason"))?;
    if reason.chars().count() > 1023 {
        return Err(invalid_value(
            "The parameter StateReason must be at most 1023 characters long.",
        ));
    }
    if let Some(data) = &input.state_reason_data {
        if serde_json::from_str::<Value>(data).is_err() {
            return Err(ApiError::new(
                "InvalidFormat",
                "The parameter StateReasonData must be JSON.",
            ));
        }
    }
    let arn = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        ctx.arns.region, ctx.arns.account_id
    );
    super::authorize_on(ctx, "SetAlarmState", &arn)?;
    let now = ctx.now();
    update(ctx, &name, |alarm| {
        alarm.set_state(&state, reason.clone(), input.state_reason_data.clone(), now);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

/// DescribeAlarmHistory's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryInput {
    alarm_name: Option<String>,
    #[serde(default)]
    alarm_types: Vec<String>,
    history_item_type: Option<String>,
    start_date: Option<super::Time>,
    end_date: Option<super::Time>,
    #[serde(default, deserialize_with = "lenient")]
    max_records: Option<i64>,
    next_token: Option<String>,
    scan_by: Option<String>,
}

/// DescribeAlarmHistory: the history items of one alarm or all, newest first unless ScanBy
/// is TimestampAscending.
pub fn describe_alarm_history(
    ctx: &Ctx,
    input: DescribeAlarmHistoryInput,
) -> Result<Value, ApiError> {
    super::authorize(ctx, "DescribeAlarmHistory")?;
    if let Some(kind) = &input.history_item_type {
        if !["ConfigurationUpdate", "StateUpdate", "Action"].contains(&kind.as_str()) {
            return Err(invalid_value(format!(
                "The value {kind} for parameter HistoryItemType is not valid: use \
                 ConfigurationUpdate, StateUpdate or Action."
            )));
        }
    }
    let ascending = match input.scan_by.as_deref() {
        None | Some("TimestampDescending") => false,
        Some("TimestampAscending") => true,
        Some(other) => {
            return Err(invalid_value(format!(
                "The value {other} for parameter ScanBy is not valid: use TimestampDescending \
                 or TimestampAscending."
            )))
        }
    };
    let max = input.max_records.unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(invalid_value(
            "The parameter MaxRecords must be from 1 to 100.",
        ));
    }
    let start = input
        .start_date
        .as_ref()
        .map(|t| t.millis("StartDate"))
        .transpose()?;
    let end = input
        .end_date
        .as_ref()
        .map(|t| t.millis("EndDate"))
        .transpose()?;
    let wants_metric =
        input.alarm_types.is_empty() || input.alarm_types.iter().any(|t| t == "MetricAlarm");
    let mut items: Vec<(f64, String, usize, Value)> = Vec::new();
    if wants_metric {
        for alarm in ctx.list::<Alarm>(ALARMS)?.into_iter().map(|a| a.value) {
            if input.alarm_name.as_ref().is_some_and(|n| *n != alarm.name) {
                continue;
            }
            for (i, item) in alarm.history.iter().enumerate() {
                let at = (item.timestamp * 1000.0) as i64;
                if input
                    .history_item_type
                    .as_ref()
                    .is_some_and(|k| *k != item.kind)
                    || start.is_some_and(|s| at < s)
                    || end.is_some_and(|e| at >= e)
                {
                    continue;
                }
                let shown = json!({
                    "AlarmName": alarm.name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": item.timestamp,
                    "HistoryItemType": item.kind,
                    "HistorySummary": item.summary,
                    "HistoryData": item.data,
                });
                items.push((item.timestamp, alarm.name.clone(), i, shown));
            }
        }
    }
    items.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    if !ascending {
        items.reverse();
    }
    let offset = match &input.next_token {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= items.len())
            .ok_or_else(|| ApiError::new("InvalidNextToken", "The NextToken is not valid."))?,
    };
    let max = usize::try_from(max).unwrap_or(100);
    let end = offset.saturating_add(max).min(items.len());
    let page: Vec<Value> = items[offset..end].iter().map(|i| i.3.clone()).collect();
    let mut out = json!({ "AlarmHistoryItems": page });
    if end < items.len() {
        out["NextToken"] = end.to_string().into();
    }
    Ok(out)
}
