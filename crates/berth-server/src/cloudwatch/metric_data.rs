//! PutMetricData, which publishes datapoints, and GetMetricData, which reads statistics of
//! several metrics at once.

use super::statistics::{buckets, check_period, statistic, time_range, Selection, STATISTICS};
use super::store::MetricStore;
use super::{
    combination, dimensions, invalid_value, lenient, lenient_list, missing, unit, Datum, Dimension,
    StatisticSet, Time,
};
use crate::error::ApiError;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// The most metrics one PutMetricData call carries.
const MAX_METRICS: usize = 1000;
/// The most values one datum's `Values` carries.
const MAX_VALUES: usize = 150;
/// How far in the past and the future a datum's timestamp may be (2 weeks, 2 hours).
const PAST_LIMIT_MS: i64 = 14 * 24 * 3600 * 1000;
const FUTURE_LIMIT_MS: i64 = 2 * 3600 * 1000;
/// The largest magnitude CloudWatch accepts, and the smallest non-zero one.
const MAX_MAGNITUDE: f64 = 1.174271e108;
const MIN_MAGNITUDE: f64 = 8.515920e-109;
/// The most queries in one GetMetricData call.
const MAX_QUERIES: usize = 500;
/// GetMetricData's default and largest page, in datapoints.
const MAX_DATAPOINTS: usize = 100_800;

/// A statistic set as PutMetricData sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatisticValues {
    #[serde(default, deserialize_with = "lenient")]
    sample_count: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    sum: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    minimum: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    maximum: Option<f64>,
}

/// One datum of PutMetricData.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDatum {
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    timestamp: Option<Time>,
    #[serde(default, deserialize_with = "lenient")]
    value: Option<f64>,
    statistic_values: Option<StatisticValues>,
    #[serde(default, deserialize_with = "lenient_list")]
    values: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "lenient_list")]
    counts: Option<Vec<f64>>,
    unit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    storage_resolution: Option<i64>,
}

/// PutMetricData's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricDataInput {
    namespace: Option<String>,
    #[serde(default)]
    metric_data: Vec<MetricDatum>,
    #[serde(default)]
    entity_metric_data: Vec<Value>,
}

/// Checks a datapoint value's magnitude.
fn check_value(value: f64, at: &str) -> Result<f64, ApiError> {
    let magnitude = value.abs();
    if magnitude > MAX_MAGNITUDE || (magnitude != 0.0 && magnitude < MIN_MAGNITUDE) {
        return Err(invalid_value(format!(
            "The value {value} for parameter {at} is outside the range CloudWatch stores (zero or a magnitude between 8.515920e-109 and 1.174271e+108)."
        )));
    }
    Ok(value)
}

/// The statistics one datum carries: a single `Value`, a `StatisticValues` set, or `Values`
/// each seen `Counts` times (once by default).
fn datum_statistics(datum: &MetricDatum, at: &str) -> Result<StatisticSet, ApiError> {
    let given = [
        datum.value.is_some(),
        datum.statistic_values.is_some(),
        datum.values.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(combination(format!(
            "The parameters {at}.Value, {at}.StatisticValues and {at}.Values are mutually exclusive: give one."
        )));
    }
    if datum.counts.is_some() && datum.values.is_none() {
        return Err(combination(format!(
            "The parameter {at}.Counts goes with {at}.Values."
        )));
    }
    if let Some(value) = datum.value {
        let value = check_value(value, &format!("{at}.Value"))?;
        return Ok(StatisticSet::single(value));
    }
    if let Some(set) = &datum.statistic_values {
        let here = format!("{at}.StatisticValues");
        let field = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| missing(&format!("{here}.{name}")))
                .and_then(|v| check_value(v, &format!("{here}.{name}")))
        };
        let set = StatisticSet {
            sample_count: field(set.sample_count, "SampleCount")?,
            sum: field(set.sum, "Sum")?,
            minimum: field(set.minimum, "Minimum")?,
            maximum: field(set.maximum, "Maximum")?,
        };
        if set.sample_count <= 0.0 || set.minimum > set.maximum {
            return Err(invalid_value(format!(
                "The parameter {here} must have a SampleCount above zero and a Minimum no greater than its Maximum."
            )));
        }
        return Ok(set);
    }
    let Some(values) = &datum.values else {
        return Err(missing(&format!("{at}.Value")));
    };
    if values.is_empty() || values.len() > MAX_VALUES {
        return Err(invalid_value(format!(
            "The collection {at}.Values must have 1 to {MAX_VALUES} members."
        )));
    }
    let counts = match &datum.counts {
        Some(counts) if counts.len() != values.len() => {
            return Err(invalid_value(format!(
                "The collections {at}.Values and {at}.Counts must have as many members."
            )))
        }
        Some(counts) => counts.clone(),
        None => vec![1.0; values.len()],
    };
    let mut set = StatisticSet {
        sample_count: 0.0,
        sum: 0.0,
        minimum: f64::INFINITY,
        maximum: f64::NEG_INFINITY,
    };
    for (i, (value, count)) in values.iter().zip(&counts).enumerate() {
        let value = check_value(*value, &format!("{at}.Values.member.{}", i + 1))?;
        if *count < 0.0 {
            return Err(invalid_value(format!(
                "The parameter {at}.Counts.member.{} must not be negative.",
                i + 1
            )));
        }
        if *count > 0.0 {
            set.sample_count += count;
            set.sum += value * count;
            set.minimum = set.minimum.min(value);
            set.maximum = set.maximum.max(value);
        }
    }
    if set.sample_count == 0.0 {
        return Err(invalid_value(format!(
            "The parameter {at}.Counts must count at least one value."
        )));
    }
    Ok(set)
}

