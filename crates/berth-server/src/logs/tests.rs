use super::*;
use crate::app::App;
use serde_json::{json, Value};

async fn app() -> Arc<App> {
    crate::test_support::app().await
}

crate::json_service_calls!(dispatch);

async fn group_with_stream(app: &Arc<App>) {
    ok(app, "CreateLogGroup", json!({"logGroupName": "/app"})).await;
    ok(
        app,
        "CreateLogStream",
        json!({"logGroupName": "/app", "logStreamName": "web"}),
    )
    .await;
}

fn events(from: i64, n: i64, text: &str) -> Value {
    let now = now_ms();
    Value::Array(
        (from..from + n)
            .map(|i| json!({"timestamp": now - 60_000 + i, "message": format!("{text} {i}")}))
            .collect(),
    )
}

#[tokio::test]
async fn groups_are_created_described_by_prefix_and_pattern_paged_and_deleted() {
    let app = app().await;
    for name in ["/a/one", "/a/two", "/b/Three"] {
        ok(&app, "CreateLogGroup", json!({"logGroupName": name})).await;
    }
    let e = err(&app, "CreateLogGroup", json!({"logGroupName": "/a/one"})).await;
    assert_eq!(e.name, "ResourceAlreadyExistsException");
    let e = err(&app, "CreateLogGroup", json!({"logGroupName": "bad name"})).await;
    assert_eq!(e.name, "InvalidParameterException");
    let page = ok(
        &app,
        "DescribeLogGroups",
        json!({"logGroupNamePrefix": "/a/"}),
    )
    .await;
    let names: Vec<&str> = page["logGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["logGroupName"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["/a/one", "/a/two"]);
    assert_eq!(
        page["logGroups"][0]["arn"],
        json!("arn:aws:logs:us-east-1:000000000000:log-group:/a/one:*")
    );
    let page = ok(
        &app,
        "DescribeLogGroups",
        json!({"logGroupNamePattern": "three"}),
    )
    .await;
    assert_eq!(page["logGroups"][0]["logGroupName"], json!("/b/Three"));
    let first = ok(&app, "DescribeLogGroups", json!({"limit": 2})).await;
    let token = first["nextToken"].as_str().expect("a second page");
    let second = ok(
        &app,
        "DescribeLogGroups",
        json!({"limit": 2, "nextToken": token}),
    )
    .await;
    assert_eq!(second["logGroups"][0]["logGroupName"], json!("/b/Three"));
    assert!(second.get("nextToken").is_none());
    ok(&app, "DeleteLogGroup", json!({"logGroupName": "/a/one"})).await;
    let e = err(&app, "DeleteLogGroup", json!({"logGroupName": "/a/one"})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
}

#[tokio::test]
async fn retention_takes_only_the_allowed_values() {
    let app = app().await;
    ok(&app, "CreateLogGroup", json!({"logGroupName": "g"})).await;
    ok(
        &app,
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 30}),
    )
    .await;
    let e = err(
        &app,
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 2}),
    )
    .await;
    assert_eq!(e.name, "InvalidParameterException");
    let d = ok(&app, "DescribeLogGroups", json!({})).await;
    assert_eq!(d["logGroups"][0]["retentionInDays"], json!(30));
    ok(&app, "DeleteRetentionPolicy", json!({"logGroupName": "g"})).await;
    let d = ok(&app, "DescribeLogGroups", json!({})).await;
    assert!(d["logGroups"][0].get("retentionInDays").is_none());
}

#[tokio::test]
async fn put_then_get_forward_and_backward_with_tokens() {
    let app = app().await;
    group_with_stream(&app).await;
    let put = ok(
        &app,
        "PutLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "logEvents": events(0, 25, "line")}),
    )
    .await;
    assert!(put["nextSequenceToken"].is_string());
    let tail = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "limit": 10}),
    )
    .await;
    assert_eq!(tail["events"][0]["message"], json!("line 15"));
    let back = tail["nextBackwardToken"].as_str().expect("token");
    let earlier = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "limit": 10, "nextToken": back}),
    )
    .await;
    assert_eq!(earlier["events"][0]["message"], json!("line 5"));
    let head = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "limit": 20, "startFromHead": true}),
    )
    .await;
    assert_eq!(head["events"].as_array().expect("events").len(), 20);
    let forward = head["nextForwardToken"].as_str().expect("token");
    let rest = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "nextToken": forward}),
    )
    .await;
    assert_eq!(rest["events"].as_array().expect("events").len(), 5);
    let end = rest["nextForwardToken"].as_str().expect("token");
    let nothing = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "nextToken": end}),
    )
    .await;
    assert_eq!(nothing["events"], json!([]));
    assert_eq!(nothing["nextForwardToken"].as_str(), Some(end));
    let e = err(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "nextToken": "junk"}),
    )
    .await;
    assert_eq!(e.name, "InvalidParameterException");
    let e = err(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "nope"}),
    )
    .await;
    assert_eq!(e.name, "ResourceNotFoundException");
}

