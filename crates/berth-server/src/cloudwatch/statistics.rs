//! GetMetricStatistics: the statistics of one metric (exact dimensions) per period between two
//! times, and the period arithmetic GetMetricData shares.

use super::store::{merge, MetricStore, SeriesKey};
use super::{
    combination, dimensions, invalid_value, lenient, missing, unit, Dimension, StatisticSet, Time,
};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The most datapoints one GetMetricStatistics call returns.
const MAX_DATAPOINTS: i64 = 1440;

/// The statistics CloudWatch computes from a [`StatisticSet`].
pub const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// GetMetricStatistics' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatisticsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    start_time: Option<Time>,
    end_time: Option<Time>,
    #[serde(default, deserialize_with = "lenient")]
    period: Option<i64>,
    #[serde(default)]
    statistics: Vec<String>,
    #[serde(default)]
    extended_statistics: Vec<String>,
    unit: Option<String>,
}

/// Which metric and which cells a read covers.
#[derive(Debug, Clone)]
pub struct Selection {
    pub namespace: String,
    pub metric_name: String,
    /// Sorted (Name, Value) pairs, matched exactly.
    pub dimensions: Vec<(String, String)>,
    /// Only series of this unit, if given.
    pub unit: Option<String>,
    /// Epoch milliseconds, start inclusive and end exclusive.
    pub start: i64,
    pub end: i64,
    /// Seconds.
    pub period: i64,
}

/// Per period start (epoch ms) and unit, the statistics of the period.
pub type Buckets = BTreeMap<(i64, String), StatisticSet>;

/// The longest period: a year (longer ones would reach past any retention).
const MAX_PERIOD: i64 = 365 * 24 * 3600;

/// Checks a period: 1, 5, 10, 30 or a multiple of 60 seconds, at most a year.
pub fn check_period(period: i64, at: &str) -> Result<(), ApiError> {
    let regular = (60..=MAX_PERIOD).contains(&period) && period % 60 == 0;
    if regular || [1, 5, 10, 30].contains(&period) {
        Ok(())
    } else {
        Err(invalid_value(format!(
            "The parameter {at} must be 1, 5, 10, 30 or a multiple of 60 seconds up to {MAX_PERIOD}; {period} is not."
        )))
    }
}

/// The `StartTime` and `EndTime` a request must give, as epoch milliseconds, start before end.
pub(super) fn time_range(start: Option<&Time>, end: Option<&Time>) -> Result<(i64, i64), ApiError> {
    let start = start
        .ok_or_else(|| missing("StartTime"))?
        .millis("StartTime")?;
    let end = end.ok_or_else(|| missing("EndTime"))?.millis("EndTime")?;
    if start >= end {
        return Err(invalid_value(
            "The parameter StartTime must be earlier than the parameter EndTime.",
        ));
    }
    Ok((start, end))
}

/// The statistics of the selected series per period. Periods start at the start time,
/// rounded down to the minute (to the second for sub-minute periods); sub-minute periods read
/// the high-resolution cells, which are kept for 3 hours.
pub fn buckets(store: &MetricStore, selection: &Selection) -> Buckets {
    let grain = if selection.period < 60 { 1000 } else { 60_000 };
    let origin = selection.start.div_euclid(grain) * grain;
    let period = selection.period * 1000;
    store.read(|series| {
        let mut out = Buckets::new();
        let first = SeriesKey {
            namespace: selection.namespace.clone(),
            metric_name: selection.metric_name.clone(),
            dimensions: selection.dimensions.clone(),
            unit: String::new(),
        };
        // Keys order by (namespace, metric, dimensions, unit): the units of one metric are
        // adjacent.
        for (key, series) in series.range(first..) {
            if key.namespace != selection.namespace
                || key.metric_name != selection.metric_name
                || key.dimensions != selection.dimensions
            {
                break;
            }
            if selection.unit.as_ref().is_some_and(|u| *u != key.unit) {
                continue;
            }
            let cells = if selection.period < 60 {
                &series.seconds
            } else {
                &series.minutes
            };
            for (start, set) in cells.range(origin..selection.end) {
                let bucket = origin + (start - origin) / period * period;
                out.entry((bucket, key.unit.clone()))
                    .and_modify(|b| merge(b, set))
                    .or_insert(*set);
            }
        }
        out
    })
}