/// PutMetricData: checks every datum, then stores them all (or none).
pub fn put_metric_data(
    store: &MetricStore,
    input: PutMetricDataInput,
    now: i64,
) -> Result<Value, ApiError> {
    let namespace = input.namespace.ok_or_else(|| missing("Namespace"))?;
    if namespace.is_empty() || namespace.chars().count() > 255 || namespace.starts_with(':') {
        return Err(invalid_value(
            "The parameter Namespace must be 1 to 255 characters long and not start with ':'.",
        ));
    }
    if namespace.starts_with("AWS/") {
        return Err(invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid: namespaces starting with AWS/ are reserved for AWS services."
        )));
    }
    if !input.entity_metric_data.is_empty() {
        return Err(invalid_value(
            "Berth does not store EntityMetricData; send the datapoints as MetricData.",
        ));
    }
    if input.metric_data.is_empty() {
        return Err(missing("MetricData"));
    }
    if input.metric_data.len() > MAX_METRICS {
        return Err(invalid_value(format!(
            "The collection MetricData must not have more than {MAX_METRICS} members."
        )));
    }
    let mut data = Vec::with_capacity(input.metric_data.len());
    for (i, datum) in input.metric_data.iter().enumerate() {
        let at = format!("MetricData.member.{}", i + 1);
        let metric_name = datum
            .metric_name
            .clone()
            .ok_or_else(|| missing(&format!("{at}.MetricName")))?;
        if metric_name.is_empty() || metric_name.chars().count() > 255 {
            return Err(invalid_value(format!(
                "The parameter {at}.MetricName must be 1 to 255 characters long."
            )));
        }
        let timestamp = match &datum.timestamp {
            Some(time) => time.millis(&format!("{at}.Timestamp"))?,
            None => now,
        };
        if timestamp < now - PAST_LIMIT_MS || timestamp > now + FUTURE_LIMIT_MS {
            return Err(invalid_value(format!(
                "The parameter {at}.Timestamp must be within the past two weeks and the next two hours."
            )));
        }
        let high_resolution = match datum.storage_resolution {
            None | Some(60) => false,
            Some(1) => true,
            Some(other) => {
                return Err(invalid_value(format!(
                "The value {other} for parameter {at}.StorageResolution is not valid; use 1 or 60."
            )))
            }
        };
        let datum = Datum {
            namespace: namespace.clone(),
            metric_name,
            dimensions: dimensions(&datum.dimensions, &at)?,
            timestamp,
            statistics: datum_statistics(datum, &at)?,
            unit: unit(datum.unit.as_deref(), &format!("{at}.Unit"))?
                .unwrap_or_else(|| "None".to_string()),
        };
        data.push((datum, high_resolution));
    }
    store.put_at(data, now)?;
    Ok(json!({}))
}

