//! Alarms through the JSON protocol on an in-memory server, and their evaluation over
//! datapoints put into its metric store at chosen times.

use super::{alarm_key, Alarm};
use crate::app::App;
use crate::cloudwatch::evaluate::{evaluate, evaluate_all, periods};
use serde_json::{json, Value};
use std::sync::Arc;

crate::json_service_calls!(crate::cloudwatch::dispatch_json);

/// 2026-12-01T00:00:00Z in epoch milliseconds: a minute boundary.
const T0: i64 = 1_796_083_200_000;
const MINUTE: i64 = 60_000;

fn cpu_alarm(name: &str) -> Value {
    json!({
        "AlarmName": name, "Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ServiceName", "Value": "web"}, {"Name": "ClusterName", "Value": "default"}],
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 3, "Threshold": 50.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x"],
    })
}

fn cpu(app: &App, at: i64, value: f64) {
    crate::test_support::put_service_cpu(app, "default", "web", at, value);
}

fn stored(app: &App, name: &str) -> Alarm {
    app.get::<Alarm>(&alarm_key(name))
        .expect("read")
        .expect("stored")
        .value
}

#[tokio::test]
async fn an_alarm_is_created_described_updated_and_deleted() {
    let app = crate::test_support::app().await;
    ok(&app, "PutMetricAlarm", cpu_alarm("high-cpu")).await;
    let described = ok(&app, "DescribeAlarms", json!({"AlarmNames": ["high-cpu"]})).await;
    let alarm = &described["MetricAlarms"][0];
    assert_eq!(alarm["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(alarm["StateReason"], "Unchecked: Initial alarm creation");
    assert_eq!(
        alarm["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high-cpu"
    );
    assert_eq!(alarm["Dimensions"][0]["Name"], "ClusterName", "sorted");
    assert_eq!(described["CompositeAlarms"], json!([]));

    // SetAlarmState holds until the next evaluation; an update keeps the state.
    ok(
        &app,
        "SetAlarmState",
        json!({"AlarmName": "high-cpu", "StateValue": "ALARM", "StateReason": "testing"}),
    )
    .await;
    let mut updated = cpu_alarm("high-cpu");
    updated["Threshold"] = json!(75.0);
    ok(&app, "PutMetricAlarm", updated).await;
    let alarm = stored(&app, "high-cpu");
    assert_eq!((alarm.state.as_str(), alarm.threshold), ("ALARM", 75.0));
    let history = ok(
        &app,
        "DescribeAlarmHistory",
        json!({"AlarmName": "high-cpu", "ScanBy": "TimestampAscending"}),
    )
    .await;
    let kinds: Vec<&str> = history["AlarmHistoryItems"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["HistoryItemType"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds,
        ["ConfigurationUpdate", "StateUpdate", "ConfigurationUpdate"]
    );

    let by_state = ok(&app, "DescribeAlarms", json!({"StateValue": "OK"})).await;
    assert_eq!(by_state["MetricAlarms"], json!([]));
    let e = err(
        &app,
        "DeleteAlarms",
        json!({"AlarmNames": ["high-cpu", "missing"]}),
    )
    .await;
    assert_eq!(e.name, "ResourceNotFound");
    assert!(
        app.get::<Alarm>(&alarm_key("high-cpu"))
            .expect("read")
            .is_some(),
        "none deleted when one is missing"
    );
    ok(&app, "DeleteAlarms", json!({"AlarmNames": ["high-cpu"]})).await;
    let gone = ok(&app, "DescribeAlarms", json!({})).await;
    assert_eq!(gone["MetricAlarms"], json!([]));
}

#[tokio::test]
async fn bad_alarms_are_refused_with_cloudwatch_errors() {
    let app = crate::test_support::app().await;
    for (change, code) in [
        (json!({"Period": 45}), "InvalidParameterValue"),
        (json!({"EvaluationPeriods": 0}), "InvalidParameterValue"),
        (json!({"DatapointsToAlarm": 4}), "InvalidParameterValue"),
        (json!({"Statistic": "p99"}), "InvalidParameterValue"),
        (
            json!({"ComparisonOperator": "Sideways"}),
            "InvalidParameterValue",
        ),
        (
            json!({"TreatMissingData": "maybe"}),
            "InvalidParameterValue",
        ),
        (json!({"AlarmActions": ["not-an-arn"]}), "ValidationError"),
        (json!({"Metrics": [{"Id": "m1"}]}), "InvalidParameterValue"),
        (json!({"Threshold": null}), "MissingParameter"),
    ] {
        let mut input = cpu_alarm("bad");
        for (k, v) in change.as_object().expect("object") {
            if v.is_null() {
                input.as_object_mut().expect("object").remove(k);
            } else {
                input[k] = v.clone();
            }
        }
        let e = err(&app, "PutMetricAlarm", input).await;
        assert_eq!(e.name, code, "{change}: {}", e.message);
    }
    let e = err(
        &app,
        "SetAlarmState",
        json!({"AlarmName": "nope", "StateValue": "OK", "StateReason": "r"}),
    )
    .await;
    assert_eq!(e.name, "ResourceNotFound");
    assert_eq!(
        ok(&app, "DescribeAlarms", json!({})).await["MetricAlarms"],
        json!([]),
        "nothing half-written"
    );
}

#[tokio::test]
async fn describe_alarms_pages_by_name() {
    let app = crate::test_support::app().await;
    for name in ["c", "a", "b"] {
        ok(&app, "PutMetricAlarm", cpu_alarm(name)).await;
    }
    let first = ok(&app, "DescribeAlarms", json!({"MaxRecords": 2})).await;
    let names = |v: &Value| -> Vec<String> {
        v["MetricAlarms"]
            .as_array()
            .expect("alarms")
            .iter()
            .map(|a| a["AlarmName"].as_str().expect("name").to_string())
            .collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    let token = first["NextToken"].as_str().expect("more");
    let second = ok(
        &app,
        "DescribeAlarms",
        json!({"MaxRecords": 2, "NextToken": token}),
    )
    .await;
    assert_eq!(names(&second), ["c"]);
    assert!(second.get("NextToken").is_none());
    let prefixed = ok(&app, "DescribeAlarms", json!({"AlarmNamePrefix": "b"})).await;
    assert_eq!(names(&prefixed), ["b"]);
    let for_metric = ok(
        &app,
        "DescribeAlarmsForMetric",
        json!({"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
               "Dimensions": [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "web"}]}),
    )
    .await;
    assert_eq!(names(&for_metric), ["a", "b", "c"]);
}

#[tokio::test]
async fn an_alarm_follows_its_metric_through_alarm_ok_and_insufficient_data() {
    let app = crate::test_support::app().await;
    ok(&app, "PutMetricAlarm", cpu_alarm("follow")).await;
    // Three complete minutes above the threshold: ALARM.
    for minute in 0..3 {
        cpu(&app, T0 + minute * MINUTE + 5_000, 90.0);
    }
    let now = T0 + 3 * MINUTE + 1_000;
    assert_eq!(evaluate_all(&app, now).await, 1);
    let alarm = stored(&app, "follow");
    assert_eq!(alarm.state, "ALARM");
    assert!(
        alarm.state_reason.starts_with(
            "Threshold Crossed: 3 out of the last 3 datapoints [90.0 (01/12/26 00:02:00)"
        ),
        "{}",
        alarm.state_reason
    );
    assert!(alarm
        .state_reason
        .contains("were greater than the threshold (50.0)"));
    let data: Value =
        serde_json::from_str(alarm.state_reason_data.as_deref().expect("data")).expect("json");
    assert_eq!(data["recentDatapoints"], json!([90.0, 90.0, 90.0]));
    // Its action is recorded as not run.
    assert!(alarm
        .history
        .iter()
        .any(|h| h.kind == "Action" && h.summary.contains("scalingPolicy:x")));
    // Nothing changes: nothing written.
    assert_eq!(evaluate_all(&app, now + 1_000).await, 0);

    // One calm minute is enough for OK (fewer than 3 of 3 breach).
    cpu(&app, T0 + 3 * MINUTE + 5_000, 10.0);
    assert_eq!(evaluate_all(&app, T0 + 4 * MINUTE + 1_000).await, 1);
    assert_eq!(stored(&app, "follow").state, "OK");

    // No data in the window: INSUFFICIENT_DATA.
    assert_eq!(evaluate_all(&app, T0 + 20 * MINUTE).await, 1);
    let alarm = stored(&app, "follow");
    assert_eq!(alarm.state, "INSUFFICIENT_DATA");
    assert_eq!(
        alarm.state_reason,
        "Insufficient Data: 3 datapoints were unknown."
    );
}

#[tokio::test]
async fn a_state_set_by_hand_holds_until_the_next_evaluation_interval() {
    let app = crate::test_support::app().await;
    ok(&app, "PutMetricAlarm", cpu_alarm("by-hand")).await;
    ok(
        &app,
        "SetAlarmState",
        json!({"AlarmName": "by-hand", "StateValue": "ALARM", "StateReason": "testing"}),
    )
    .await;
    let set_at = (stored(&app, "by-hand").state_updated * 1000.0) as i64;
    // The evaluator's rounds within the alarm's period (60 s) leave it alone...
    for after in [0, 5_000, 59_000] {
        assert_eq!(evaluate_all(&app, set_at + after).await, 0);
        assert_eq!(stored(&app, "by-hand").state, "ALARM", "{after} ms after");
    }
    // ...and the next evaluation returns it to what its (missing) data says.
    assert_eq!(evaluate_all(&app, set_at + 60_000).await, 1);
    let alarm = stored(&app, "by-hand");
    assert_eq!(
        (alarm.state.as_str(), alarm.held_until),
        ("INSUFFICIENT_DATA", None)
    );
}

#[tokio::test]
async fn datapoints_to_alarm_and_missing_data_treatments() {
    let app: Arc<App> = crate::test_support::app().await;
    let mut input = cpu_alarm("m-of-n");
    input["DatapointsToAlarm"] = json!(2);
    input["TreatMissingData"] = json!("breaching");
    ok(&app, "PutMetricAlarm", input).await;
    let alarm = stored(&app, "m-of-n");
    // One breaching datapoint and two missing periods counted as breaching: ALARM.
    cpu(&app, T0 + 5_000, 95.0);
    let now = T0 + 3 * MINUTE;
    let window = periods(&app.cloudwatch, &alarm, now);
    assert_eq!(window.len(), 6, "twice EvaluationPeriods");
    assert_eq!(
        window[3].0, T0,
        "oldest first, the last complete period last"
    );
    let verdict = evaluate(&alarm, &window, now).expect("a verdict");
    assert_eq!(verdict.state, "ALARM");

    // notBreaching: the same data is one of three, below two: OK.
    let mut calm = alarm.clone();
    calm.treat_missing_data = Some("notBreaching".into());
    assert_eq!(evaluate(&calm, &window, now).expect("verdict").state, "OK");
    // ignore with no data at all keeps the state.
    calm.treat_missing_data = Some("ignore".into());
    assert_eq!(
        evaluate(
            &calm,
            &periods(&app.cloudwatch, &calm, T0 + 30 * MINUTE),
            T0 + 30 * MINUTE
        ),
        None
    );
    // A threshold equal to the value breaches only for the "OrEqual" operators.
    let mut edge = alarm.clone();
    edge.threshold = 95.0;
    edge.treat_missing_data = None;
    edge.datapoints_to_alarm = Some(1);
    assert_eq!(evaluate(&edge, &window, now).expect("verdict").state, "OK");
    edge.comparison_operator = "GreaterThanOrEqualToThreshold".into();
    assert_eq!(
        evaluate(&edge, &window, now).expect("verdict").state,
        "ALARM"
    );
}

#[tokio::test]
async fn with_missing_data_an_alarm_looks_back_for_enough_datapoints() {
    let app = crate::test_support::app().await;
    ok(&app, "PutMetricAlarm", cpu_alarm("gappy")).await;
    // Minutes 0, 2 and 3 above the threshold; minute 1 has no datapoint.
    for minute in [0, 2, 3] {
        cpu(&app, T0 + minute * MINUTE + 5_000, 80.0);
    }
    assert_eq!(evaluate_all(&app, T0 + 4 * MINUTE + 1_000).await, 1);
    assert_eq!(stored(&app, "gappy").state, "ALARM");
}

#[tokio::test]
async fn alarms_carry_tags_and_unsupported_options_are_refused() {
    let app = crate::test_support::app().await;
    let mut input = cpu_alarm("tagged");
    input["Tags"] = json!([{"Key": "team", "Value": "web"}]);
    ok(&app, "PutMetricAlarm", input).await;
    let arn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:tagged";
    ok(
        &app,
        "TagResource",
        json!({"ResourceARN": arn, "Tags": [{"Key": "env", "Value": "prod"}]}),
    )
    .await;
    ok(
        &app,
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["team"]}),
    )
    .await;
    // An update keeps the tags, as on AWS.
    let mut update = cpu_alarm("tagged");
    update["Tags"] = json!([{"Key": "ignored", "Value": "x"}]);
    ok(&app, "PutMetricAlarm", update).await;
    let listed = ok(&app, "ListTagsForResource", json!({"ResourceARN": arn})).await;
    assert_eq!(listed["Tags"], json!([{"Key": "env", "Value": "prod"}]));
    let e = err(
        &app,
        "ListTagsForResource",
        json!({"ResourceARN": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:none"}),
    )
    .await;
    assert_eq!(e.name, "ResourceNotFoundException");

    let mut windowed = cpu_alarm("windowed");
    windowed["EvaluationInterval"] = json!(60);
    let e = err(&app, "PutMetricAlarm", windowed).await;
    assert_eq!(e.name, "InvalidParameterValue");
    assert!(e.message.contains("EvaluationInterval"), "{}", e.message);
    assert!(app
        .get::<Alarm>(&alarm_key("windowed"))
        .expect("read")
        .is_none());
}
