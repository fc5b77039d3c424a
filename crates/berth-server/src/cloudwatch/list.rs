//! ListMetrics: the metrics (namespace, name, dimensions) that have data, filtered, 500 a page.

use super::store::MetricStore;
use super::{invalid_value, missing};
use crate::error::ApiError;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// Metrics per page.
const PAGE: usize = 500;
/// What `RecentlyActive: PT3H` means: data put in the past 3 hours.
const RECENT_MS: i64 = 3 * 3600 * 1000;

/// A dimension filter: a name, and optionally the value it must have.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionFilter {
    name: Option<String>,
    value: Option<String>,
}

/// ListMetrics' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMetricsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<DimensionFilter>,
    next_token: Option<String>,
    recently_active: Option<String>,
}

/// A metric as ListMetrics names it.
type MetricId = (String, String, Vec<(String, String)>);

fn token(after: &MetricId) -> String {
    let text = serde_json::to_string(after).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn after_of(token: &str) -> Result<MetricId, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::new(
                "InvalidNextToken",
                "The NextToken is not one ListMetrics returned; repeat the first call without it.",
            )
        })
}

/// ListMetrics: metrics matching every given filter (a dimension filter without a value
/// matches any value of that dimension), in name order, after the page token.
pub fn list_metrics(
    store: &MetricStore,
    input: ListMetricsInput,
    now: i64,
) -> Result<Value, ApiError> {
    let recent_since = match input.recently_active.as_deref() {
        None => None,
        Some("PT3H") => Some(now - RECENT_MS),
        Some(other) => {
            return Err(invalid_value(format!(
            "The value {other} for parameter RecentlyActive is not valid; the only value is PT3H."
        )))
        }
    };
    if input.dimensions.len() > 10 {
        return Err(invalid_value(
            "The collection Dimensions must not have more than 10 members.",
        ));
    }
    let mut filters = Vec::with_capacity(input.dimensions.len());
    for (i, filter) in input.dimensions.iter().enumerate() {
        let name = filter
            .name
            .clone()
            .ok_or_else(|| missing(&format!("Dimensions.member.{}.Name", i + 1)))?;
        filters.push((name, filter.value.clone()));
    }
    let after = input.next_token.as_deref().map(after_of).transpose()?;
    let matches = store.read(|series| {
        let mut found: Vec<MetricId> = Vec::new();
        for (key, series) in series {
            if input
                .namespace
                .as_ref()
                .is_some_and(|n| *n != key.namespace)
                || input
                    .metric_name
                    .as_ref()
                    .is_some_and(|n| *n != key.metric_name)
                || recent_since.is_some_and(|since| series.last_put < since)
            {
                continue;
            }
            let has_all = filters.iter().all(|(name, value)| {
                key.dimensions
                    .iter()
                    .any(|(n, v)| n == name && value.as_ref().is_none_or(|want| want == v))
            });
            if !has_all {
                continue;
            }
            let id = (
                key.namespace.clone(),
                key.metric_name.clone(),
                key.dimensions.clone(),
            );
            // Series of one metric in several units are adjacent: list the metric once.
            if found.last() != Some(&id) && after.as_ref().is_none_or(|a| id > *a) {
                found.push(id);
            }
        }
        found
    });
    let more = matches.len() > PAGE;
    let page = &matches[..matches.len().min(PAGE)];
    let metrics: Vec<Value> = page
        .iter()
        .map(|(namespace, name, dimensions)| {
            json!({
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": dimensions.iter()
                    .map(|(n, v)| json!({"Name": n, "Value": v}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({"Metrics": metrics});
    if let (true, Some(last)) = (more, page.last()) {
        out["NextToken"] = json!(token(last));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::{Datum, StatisticSet};

    const NOW: i64 = 1_796_083_200_000;

    fn datum(metric: &str, dims: &[(&str, &str)], unit: &str) -> (Datum, bool) {
        let one = StatisticSet::single(1.0);
        let datum = Datum {
            namespace: "App".into(),
            metric_name: metric.into(),
            dimensions: dims
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            timestamp: NOW - 1000,
            statistics: one,
            unit: unit.into(),
        };
        (datum, false)
    }

    fn list(store: &MetricStore, value: Value, now: i64) -> Result<Value, ApiError> {
        list_metrics(
            store,
            serde_json::from_value(value).expect("valid input"),
            now,
        )
    }

    #[test]
    fn list_metrics_filters_by_dimension_name_and_value_and_lists_units_once() {
        let store = MetricStore::default();
        store
            .put_at(
                vec![
                    datum("Hits", &[("Host", "a")], "Count"),
                    datum("Hits", &[("Host", "a")], "None"),
                    datum("Hits", &[("Host", "b"), ("Zone", "z")], "Count"),
                    datum("Errors", &[], "Count"),
                ],
                NOW,
            )
            .expect("stored");
        let all = list(&store, json!({}), NOW).expect("lists");
        assert_eq!(all["Metrics"].as_array().map(Vec::len), Some(3));
        let host = list(&store, json!({"Dimensions": [{"Name": "Host"}]}), NOW).expect("lists");
        assert_eq!(host["Metrics"].as_array().map(Vec::len), Some(2));
        let b = list(
            &store,
            json!({"Dimensions": [{"Name": "Host", "Value": "b"}]}),
            NOW,
        )
        .expect("lists");
        assert_eq!(
            b["Metrics"][0]["Dimensions"][1],
            json!({"Name": "Zone", "Value": "z"})
        );
        let later = NOW + 4 * 3600 * 1000;
        let recent = list(&store, json!({"RecentlyActive": "PT3H"}), later).expect("lists");
        assert_eq!(recent["Metrics"], json!([]));
        let bad = list(&store, json!({"NextToken": "x"}), NOW).expect_err("refused");
        assert_eq!(bad.name, "InvalidNextToken");
    }

    #[test]
    fn list_metrics_pages_by_five_hundred() {
        let store = MetricStore::default();
        let hosts: Vec<String> = (0..501).map(|i| format!("h{i:04}")).collect();
        let data = hosts
            .iter()
            .map(|h| datum("Hits", &[("Host", h)], "Count"))
            .collect();
        store.put_at(data, NOW).expect("stored");
        let first = list(&store, json!({}), NOW).expect("page 1");
        assert_eq!(first["Metrics"].as_array().map(Vec::len), Some(500));
        let token = first["NextToken"].as_str().expect("a token");
        let second = list(&store, json!({"NextToken": token}), NOW).expect("page 2");
        assert_eq!(second["Metrics"].as_array().map(Vec::len), Some(1));
        assert!(second.get("NextToken").is_none());
    }
}