/// A metric as GetMetricData and ListMetrics name it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metric {
    namespace: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
}

/// A metric, a period and a statistic.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStat {
    metric: Option<Metric>,
    #[serde(default, deserialize_with = "lenient")]
    period: Option<i64>,
    stat: Option<String>,
    unit: Option<String>,
}

/// One query of GetMetricData.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataQuery {
    id: Option<String>,
    metric_stat: Option<MetricStat>,
    expression: Option<String>,
    label: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    return_data: Option<bool>,
}

/// GetMetricData's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    #[serde(default)]
    metric_data_queries: Vec<MetricDataQuery>,
    start_time: Option<Time>,
    end_time: Option<Time>,
    next_token: Option<String>,
    scan_by: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    max_datapoints: Option<i64>,
}

/// A page token: how many datapoints earlier pages returned.
fn token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("gmd:{offset}"))
}

fn offset_of(token: &str) -> Result<usize, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("gmd:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            ApiError::new(
                "InvalidNextToken",
                "The NextToken is not one GetMetricData returned; repeat the first call without it.",
            )
        })
}

/// Checks a query and reads what it selects (`None` for ReturnData false).
fn selection(
    query: &MetricDataQuery,
    at: &str,
    start: i64,
    end: i64,
) -> Result<Selection, ApiError> {
    if query.expression.is_some() {
        return Err(invalid_value(format!(
            "Berth does not evaluate metric math: {at}.Expression is not supported; give a MetricStat."
        )));
    }
    let stat = query
        .metric_stat
        .as_ref()
        .ok_or_else(|| missing(&format!("{at}.MetricStat")))?;
    let here = format!("{at}.MetricStat");
    let metric = stat
        .metric
        .as_ref()
        .ok_or_else(|| missing(&format!("{here}.Metric")))?;
    let period = stat
        .period
        .ok_or_else(|| missing(&format!("{here}.Period")))?;
    check_period(period, &format!("{here}.Period"))?;
    let name = stat
        .stat
        .as_deref()
        .ok_or_else(|| missing(&format!("{here}.Stat")))?;
    if !STATISTICS.contains(&name) {
        return Err(invalid_value(format!(
            "The value {name} for parameter {here}.Stat is not supported; Berth computes SampleCount, Average, Sum, Minimum and Maximum (no percentiles)."
        )));
    }
    Ok(Selection {
        namespace: metric
            .namespace
            .clone()
            .ok_or_else(|| missing(&format!("{here}.Metric.Namespace")))?,
        metric_name: metric
            .metric_name
            .clone()
            .ok_or_else(|| missing(&format!("{here}.Metric.MetricName")))?,
        dimensions: dimensions(&metric.dimensions, &format!("{here}.Metric"))?,
        unit: unit(stat.unit.as_deref(), &format!("{here}.Unit"))?,
        start,
        end,
        period,
    })
}

