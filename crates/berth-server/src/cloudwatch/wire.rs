//! The query protocol's side of CloudWatch: form parameters (`MetricData.member.1.Value`)
//! gathered into the JSON value of an operation's input, and an output's JSON value written as
//! the XML of its result (lists as `<member>`s, timestamps in ISO 8601).

use crate::error::ApiError;
use crate::protocol::query::{timestamp, QueryRequest, Xml};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Scalar parameters of each action.
fn scalars(action: &str) -> &'static [&'static str] {
    match action {
        "PutMetricData" => &["Namespace", "StrictEntityValidation"],
        "GetMetricStatistics" => &[
            "Namespace",
            "MetricName",
            "StartTime",
            "EndTime",
            "Period",
            "Unit",
        ],
        "GetMetricData" => &[
            "StartTime",
            "EndTime",
            "NextToken",
            "ScanBy",
            "MaxDatapoints",
        ],
        "ListMetrics" => &[
            "Namespace",
            "MetricName",
            "NextToken",
            "RecentlyActive",
            "IncludeLinkedAccounts",
            "OwningAccount",
        ],
        "PutMetricAlarm" => &[
            "AlarmName",
            "AlarmDescription",
            "ActionsEnabled",
            "MetricName",
            "Namespace",
            "Statistic",
            "ExtendedStatistic",
            "Period",
            "Unit",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "EvaluateLowSampleCountPercentile",
            "ThresholdMetricId",
        ],
        "DescribeAlarms" => &[
            "AlarmNamePrefix",
            "ChildrenOfAlarmName",
            "ParentsOfAlarmName",
            "StateValue",
            "ActionPrefix",
            "MaxRecords",
            "NextToken",
        ],
        "DescribeAlarmsForMetric" => &[
            "MetricName",
            "Namespace",
            "Statistic",
            "ExtendedStatistic",
            "Period",
            "Unit",
        ],
        "SetAlarmState" => &["AlarmName", "StateValue", "StateReason", "StateReasonData"],
        "TagResource" | "UntagResource" | "ListTagsForResource" => &["ResourceARN"],
        "DescribeAlarmHistory" => &[
            "AlarmName",
            "HistoryItemType",
            "StartDate",
            "EndDate",
            "MaxRecords",
            "NextToken",
            "ScanBy",
        ],
        _ => &[],
    }
}

/// Lists of structures of each action.
fn structure_lists(action: &str) -> &'static [&'static str] {
    match action {
        "PutMetricData" => &["MetricData"],
        "GetMetricStatistics" => &["Dimensions"],
        "GetMetricData" => &["MetricDataQueries"],
        "ListMetrics" => &["Dimensions"],
        "PutMetricAlarm" => &["Dimensions", "Tags", "Metrics"],
        "DescribeAlarmsForMetric" => &["Dimensions"],
        "TagResource" => &["Tags"],
        _ => &[],
    }
}

/// Lists of strings of each action.
fn string_lists(action: &str) -> &'static [&'static str] {
    match action {
        "GetMetricStatistics" => &["Statistics", "ExtendedStatistics"],
        "PutMetricAlarm" => &["OKActions", "AlarmActions", "InsufficientDataActions"],
        "DescribeAlarms" => &["AlarmNames", "AlarmTypes"],
        "DescribeAlarmHistory" => &["AlarmTypes"],
        "UntagResource" => &["TagKeys"],
        "DeleteAlarms" | "EnableAlarmActions" | "DisableAlarmActions" => &["AlarmNames"],
        _ => &[],
    }
}

/// The JSON value of the input a query request carries. Values stay text; the typed inputs
/// read numbers and booleans from text too.
pub fn query_input(request: &QueryRequest) -> Result<Value, ApiError> {
    let action = request.action.as_str();
    let mut out = Map::new();
    for name in scalars(action) {
        if let Some(value) = request.get(name) {
            out.insert((*name).to_string(), Value::String(value.to_string()));
        }
    }
    for name in structure_lists(action) {
        let items = request.structures(name);
        if !items.is_empty() {
            out.insert(
                (*name).to_string(),
                Value::Array(items.iter().map(unflatten).collect()),
            );
        }
    }
    for name in string_lists(action) {
        let items: Vec<Value> = (1..)
            .map_while(|i| request.get(&format!("{name}.member.{i}")))
            .map(|s| Value::String(s.to_string()))
            .collect();
        if !items.is_empty() {
            out.insert((*name).to_string(), Value::Array(items));
        }
    }
    Ok(Value::Object(out))
}

/// A structure from its dotted fields: `A.B` nests, `A.member.N[.F]` is list item N.
fn unflatten(fields: &BTreeMap<String, String>) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in fields {
        let parts: Vec<&str> = key.split('.').collect();
        insert(&mut root, &parts, value);
    }
    lists_in_order(root)
}