impl MetricStore {
    /// The statistics of one metric (exact dimensions, every unit merged) per `period_seconds`
    /// between `start` and `end` (epoch milliseconds), oldest first: what alarms and
    /// autoscaling read. Periods start at `start` rounded down to the minute.
    pub fn period_statistics(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(String, String)],
        start: i64,
        end: i64,
        period_seconds: i64,
    ) -> Vec<(i64, StatisticSet)> {
        if start >= end || period_seconds <= 0 {
            return Vec::new();
        }
        let mut dimensions = dimensions.to_vec();
        dimensions.sort();
        let selection = Selection {
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions,
            unit: None,
            start,
            end,
            period: period_seconds,
        };
        let mut periods: BTreeMap<i64, StatisticSet> = BTreeMap::new();
        for ((at, _), set) in buckets(self, &selection) {
            periods
                .entry(at)
                .and_modify(|p| merge(p, &set))
                .or_insert(set);
        }
        periods.into_iter().collect()
    }
}

/// One statistic of a period's set.
pub fn statistic(set: &StatisticSet, name: &str) -> f64 {
    match name {
        "SampleCount" => set.sample_count,
        "Sum" => set.sum,
        "Minimum" => set.minimum,
        "Maximum" => set.maximum,
        _ if set.sample_count > 0.0 => set.sum / set.sample_count,
        _ => 0.0,
    }
}

