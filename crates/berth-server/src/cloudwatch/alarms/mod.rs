//! Metric alarms: PutMetricAlarm ([`put`]), DescribeAlarms and DescribeAlarmsForMetric
//! ([`describe`]), DeleteAlarms, SetAlarmState, Enable/DisableAlarmActions ([`state`]),
//! DescribeAlarmHistory ([`history`]) and the alarms' tags ([`tags`]). An alarm is a record in
//! the store (`/cloudwatch/alarms/NAME`) holding its configuration, its state and its recent
//! history, so it survives restarts; [`super::evaluate`] moves its state as its metric's
//! datapoints come.
//!
//! Berth evaluates alarms on one metric (`MetricName`, `Namespace`, `Statistic`); metric math
//! (`Metrics`), percentiles (`ExtendedStatistic`), composite alarms and the newer evaluation
//! options are refused with a clear error rather than stored and never evaluated.

pub mod describe;
pub mod history;
pub mod put;
pub mod state;
pub mod tags;
#[cfg(test)]
mod tests;

pub use describe::{describe_alarms, describe_alarms_for_metric};
pub use history::describe_alarm_history;
pub use put::put_metric_alarm;
pub use state::{delete_alarms, set_actions_enabled, set_alarm_state};

use super::{invalid_value, missing};
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
/// Alarm states.
pub const STATES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];

/// The store key of alarm `name`.
pub fn alarm_key(name: &str) -> String {
    format!("{ALARMS}{name}")
}

/// The ARN of alarm `name`.
pub fn alarm_arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        ctx.arns.region, ctx.arns.account_id
    )
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
    /// Until when (epoch seconds) a state set by SetAlarmState is left alone: the alarm's
    /// next evaluation, one evaluation interval later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<f64>,
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

    /// Seconds between two evaluations of the alarm as AWS schedules them: its period, at
    /// most a minute.
    pub fn evaluation_interval(&self) -> f64 {
        self.period.clamp(1, 60) as f64
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

fn check_name(name: Option<&str>, at: &str) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| missing(at))?;
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid_value(format!(
            "The parameter {at} must be 1 to 255 characters long."
        )));
    }
    Ok(name.to_string())
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFound",
        format!("The alarm {name} does not exist."),
    )
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

/// A tag as the API spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    key: Option<String>,
    value: Option<String>,
}

/// Checked (key, value) pairs of `tags`: at most 50, keys 1 to 128 characters not starting
/// with `aws:`, values at most 256.
pub fn tag_pairs(tags: &[Tag]) -> Result<Vec<(String, String)>, ApiError> {
    if tags.len() > 50 {
        return Err(invalid_value(
            "The collection Tags must not have more than 50 members.",
        ));
    }
    let mut pairs = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("Tags.member.{}", i + 1);
        let key = tag
            .key
            .clone()
            .ok_or_else(|| missing(&format!("{at}.Key")))?;
        let value = tag
            .value
            .clone()
            .ok_or_else(|| missing(&format!("{at}.Value")))?;
        if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
            return Err(invalid_value(format!(
                "The parameter {at}.Key must be 1 to 128 characters and not start with aws:."
            )));
        }
        if value.chars().count() > 256 {
            return Err(invalid_value(format!(
                "The parameter {at}.Value must be at most 256 characters."
            )));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}
