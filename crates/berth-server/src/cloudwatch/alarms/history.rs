//! DescribeAlarmHistory.

use super::{Alarm, ALARMS};
use crate::cloudwatch::{invalid_value, lenient};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

/// DescribeAlarmHistory's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryInput {
    alarm_name: Option<String>,
    #[serde(default)]
    alarm_types: Vec<String>,
    history_item_type: Option<String>,
    start_date: Option<crate::cloudwatch::Time>,
    end_date: Option<crate::cloudwatch::Time>,
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
    crate::cloudwatch::authorize(ctx, "DescribeAlarmHistory")?;
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