/// GetMetricStatistics: the requested statistics of one metric per period, each datapoint
/// with its unit.
pub fn get_metric_statistics(
    store: &MetricStore,
    input: GetMetricStatisticsInput,
) -> Result<Value, ApiError> {
    let namespace = input.namespace.ok_or_else(|| missing("Namespace"))?;
    let metric_name = input.metric_name.ok_or_else(|| missing("MetricName"))?;
    let (start, end) = time_range(input.start_time.as_ref(), input.end_time.as_ref())?;
    let period = input.period.ok_or_else(|| missing("Period"))?;
    check_period(period, "Period")?;
    if !input.extended_statistics.is_empty() {
        return Err(invalid_value(
            "Berth does not compute ExtendedStatistics (percentiles); ask for Statistics (SampleCount, Average, Sum, Minimum, Maximum).",
        ));
    }
    if input.statistics.is_empty() {
        return Err(missing("Statistics"));
    }
    if input.statistics.len() > 5 {
        return Err(invalid_value(
            "The collection Statistics must not have more than 5 members.",
        ));
    }
    for name in &input.statistics {
        if !STATISTICS.contains(&name.as_str()) {
            return Err(invalid_value(format!(
                "The value {name} for parameter Statistics is not valid; use SampleCount, Average, Sum, Minimum or Maximum."
            )));
        }
    }
    let requested = (end - start + period * 1000 - 1) / (period * 1000);
    if requested > MAX_DATAPOINTS {
        return Err(combination(format!(
            "You have requested up to {requested} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. Ask for a larger Period or a shorter time range."
        )));
    }
    let selection = Selection {
        namespace,
        dimensions: dimensions(&input.dimensions, "")?,
        unit: unit(input.unit.as_deref(), "Unit")?,
        metric_name,
        start,
        end,
        period,
    };
    let datapoints: Vec<Value> = buckets(store, &selection)
        .iter()
        .map(|((at, unit), set)| {
            let mut point = Map::new();
            point.insert("Timestamp".into(), json!(*at as f64 / 1000.0));
            for name in &input.statistics {
                point.insert(name.clone(), json!(statistic(set, name)));
            }
            point.insert("Unit".into(), json!(unit));
            Value::Object(point)
        })
        .collect();
    Ok(json!({"Label": selection.metric_name, "Datapoints": datapoints}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::Datum;

    fn point(at: i64, value: f64, unit: &str) -> Datum {
        Datum {
            namespace: "App".into(),
            metric_name: "Latency".into(),
            dimensions: vec![("Host".into(), "a".into())],
            timestamp: at,
            statistics: StatisticSet::single(value),
            unit: unit.into(),
        }
    }

    const T0: i64 = 1_796_083_200_000;

    fn input(value: Value) -> GetMetricStatisticsInput {
        serde_json::from_value(value).expect("a valid input")
    }

    #[test]
    fn statistics_aggregate_minutes_into_periods_per_unit() {
        let store = MetricStore::default();
        store
            .put_at(
                vec![
                    (point(T0 + 1_000, 1.0, "Milliseconds"), false),
                    (point(T0 + 61_000, 5.0, "Milliseconds"), false),
                    (point(T0 + 121_000, 9.0, "Milliseconds"), false),
                    (point(T0 + 1_000, 2.0, "Seconds"), false),
                ],
                T0 + 200_000,
            )
            .expect("stored");
        let out = get_metric_statistics(
            &store,
            input(json!({"Namespace": "App", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}],
                "StartTime": T0 / 1000, "EndTime": T0 / 1000 + 180, "Period": 120,
                "Statistics": ["Average", "Maximum", "SampleCount"]})),
        )
        .expect("answers");
        assert_eq!(
            out["Datapoints"],
            json!([
                {"Timestamp": (T0 / 1000) as f64, "Average": 3.0, "Maximum": 5.0, "SampleCount": 2.0, "Unit": "Milliseconds"},
                {"Timestamp": (T0 / 1000) as f64, "Average": 2.0, "Maximum": 2.0, "SampleCount": 1.0, "Unit": "Seconds"},
                {"Timestamp": (T0 / 1000 + 120) as f64, "Average": 9.0, "Maximum": 9.0, "SampleCount": 1.0, "Unit": "Milliseconds"},
            ])
        );
    }

    #[test]
    fn period_statistics_merge_units_for_autoscaling_reads() {
        let store = MetricStore::default();
        store
            .put_at(
                vec![
                    (point(T0 + 1_000, 1.0, "Percent"), false),
                    (point(T0 + 2_000, 3.0, "None"), false),
                ],
                T0 + 60_000,
            )
            .expect("stored");
        let dims = [("Host".to_string(), "a".to_string())];
        let periods = store.period_statistics("App", "Latency", &dims, T0, T0 + 60_000, 60);
        assert_eq!(periods.len(), 1);
        assert_eq!(
            (periods[0].0, periods[0].1.sample_count, periods[0].1.sum),
            (T0, 2.0, 4.0)
        );
        assert!(store
            .period_statistics("App", "Latency", &[], T0, T0 + 60_000, 60)
            .is_empty());
    }

    #[test]
    fn statistics_refuse_bad_periods_percentiles_and_too_many_points() {
        let store = MetricStore::default();
        let base = json!({"Namespace": "App", "MetricName": "Latency", "StartTime": 0,
            "EndTime": 3600, "Period": 60, "Statistics": ["Sum"]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            input(b)
        };
        let name = |r: Result<Value, ApiError>| r.expect_err("refused").name;
        assert_eq!(
            name(get_metric_statistics(&store, with("Period", json!(90)))),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(get_metric_statistics(&store, with("EndTime", json!(0)))),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(get_metric_statistics(
                &store,
                with("Statistics", json!(["p99"]))
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(get_metric_statistics(
                &store,
                with("ExtendedStatistics", json!(["p99"]))
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            name(get_metric_statistics(
                &store,
                with("EndTime", json!(3600 * 48))
            )),
            "InvalidParameterCombination"
        );
        assert_eq!(
            name(get_metric_statistics(&store, with("Statistics", json!([])))),
            "MissingParameter"
        );
        assert_eq!(
            name(get_metric_statistics(
                &store,
                with("Period", json!(i64::MAX / 60 * 60))
            )),
            "InvalidParameterValue"
        );
        assert!(get_metric_statistics(&store, with("Period", json!(3600))).is_ok());
    }
}