/// GetMetricData: per query, the statistic of its metric per period, newest first unless
/// ScanBy is TimestampAscending; pages of at most MaxDatapoints datapoints in all.
pub fn get_metric_data(store: &MetricStore, input: GetMetricDataInput) -> Result<Value, ApiError> {
    let (start, end) = time_range(input.start_time.as_ref(), input.end_time.as_ref())?;
    if input.metric_data_queries.is_empty() {
        return Err(missing("MetricDataQueries"));
    }
    if input.metric_data_queries.len() > MAX_QUERIES {
        return Err(invalid_value(format!(
            "The collection MetricDataQueries must not have more than {MAX_QUERIES} members."
        )));
    }
    let descending = match input.scan_by.as_deref() {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => {
            return Err(invalid_value(format!(
                "The value {other} for parameter ScanBy is not valid; use TimestampDescending or TimestampAscending."
            )))
        }
    };
    let page = match input.max_datapoints {
        None => MAX_DATAPOINTS,
        Some(n) if n >= 1 && n as usize <= MAX_DATAPOINTS => n as usize,
        Some(n) => {
            return Err(invalid_value(format!(
                "The value {n} for parameter MaxDatapoints must be 1 to {MAX_DATAPOINTS}."
            )))
        }
    };
    let mut skip = input
        .next_token
        .as_deref()
        .map(offset_of)
        .transpose()?
        .unwrap_or(0);
    let mut ids = std::collections::HashSet::new();
    let mut checked = Vec::new();
    for (i, query) in input.metric_data_queries.iter().enumerate() {
        let at = format!("MetricDataQueries.member.{}", i + 1);
        let id = query
            .id
            .clone()
            .ok_or_else(|| missing(&format!("{at}.Id")))?;
        let well_formed = id.len() <= 255
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(invalid_value(format!(
                "The Id {id} of {at} must start with a lowercase letter and hold only letters, digits and underscores."
            )));
        }
        if !ids.insert(id.clone()) {
            return Err(invalid_value(format!(
                "The Id {id} is used by more than one query in MetricDataQueries."
            )));
        }
        let selection = selection(query, &at, start, end)?;
        checked.push((id, query, selection));
    }
    let mut taken = 0usize;
    let mut offset = skip;
    let mut more = false;
    let mut results = Vec::new();
    for (id, query, selection) in checked {
        if query.return_data == Some(false) {
            continue;
        }
        let stat = query
            .metric_stat
            .as_ref()
            .and_then(|s| s.stat.clone())
            .unwrap_or_default();
        // Periods of all units of the metric merge into one series.
        let mut periods: std::collections::BTreeMap<i64, StatisticSet> = Default::default();
        for ((at, _), set) in buckets(store, &selection) {
            periods
                .entry(at)
                .and_modify(|p| super::store::merge(p, &set))
                .or_insert(set);
        }
        let mut points: Vec<(i64, f64)> = periods
            .iter()
            .map(|(at, set)| (*at, statistic(set, &stat)))
            .collect();
        if descending {
            points.reverse();
        }
        let skipped = skip.min(points.len());
        skip -= skipped;
        let room = page - taken;
        let shown: Vec<(i64, f64)> = points[skipped..].iter().take(room).copied().collect();
        let complete = skipped + shown.len() == points.len();
        taken += shown.len();
        offset += shown.len();
        more |= !complete;
        results.push(json!({
            "Id": id,
            "Label": query.label.clone().unwrap_or_else(|| selection.metric_name.clone()),
            "Timestamps": shown.iter().map(|(at, _)| *at as f64 / 1000.0).collect::<Vec<_>>(),
            "Values": shown.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            "StatusCode": if complete { "Complete" } else { "PartialData" },
        }));
    }
    let mut out = json!({"MetricDataResults": results, "Messages": []});
    if more {
        out["NextToken"] = json!(token(offset));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_083_200_000;

    fn put(store: &MetricStore, value: Value) -> Result<Value, ApiError> {
        put_metric_data(
            store,
            serde_json::from_value(value).expect("valid input"),
            NOW,
        )
    }

    fn get(store: &MetricStore, value: Value) -> Result<Value, ApiError> {
        get_metric_data(store, serde_json::from_value(value).expect("valid input"))
    }

    #[test]
    fn put_metric_data_accepts_values_counts_and_statistic_sets() {
        let store = MetricStore::default();
        let t = NOW / 1000 - 600;
        put(
            &store,
            json!({"Namespace": "App", "MetricData": [
                {"MetricName": "M", "Timestamp": t, "Values": [1, 3], "Counts": [2, 1]},
                {"MetricName": "M", "Timestamp": t, "StatisticValues":
                    {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6}},
            ]}),
        )
        .expect("stored");
        let out = get(
            &store,
            json!({"StartTime": t - 60, "EndTime": t + 60,
            "MetricDataQueries": [
                {"Id": "sum", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "M"},
                    "Period": 60, "Stat": "Sum"}},
                {"Id": "max", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "M"},
                    "Period": 60, "Stat": "Maximum"}, "Label": "peak"},
                {"Id": "n", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "App",
                    "MetricName": "M"}, "Period": 60, "Stat": "SampleCount"}}]}),
        )
        .expect("read");
        let results = out["MetricDataResults"].as_array().expect("results");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["Values"], json!([15.0]));
        assert_eq!(results[1]["Values"], json!([6.0]));
        assert_eq!(results[1]["Label"], json!("peak"));
        assert_eq!(results[0]["StatusCode"], json!("Complete"));
        assert!(out.get("NextToken").is_none());
    }

    #[test]
    fn put_metric_data_refuses_bad_input_and_writes_nothing() {
        let store = MetricStore::default();
        let name = |r: Result<Value, ApiError>| r.expect_err("refused").name;
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "AWS/ECS", "MetricData": [
            {"MetricName": "M", "Value": 1}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"MetricData": [{"MetricName": "M", "Value": 1}]})
            )),
            "MissingParameter"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 1},
            {"MetricName": "M", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1,
                "Minimum": 1, "Maximum": 1}}]})
            )),
            "InvalidParameterCombination"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 1, "Unit": "Parsecs"}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 1, "Timestamp": NOW / 1000 - 30 * 86400}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 1, "StorageResolution": 5}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 1, "Dimensions": [{"Name": "A", "Value": "1"},
                {"Name": "A", "Value": "2"}]}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(put(
                &store,
                json!({"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Values": [1, 2], "Counts": [1]}]})
            )),
            "InvalidParameterValue"
        );
        let many: Vec<Value> = (0..1001)
            .map(|_| json!({"MetricName": "M", "Value": 1}))
            .collect();
        assert_eq!(
            name(put(&store, json!({"Namespace": "App", "MetricData": many}))),
            "InvalidParameterValue"
        );
        assert!(
            store.read(|s| s.is_empty()),
            "nothing of a refused call is stored"
        );
    }

    #[test]
    fn get_metric_data_pages_by_max_datapoints_newest_first() {
        let store = MetricStore::default();
        let data: Vec<Value> = (0..5)
            .map(|i| json!({"MetricName": "M", "Value": i, "Timestamp": NOW / 1000 - 600 + 60 * i}))
            .collect();
        put(&store, json!({"Namespace": "App", "MetricData": data})).expect("stored");
        let request = |token: Option<&str>| {
            let mut r = json!({"StartTime": NOW / 1000 - 900, "EndTime": NOW / 1000,
                "MaxDatapoints": 3, "MetricDataQueries": [{"Id": "a", "MetricStat": {"Metric":
                {"Namespace": "App", "MetricName": "M"}, "Period": 60, "Stat": "Average"}}]});
            if let Some(t) = token {
                r["NextToken"] = json!(t);
            }
            r
        };
        let first = get(&store, request(None)).expect("page 1");
        assert_eq!(
            first["MetricDataResults"][0]["Values"],
            json!([4.0, 3.0, 2.0])
        );
        assert_eq!(
            first["MetricDataResults"][0]["StatusCode"],
            json!("PartialData")
        );
        let token = first["NextToken"].as_str().expect("a token").to_string();
        let second = get(&store, request(Some(&token))).expect("page 2");
        assert_eq!(second["MetricDataResults"][0]["Values"], json!([1.0, 0.0]));
        assert!(second.get("NextToken").is_none());
        let bad = get(&store, request(Some("nope"))).expect_err("refused");
        assert_eq!(bad.name, "InvalidNextToken");
    }

    #[test]
    fn get_metric_data_refuses_expressions_percentiles_and_duplicate_ids() {
        let store = MetricStore::default();
        let q = |queries: Value| {
            get(
                &store,
                json!({"StartTime": 0, "EndTime": 60,
            "MetricDataQueries": queries}),
            )
            .expect_err("refused")
            .name
        };
        assert_eq!(
            q(json!([{"Id": "e", "Expression": "SUM(METRICS())"}])),
            "InvalidParameterValue"
        );
        let stat =
            json!({"Metric": {"Namespace": "App", "MetricName": "M"}, "Period": 60, "Stat": "p99"});
        assert_eq!(
            q(json!([{"Id": "a", "MetricStat": stat}])),
            "InvalidParameterValue"
        );
        let ok =
            json!({"Metric": {"Namespace": "App", "MetricName": "M"}, "Period": 60, "Stat": "Sum"});
        assert_eq!(
            q(json!([{"Id": "a", "MetricStat": ok}, {"Id": "a", "MetricStat": ok}])),
            "InvalidParameterValue"
        );
        assert_eq!(
            q(json!([{"Id": "A", "MetricStat": ok}])),
            "InvalidParameterValue"
        );
    }
}