/// Places `value` at `path`; list items sit in maps keyed `#N` until [`lists_in_order`].
fn insert(node: &mut Value, path: &[&str], value: &str) {
    let Value::Object(map) = node else {
        return;
    };
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), Value::String(value.to_string()));
        }
        [list, "member", index, rest @ ..] => {
            let items = map
                .entry((*list).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(items) = items else {
                return;
            };
            let key = format!("#{index:0>6}");
            if rest.is_empty() {
                items.insert(key, Value::String(value.to_string()));
            } else {
                let item = items
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                insert(item, rest, value);
            }
        }
        [head, rest @ ..] => {
            let child = map
                .entry((*head).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            insert(child, rest, value);
        }
    }
}

/// Turns the `#N`-keyed maps [`insert`] builds into arrays in N order.
fn lists_in_order(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let is_list = !map.is_empty() && map.keys().all(|k| k.starts_with('#'));
            if is_list {
                // Keys are zero-padded, so the map's order is N order.
                Value::Array(map.into_iter().map(|(_, v)| lists_in_order(v)).collect())
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, lists_in_order(v)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// The XML result of an output's JSON value (`None` for an empty output).
pub fn query_output(output: &Value, timestamps: &[&str]) -> Option<Xml> {
    let Value::Object(map) = output else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    let mut xml = Xml::new();
    write_members(&mut xml, map, timestamps);
    Some(xml)
}

fn write_members(xml: &mut Xml, map: &Map<String, Value>, timestamps: &[&str]) {
    for (key, value) in map {
        write_value(
            xml,
            key,
            value,
            timestamps.contains(&key.as_str()),
            timestamps,
        );
    }
}

fn write_value(xml: &mut Xml, name: &str, value: &Value, is_time: bool, timestamps: &[&str]) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            xml.nest(name, |xml| write_members(xml, map, timestamps));
        }
        Value::Array(items) => {
            xml.nest(name, |xml| {
                for item in items {
                    write_value(xml, "member", item, is_time, timestamps);
                }
            });
        }
        Value::Number(n) if is_time => {
            xml.field(name, &timestamp(n.as_f64().unwrap_or(0.0)));
        }
        Value::Number(n) => {
            xml.field(name, &n.to_string());
        }
        Value::String(s) => {
            xml.field(name, s);
        }
        Value::Bool(b) => {
            xml.field(name, if *b { "true" } else { "false" });
        }
    }
}

/// Epoch seconds of an ISO 8601 time such as `2026-12-01T00:00:00Z`,
/// `2026-12-01T00:00:00.123456Z` or `2026-12-01T01:00:00+01:00`.
pub fn parse_iso8601(text: &str) -> Option<f64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: f64 = clock_parts.next().unwrap_or("0").parse().ok()?;
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= berth_core::civil::days_in_month(year, month)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..61.0).contains(&second);
    if !valid {
        return None;
    }
    let days = berth_core::civil::days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 - offset) as f64 + second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloudwatch_query_structures_unflatten_into_nested_lists() {
        let fields: BTreeMap<String, String> = [
            ("MetricName", "Hits"),
            ("Dimensions.member.2.Name", "B"),
            ("Dimensions.member.1.Name", "A"),
            ("Dimensions.member.1.Value", "1"),
            ("Dimensions.member.2.Value", "2"),
            ("Values.member.10", "10"),
            ("Values.member.2", "2"),
            ("StatisticValues.Sum", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            unflatten(&fields),
            json!({"MetricName": "Hits",
                "Dimensions": [{"Name": "A", "Value": "1"}, {"Name": "B", "Value": "2"}],
                "Values": ["2", "10"], "StatisticValues": {"Sum": "3"}})
        );
    }

    #[test]
    fn cloudwatch_query_output_writes_members_and_iso_times() {
        let xml = query_output(
            &json!({"Label": "a&b", "Datapoints": [{"Timestamp": 60, "Sum": 2.5}]}),
            &["Timestamp"],
        )
        .expect("a result")
        .into_string();
        assert_eq!(
            xml,
            "<Datapoints><member><Sum>2.5</Sum><Timestamp>1970-01-01T00:01:00Z</Timestamp></member></Datapoints><Label>a&amp;b</Label>"
        );
    }

    #[test]
    fn cloudwatch_reads_iso8601_times_with_fractions_and_offsets() {
        assert_eq!(parse_iso8601("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(parse_iso8601("1970-01-01T00:01:00.5Z"), Some(60.5));
        assert_eq!(parse_iso8601("1970-01-01T01:01:00+01:00"), Some(60.0));
        assert_eq!(parse_iso8601("1970-02-30T00:00:00Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
    }
}