#[tokio::test]
async fn put_log_events_enforces_the_service_rules() {
    let app = app().await;
    group_with_stream(&app).await;
    let now = now_ms();
    let put = |events: Value| json!({"logGroupName": "/app", "logStreamName": "web", "logEvents": events});
    let e = err(
        &app,
        "PutLogEvents",
        put(json!([{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}])),
    )
    .await;
    assert!(e.message.contains("chronological"), "{e}");
    let e = err(&app, "PutLogEvents", put(json!([{"timestamp": now - 2 * DAY, "message": "a"}, {"timestamp": now, "message": "b"}]))).await;
    assert!(e.message.contains("24 hours"), "{e}");
    let e = err(&app, "PutLogEvents", put(json!([]))).await;
    assert_eq!(e.name, "InvalidParameterException");
    let big = "x".repeat(600_000);
    let e = err(
        &app,
        "PutLogEvents",
        put(json!([{"timestamp": now, "message": big}, {"timestamp": now, "message": big}])),
    )
    .await;
    assert!(e.message.contains("1048576"), "{e}");
}

const DAY: i64 = berth_store::logs::DAY_MS;

#[tokio::test]
async fn events_outside_the_accepted_window_are_reported_not_stored() {
    let app = app().await;
    group_with_stream(&app).await;
    let now = now_ms();
    let answer = ok(
        &app,
        "PutLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web", "logEvents": [
            {"timestamp": now - 1000, "message": "ok"},
            {"timestamp": now + 3 * 3_600_000, "message": "future"},
        ]}),
    )
    .await;
    assert_eq!(
        answer["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 1})
    );
    let got = ok(
        &app,
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "web"}),
    )
    .await;
    assert_eq!(got["events"].as_array().expect("events").len(), 1);
}

#[tokio::test]
async fn filter_log_events_matches_patterns_across_streams_and_pages() {
    let app = app().await;
    group_with_stream(&app).await;
    ok(
        &app,
        "CreateLogStream",
        json!({"logGroupName": "/app", "logStreamName": "worker"}),
    )
    .await;
    ok(&app, "PutLogEvents", json!({"logGroupName": "/app", "logStreamName": "web", "logEvents": events(0, 10, "INFO web")})).await;
    ok(&app, "PutLogEvents", json!({"logGroupName": "/app", "logStreamName": "worker", "logEvents": events(5, 10, "ERROR worker")})).await;
    let all = ok(&app, "FilterLogEvents", json!({"logGroupName": "/app"})).await;
    let all = all["events"].as_array().expect("events").clone();
    assert_eq!(all.len(), 20);
    assert!(all
        .windows(2)
        .all(|w| w[0]["timestamp"].as_i64() <= w[1]["timestamp"].as_i64()));
    let errors = ok(
        &app,
        "FilterLogEvents",
        json!({"logGroupName": "/app", "filterPattern": "ERROR -14"}),
    )
    .await;
    assert_eq!(errors["events"].as_array().expect("events").len(), 9);
    assert_eq!(errors["events"][0]["logStreamName"], json!("worker"));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupName": "/app", "limit": 7, "logStreamNamePrefix": "w"});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = ok(&app, "FilterLogEvents", body).await;
        seen.extend(
            page["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["eventId"].clone()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 20);
    seen.sort_by_key(|v| v.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 20, "event ids are unique");
    let e = err(
        &app,
        "FilterLogEvents",
        json!({"logGroupName": "/app", "filterPattern": "{ $.a = "}),
    )
    .await;
    assert_eq!(e.name, "InvalidParameterException");
    assert!(e.message.contains("Invalid filter pattern"));
}

#[tokio::test]
async fn tags_are_set_listed_and_removed_by_arn_and_by_name() {
    let app = app().await;
    ok(
        &app,
        "CreateLogGroup",
        json!({"logGroupName": "g", "tags": {"team": "a"}}),
    )
    .await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    ok(
        &app,
        "TagResource",
        json!({"resourceArn": arn, "tags": {"env": "prod"}}),
    )
    .await;
    let tags = ok(&app, "ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(tags["tags"], json!({"team": "a", "env": "prod"}));
    ok(
        &app,
        "UntagLogGroup",
        json!({"logGroupName": "g", "tags": ["team"]}),
    )
    .await;
    let tags = ok(&app, "ListTagsLogGroup", json!({"logGroupName": "g"})).await;
    assert_eq!(tags["tags"], json!({"env": "prod"}));
    let e = err(&app, "TagResource", json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:none", "tags": {"a": "b"}})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
}

#[tokio::test]
async fn an_unknown_operation_is_named_as_such() {
    let app = app().await;
    let e = err(&app, "Frobnicate", json!({})).await;
    assert_eq!(e.name, "UnknownOperationException");
}
