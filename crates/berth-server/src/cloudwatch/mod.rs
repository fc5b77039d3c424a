//! CloudWatch metrics on the endpoint (`GraniteServiceVersion20100801`), in the three
//! protocols its clients speak: `smithy-rpc-v2-cbor`, AWS JSON 1.0 and query. Series are kept
//! per (namespace, metric, dimensions, unit) at one-minute resolution, and per second for
//! high-resolution data (see [`store`]).
//!
//! Every operation takes its input as the JSON value of its input shape (CBOR decodes to it;
//! query parameters are gathered into it by [`wire`]) and answers the JSON value of its output
//! shape, which each protocol then writes in its own form.

pub mod alarms;
pub mod evaluate;
mod list;
mod metric_data;
mod statistics;
pub mod store;
mod wire;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use serde::Deserialize;
use serde_json::Value;

pub use statistics::STATISTICS;
pub use store::{MetricStore, SeriesKey, SeriesMap};

/// XML namespace of CloudWatch's query answers.
pub const NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// The output members that are timestamps, which CBOR sends as tag 1 and query as ISO 8601.
const TIMESTAMP_MEMBERS: &[&str] = &[
    "Timestamp",
    "Timestamps",
    "AlarmConfigurationUpdatedTimestamp",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
];

/// Statistics of the values seen in one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

impl StatisticSet {
    /// The statistics of one sample of `value`.
    pub fn single(value: f64) -> StatisticSet {
        StatisticSet {
            sample_count: 1.0,
            sum: value,
            minimum: value,
            maximum: value,
        }
    }
}

/// One datapoint to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub namespace: String,
    pub metric_name: String,
    /// (Name, Value) pairs.
    pub dimensions: Vec<(String, String)>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub statistics: StatisticSet,
    /// CloudWatch's unit name (`Percent`, `Bytes`, `None`, …).
    pub unit: String,
}

/// CloudWatch's `InvalidParameterValue`: a parameter is malformed or out of range.
fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterValue", message)
}

/// CloudWatch's `MissingParameter`: a required parameter is absent.
fn missing(name: &str) -> ApiError {
    ApiError::new(
        "MissingParameter",
        format!("The parameter {name} is required."),
    )
}

/// CloudWatch's `InvalidParameterCombination`: parameters that cannot go together.
fn combination(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterCombination", message)
}

/// The name of the model's error shape for an error code, which CBOR answers carry in
/// `__type` (the query code goes in `x-amzn-query-error`).
pub fn error_shape(code: &str) -> &str {
    match code {
        "InvalidParameterValue" => "InvalidParameterValueException",
        "MissingParameter" => "MissingRequiredParameterException",
        "InvalidParameterCombination" => "InvalidParameterCombinationException",
        "AccessDenied" => "AccessDeniedException",
        "LimitExceeded" => "LimitExceededFault",
        "InvalidFormat" => "InvalidFormatFault",
        "ServerException" => "InternalServiceFault",
        other => other,
    }
}

/// Checks `cloudwatch:<action>` for the caller (metric actions have no resource ARNs).
fn authorize(ctx: &Ctx, action: &str) -> Result<(), ApiError> {
    authorize_on(ctx, action, "*")
}

/// Checks `cloudwatch:<action>` on `resource` (an alarm's ARN) for the caller.
fn authorize_on(ctx: &Ctx, action: &str, resource: &str) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("cloudwatch:{action}"),
        resource,
        &Vec::new(),
        "AccessDenied",
    )
}

/// A scalar as JSON and CBOR send it, or as the text the query protocol sends.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Typed(T),
    Text(String),
}

impl<T: std::str::FromStr> Lenient<T> {
    fn value<E: serde::de::Error>(self) -> Result<T, E> {
        match self {
            Lenient::Typed(t) => Ok(t),
            Lenient::Text(text) => text.parse().map_err(|_| {
                E::custom(format!("'{text}' is not a value of this parameter's type"))
            }),
        }
    }
}

/// Reads an optional number or boolean from its value or its text.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
{
    Option::<Lenient<T>>::deserialize(d)?
        .map(Lenient::value)
        .transpose()
}

/// Reads an optional list of numbers from their values or their texts.
fn lenient_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
{
    Option::<Vec<Lenient<T>>>::deserialize(d)?
        .map(|items| items.into_iter().map(Lenient::value).collect())
        .transpose()
}

/// A dimension as the API spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Dimension {
    name: Option<String>,
    value: Option<String>,
}

/// A time as the protocols send it: epoch seconds (JSON, CBOR) or ISO 8601 text (query).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Time {
    Seconds(f64),
    Text(String),
}

impl Time {
    /// Epoch milliseconds, or what is wrong with `name`.
    fn millis(&self, name: &str) -> Result<i64, ApiError> {
        let bad = || {
            invalid_value(format!(
                "The parameter {name} must be a time: epoch seconds or ISO 8601 such as 2026-12-01T00:00:00Z."
            ))
        };
        let seconds = match self {
            Time::Seconds(s) => *s,
            Time::Text(text) => match text.parse::<f64>() {
                Ok(s) => s,
                Err(_) => wire::parse_iso8601(text).ok_or_else(bad)?,
            },
        };
        if !seconds.is_finite() || seconds.abs() > 1e13 {
            return Err(bad());
        }
        Ok((seconds * 1000.0).round() as i64)
    }
}

