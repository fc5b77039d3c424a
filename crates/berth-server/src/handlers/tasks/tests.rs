//! Handler tests of the task operations on an in-memory server, driven through the dispatcher
//! with the JSON an ECS client sends.

use crate::app::App;
use crate::test_support::{app, call};
use serde_json::{json, Value};
use std::sync::Arc;

/// A cluster `demo` with one instance of 2048 CPU / 1024 MiB and a task definition `web`
/// needing 512 MiB. Returns the instance ARN.
async fn setup(app: &Arc<App>) -> String {
    call(app, "CreateCluster", json!({"clusterName": "demo"}))
        .await
        .expect("cluster");
    let instance = call(
        app,
        "RegisterContainerInstance",
        json!({"cluster": "demo", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
        ]}),
    )
    .await
    .expect("instance");
    call(
        app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 512, "essential": true}
        ]}),
    )
    .await
    .expect("task definition");
    instance["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_string()
}

fn remaining_memory(instance: &Value) -> i64 {
    instance["remainingResources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .and_then(|r| r["integerValue"].as_i64())
        .expect("memory")
}

async fn describe_instance(app: &Arc<App>, arn: &str) -> Value {
    let out = call(
        app,
        "DescribeContainerInstances",
        json!({"cluster": "demo", "containerInstances": [arn]}),
    )
    .await
    .expect("describe");
    out["containerInstances"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_places_the_task_and_reserves_its_memory() {
    let app = app().await;
    let instance = setup(&app).await;
    let out = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "startedBy": "test"}),
    )
    .await
    .expect("run");
    let task = &out["tasks"][0];
    assert_eq!(task["lastStatus"], "PROVISIONING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(task["group"], "family:web");
    assert_eq!(task["containerInstanceArn"], instance.as_str());
    assert_eq!(task["startedBy"], "test");
    assert!(task["version"].as_i64().expect("version") > 0);
    assert_eq!(out["failures"], json!([]));
    assert_eq!(
        remaining_memory(&describe_instance(&app, &instance).await),
        512
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_fit_nowhere_are_resource_failures_not_errors() {
    let app = app().await;
    let instance = setup(&app).await;
    let out = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "count": 3}),
    )
    .await
    .expect("run");
    assert_eq!(out["tasks"].as_array().expect("tasks").len(), 2);
    assert_eq!(
        out["failures"],
        json!([{"arn": instance, "reason": "RESOURCE:MEMORY"}])
    );
    assert_eq!(
        remaining_memory(&describe_instance(&app, &instance).await),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_errors_name_the_problem() {
    let app = app().await;
    setup(&app).await;
    let e = call(
        &app,
        "RunTask",
        json!({"cluster": "nope", "taskDefinition": "web"}),
    )
    .await
    .expect_err("no cluster");
    assert_eq!(e.name, "ClusterNotFoundException");
    let e = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "ghost"}),
    )
    .await
    .expect_err("no td");
    assert_eq!(e.name, "ClientException");
    let e = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "count": 11}),
    )
    .await
    .expect_err("count");
    assert_eq!(e.name, "InvalidParameterException");
    call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await
    .expect("deregister");
    let e = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web:1"}),
    )
    .await
    .expect_err("inactive");
    assert_eq!(e.name, "ClientException");
    assert!(e.message.contains("inactive"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_drive_a_stopped_task_to_stopped_and_give_back_its_resources() {
    let app = app().await;
    let instance = setup(&app).await;
    let out = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web"}),
    )
    .await
    .expect("run");
    let arn = out["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    for status in ["PENDING", "ACTIVATING", "RUNNING"] {
        call(&app, "SubmitTaskStateChange", json!({"cluster": "demo", "task": arn, "status": status,
            "containers": [{"containerName": "web", "status": if status == "RUNNING" {"RUNNING"} else {"PENDING"}, "runtimeId": "abc"}]}))
            .await
            .expect("report");
    }
    let stopped = call(
        &app,
        "StopTask",
        json!({"cluster": "demo", "task": arn, "reason": "done"}),
    )
    .await
    .expect("stop");
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");
    assert_eq!(stopped["task"]["stoppedReason"], "done");
    for status in ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"] {
        call(
            &app,
            "SubmitTaskStateChange",
            json!({"cluster": "demo", "task": arn, "status": status,
            "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 143}]}),
        )
        .await
        .expect("report");
    }
    let described = call(
        &app,
        "DescribeTasks",
        json!({"cluster": "demo", "tasks": [arn]}),
    )
    .await
    .expect("describe");
    let task = &described["tasks"][0];
    assert_eq!(task["lastStatus"], "STOPPED");
    assert_eq!(task["containers"][0]["exitCode"], 143);
    assert!(
        task["startedAt"].is_number()
            && task["stoppedAt"].is_number()
            && task["stoppingAt"].is_number()
    );
    assert_eq!(
        remaining_memory(&describe_instance(&app, &instance).await),
        1024
    );
    let listed = call(
        &app,
        "ListTasks",
        json!({"cluster": "demo", "desiredStatus": "STOPPED"}),
    )
    .await
    .expect("list");
    assert_eq!(listed["taskArns"], json!([arn]));
    let running = call(&app, "ListTasks", json!({"cluster": "demo"}))
        .await
        .expect("list");
    assert_eq!(running["taskArns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tasks_are_missing_failures_and_list_filters_apply() {
    let app = app().await;
    setup(&app).await;
    let out = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "startedBy": "ci"}),
    )
    .await
    .expect("run");
    let arn = out["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let described = call(
        &app,
        "DescribeTasks",
        json!({"cluster": "demo", "tasks": [arn, "0123456789abcdef0123456789abcdef"]}),
    )
    .await
    .expect("describe");
    assert_eq!(described["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    let by_family = call(
        &app,
        "ListTasks",
        json!({"cluster": "demo", "family": "web"}),
    )
    .await
    .expect("list");
    assert_eq!(by_family["taskArns"], json!([arn]));
    let other = call(
        &app,
        "ListTasks",
        json!({"cluster": "demo", "family": "other"}),
    )
    .await
    .expect("list");
    assert_eq!(other["taskArns"], json!([]));
    let started = call(
        &app,
        "ListTasks",
        json!({"cluster": "demo", "startedBy": "nobody"}),
    )
    .await
    .expect("list");
    assert_eq!(started["taskArns"], json!([]));
}

/// A cluster `zones` with three instances (attribute zone = a, b, c; 4096 CPU / 2048 MiB
/// each) and a task definition `app` of 256 MiB. Returns the instance ARNs by zone.
async fn three_zones(app: &Arc<App>) -> std::collections::BTreeMap<String, String> {
    call(app, "CreateCluster", json!({"clusterName": "zones"}))
        .await
        .expect("cluster");
    let mut arns = std::collections::BTreeMap::new();
    for zone in ["a", "b", "c"] {
        let out = call(
            app,
            "RegisterContainerInstance",
            json!({"cluster": "zones", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 2048}
            ], "attributes": [{"name": "zone", "value": zone}]}),
        )
        .await
        .expect("instance");
        let arn = out["containerInstance"]["containerInstanceArn"]
            .as_str()
            .expect("arn");
        arns.insert(arn.to_string(), zone.to_string());
    }
    call(
        app,
        "RegisterTaskDefinition",
        json!({"family": "app", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 256, "essential": true}
        ]}),
    )
    .await
    .expect("task definition");
    arns
}