/// Checks a list of dimensions and returns them as sorted (Name, Value) pairs.
/// `at` names the structure holding them (empty for the input itself).
fn dimensions(list: &[Dimension], at: &str) -> Result<Vec<(String, String)>, ApiError> {
    let at = if at.is_empty() {
        "Dimensions".to_string()
    } else {
        format!("{at}.Dimensions")
    };
    if list.len() > 30 {
        return Err(invalid_value(format!(
            "The collection {at} must not have more than 30 members."
        )));
    }
    let mut pairs = Vec::with_capacity(list.len());
    for (i, dimension) in list.iter().enumerate() {
        let here = format!("{at}.member.{}", i + 1);
        let name = dimension
            .name
            .clone()
            .ok_or_else(|| missing(&format!("{here}.Name")))?;
        let value = dimension
            .value
            .clone()
            .ok_or_else(|| missing(&format!("{here}.Value")))?;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(invalid_value(format!(
                "The parameter {here}.Name must be 1 to 255 characters long."
            )));
        }
        if value.is_empty() || value.chars().count() > 1024 {
            return Err(invalid_value(format!(
                "The parameter {here}.Value must be 1 to 1024 characters long."
            )));
        }
        pairs.push((name, value));
    }
    pairs.sort();
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid_value(format!(
            "The dimension name {} appears more than once in {at}.",
            w[0].0
        )));
    }
    Ok(pairs)
}

/// The units of the model's `StandardUnit`.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks a unit name against CloudWatch's units.
fn unit(unit: Option<&str>, at: &str) -> Result<Option<String>, ApiError> {
    match unit {
        None => Ok(None),
        Some(u) if UNITS.contains(&u) => Ok(Some(u.to_string())),
        Some(u) => Err(invalid_value(format!(
            "The value {u} for parameter {at} is not a CloudWatch unit; use one of {}.",
            UNITS.join(", ")
        ))),
    }
}

/// Reads an operation's input from its JSON value, naming the member a bad value sits at.
fn input<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        invalid_value(format!("The value at {path} is not valid: {inner}."))
    })
}

/// Runs operation `op` on its input; returns its output.
async fn run(ctx: Ctx, op: &str, value: Value) -> Result<Value, ApiError> {
    let now = store::now_ms();
    match op {
        "PutMetricData" => {
            authorize(&ctx, op)?;
            metric_data::put_metric_data(&ctx.app.cloudwatch, input(value)?, now)
        }
        "GetMetricData" => {
            authorize(&ctx, op)?;
            metric_data::get_metric_data(&ctx.app.cloudwatch, input(value)?)
        }
        "GetMetricStatistics" => {
            authorize(&ctx, op)?;
            statistics::get_metric_statistics(&ctx.app.cloudwatch, input(value)?)
        }
        "ListMetrics" => {
            authorize(&ctx, op)?;
            list::list_metrics(&ctx.app.cloudwatch, input(value)?, now)
        }
        "PutMetricAlarm" => alarms::put_metric_alarm(&ctx, input(value)?).await,
        "DescribeAlarms" => alarms::describe_alarms(&ctx, input(value)?),
        "DescribeAlarmsForMetric" => alarms::describe_alarms_for_metric(&ctx, input(value)?),
        "DeleteAlarms" => alarms::delete_alarms(&ctx, input(value)?).await,
        "SetAlarmState" => alarms::set_alarm_state(&ctx, input(value)?).await,
        "DescribeAlarmHistory" => alarms::describe_alarm_history(&ctx, input(value)?),
        "EnableAlarmActions" => alarms::set_actions_enabled(&ctx, op, input(value)?, true).await,
        "DisableAlarmActions" => alarms::set_actions_enabled(&ctx, op, input(value)?, false).await,
        "TagResource" => alarms::tags::tag_resource(&ctx, input(value)?).await,
        "UntagResource" => alarms::tags::untag_resource(&ctx, input(value)?).await,
        "ListTagsForResource" => alarms::tags::list_tags(&ctx, input(value)?),
        other => Err(unknown(other)),
    }
}

fn unknown(op: &str) -> ApiError {
    ApiError::new(
        "InvalidAction",
        format!("'{op}' is not an operation Berth serves for GraniteServiceVersion20100801: it serves PutMetricData, GetMetricData, GetMetricStatistics, ListMetrics, PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState, DescribeAlarmHistory, EnableAlarmActions, DisableAlarmActions, TagResource, UntagResource and ListTagsForResource."),
    )
}

/// Runs operation `op` on the AWS JSON 1.0 `body`; returns the JSON answer.
pub async fn dispatch_json(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value = crate::protocol::json::parse_object(body)?;
    let output = run(ctx, op, value).await?;
    Ok(output.to_string().into_bytes())
}

/// Runs operation `op` on the CBOR `body`; returns the CBOR answer.
pub async fn dispatch_cbor(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value = crate::protocol::cbor::decode(body)?;
    let output = run(ctx, op, value).await?;
    Ok(crate::protocol::cbor::encode(&output, TIMESTAMP_MEMBERS))
}

/// Runs query action `request.action`; returns its result element.
pub async fn dispatch_query(ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    let value = wire::query_input(&request)?;
    let output = run(ctx, &request.action, value).await?;
    let result = wire::query_output(&output, TIMESTAMP_MEMBERS);
    // Actions whose (empty) output the model still wraps answer an empty result element.
    let wrapped = ["TagResource", "UntagResource"].contains(&request.action.as_str());
    Ok(result.or_else(|| wrapped.then(Xml::new)))
}