/// How many of `out`'s tasks landed in each zone, as "a:2 b:2 c:2".
fn zones_of(out: &Value, zone_of: &std::collections::BTreeMap<String, String>) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for task in out["tasks"].as_array().expect("tasks") {
        let arn = task["containerInstanceArn"].as_str().expect("instance");
        *counts.entry(zone_of[arn].clone()).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(z, n)| format!("{z}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_spreads_over_zones_and_honours_member_of() {
    let app = app().await;
    let zone_of = three_zones(&app).await;
    let spread = call(
        &app,
        "RunTask",
        json!({"cluster": "zones", "taskDefinition": "app", "count": 6,
               "placementStrategy": [{"type": "spread", "field": "attribute:zone"}]}),
    )
    .await
    .expect("run");
    assert_eq!(zones_of(&spread, &zone_of), "a:2 b:2 c:2");
    let member = call(
        &app,
        "RunTask",
        json!({"cluster": "zones", "taskDefinition": "app", "count": 4, "group": "pinned",
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:zone == b"}],
               "placementStrategy": [{"type": "spread", "field": "instanceId"}]}),
    )
    .await
    .expect("run");
    assert_eq!(zones_of(&member, &zone_of), "b:4");
    // b now has 2048 - 6 * 256 = 512 MiB left: two more fit there, the third fails.
    let full = call(
        &app,
        "RunTask",
        json!({"cluster": "zones", "taskDefinition": "app", "count": 3,
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:zone == b"}]}),
    )
    .await
    .expect("run");
    assert_eq!(full["tasks"].as_array().expect("tasks").len(), 2);
    let mut reasons: Vec<(String, String)> = full["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            let arn = f["arn"].as_str().expect("arn");
            (
                zone_of[arn].clone(),
                f["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            (
                "a".to_string(),
                "MemberOf placement constraint unsatisfied.".to_string()
            ),
            ("b".to_string(), "RESOURCE:MEMORY".to_string()),
            (
                "c".to_string(),
                "MemberOf placement constraint unsatisfied.".to_string()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_applies_distinct_instance_and_the_task_definitions_constraints() {
    let app = app().await;
    let zone_of = three_zones(&app).await;
    let out = call(
        &app,
        "RunTask",
        json!({"cluster": "zones", "taskDefinition": "app", "count": 4,
               "placementConstraints": [{"type": "distinctInstance"}]}),
    )
    .await
    .expect("run");
    assert_eq!(zones_of(&out, &zone_of), "a:1 b:1 c:1");
    let reasons: Vec<&str> = out["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["DistinctInstance placement constraint unsatisfied."; 3]
    );
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "pinned", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 64, "essential": true}],
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:zone in [c]"}]}),
    )
    .await
    .expect("task definition");
    let pinned = call(
        &app,
        "RunTask",
        json!({"cluster": "zones", "taskDefinition": "pinned", "count": 3}),
    )
    .await
    .expect("run");
    assert_eq!(zones_of(&pinned, &zone_of), "c:3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_placement_parameters_are_invalid_parameters_that_say_where() {
    let app = app().await;
    three_zones(&app).await;
    let run = |extra: Value| {
        let app = app.clone();
        let mut body = json!({"cluster": "zones", "taskDefinition": "app"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        async move { call(&app, "RunTask", body).await }
    };
    let e = run(json!({"placementConstraints": [
        {"type": "memberOf", "expression": "attribute:zone == b or"}]}))
    .await
    .expect_err("parse error");
    assert_eq!(e.name, "InvalidParameterException");
    assert!(e.message.contains("column 23"), "{}", e.message);
    for extra in [
        json!({"placementStrategy": [{"type": "binpack", "field": "disk"}]}),
        json!({"placementStrategy": [{"type": "spread"}]}),
        json!({"placementStrategy": [{"type": "random"}, {"type": "random"}, {"type": "random"},
                                     {"type": "random"}, {"type": "random"}, {"type": "random"}]}),
        json!({"placementConstraints": [{"type": "distinctInstance", "expression": "x == y"}]}),
        json!({"placementConstraints": [{"type": "memberOf"}]}),
        json!({"placementConstraints": [{"type": "nearby"}]}),
    ] {
        let e = run(extra.clone()).await.expect_err("refused");
        assert_eq!(
            e.name, "InvalidParameterException",
            "{extra}: {}",
            e.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_task_checks_each_named_instance() {
    let app = app().await;
    let zone_of = three_zones(&app).await;
    let arns: Vec<&String> = zone_of.keys().collect();
    let out = call(
        &app,
        "StartTask",
        json!({"cluster": "zones", "taskDefinition": "app",
               "containerInstances": [arns[0], arns[0], arns[1], "feedface"]}),
    )
    .await
    .expect("start");
    assert_eq!(out["tasks"].as_array().expect("tasks").len(), 3);
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    let big = call(
        &app,
        "StartTask",
        json!({"cluster": "zones", "taskDefinition": "app",
               "overrides": {"containerOverrides": [{"name": "app", "memory": 4096}]},
               "containerInstances": [arns[2]]}),
    )
    .await
    .expect("start");
    assert_eq!(
        big["failures"],
        json!([{"arn": arns[2], "reason": "RESOURCE:MEMORY"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_run_task_with_the_same_client_token_starts_nothing_more() {
    let app = app().await;
    setup(&app).await;
    let body = json!({"cluster": "demo", "taskDefinition": "web", "clientToken": "retry-1"});
    let first = call(&app, "RunTask", body.clone()).await.expect("run");
    let again = call(&app, "RunTask", body).await.expect("retry");
    assert_eq!(first["tasks"][0]["taskArn"], again["tasks"][0]["taskArn"]);
    let listed = call(&app, "ListTasks", json!({"cluster": "demo"}))
        .await
        .expect("list");
    assert_eq!(listed["taskArns"].as_array().expect("arns").len(), 1);
    let other = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "clientToken": "retry-2"}),
    )
    .await
    .expect("run");
    assert_ne!(first["tasks"][0]["taskArn"], other["tasks"][0]["taskArn"]);
    let e = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web", "clientToken": "x".repeat(65)}),
    )
    .await
    .expect_err("too long");
    assert_eq!(e.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_instance_takes_tasks_again_once_one_of_its_tasks_has_stopped() {
    let app = app().await;
    let instance = setup(&app).await;
    let run = |count: i64| {
        let app = app.clone();
        async move {
            call(
                &app,
                "RunTask",
                json!({"cluster": "demo", "taskDefinition": "web", "count": count}),
            )
            .await
            .expect("run")
        }
    };
    let first = run(2).await;
    assert_eq!(first["tasks"].as_array().expect("tasks").len(), 2);
    // The snapshot the placement kept must see the instance full...
    let refused = run(1).await;
    assert_eq!(
        refused["failures"],
        json!([{"arn": instance, "reason": "RESOURCE:MEMORY"}])
    );
    // ...and free again once a task has stopped, though no instance record changed.
    let arn = first["tasks"][0]["taskArn"].as_str().expect("arn");
    call(
        &app,
        "SubmitTaskStateChange",
        json!({"cluster": "demo", "task": arn, "status": "STOPPED",
            "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 1}]}),
    )
    .await
    .expect("report");
    let again = run(1).await;
    assert_eq!(again["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(again["failures"], json!([]));
    assert_eq!(
        remaining_memory(&describe_instance(&app, &instance).await),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_past_the_ecs_quota_of_8_kib_are_refused_and_start_nothing() {
    let app = app().await;
    setup(&app).await;
    let big = "x".repeat(9000);
    let err = call(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web",
            "overrides": {"containerOverrides": [{"name": "web", "command": [big]}]}}),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.name, "InvalidParameterException");
    assert!(err.message.contains("8192"), "{}", err.message);
    let listed = call(&app, "ListTasks", json!({"cluster": "demo"}))
        .await
        .expect("list");
    assert_eq!(listed["taskArns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_naming_an_unknown_or_deleted_cluster_are_cluster_not_found() {
    let app = app().await;
    call(&app, "CreateCluster", json!({"clusterName": "gone"}))
        .await
        .expect("cluster");
    call(&app, "DeleteCluster", json!({"cluster": "gone"}))
        .await
        .expect("deleted");
    let task = "0123456789abcdef0123456789abcdef";
    for cluster in [json!(null), json!("nowhere"), json!("gone")] {
        let calls = [
            ("ListTasks", json!({"cluster": cluster})),
            ("ListServices", json!({"cluster": cluster})),
            ("ListContainerInstances", json!({"cluster": cluster})),
            ("DescribeTasks", json!({"cluster": cluster, "tasks": []})),
            (
                "DescribeTasks",
                json!({"cluster": cluster, "tasks": [task]}),
            ),
            (
                "DescribeServices",
                json!({"cluster": cluster, "services": []}),
            ),
            (
                "DescribeContainerInstances",
                json!({"cluster": cluster, "containerInstances": []}),
            ),
            ("StopTask", json!({"cluster": cluster, "task": task})),
            (
                "RunTask",
                json!({"cluster": cluster, "taskDefinition": "web"}),
            ),
            (
                "CreateService",
                json!({"cluster": cluster, "serviceName": "s", "taskDefinition": "web"}),
            ),
        ];
        for (operation, body) in calls {
            let e = call(&app, operation, body)
                .await
                .expect_err("no such cluster");
            assert_eq!(
                (e.name, e.message.as_str()),
                ("ClusterNotFoundException", "Cluster not found."),
                "{operation} in {cluster}"
            );
        }
    }
    // DescribeClusters is the exception: a cluster it cannot show is a MISSING failure.
    let described = call(&app, "DescribeClusters", json!({"clusters": ["nowhere"]}))
        .await
        .expect("describes");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
}
