//! Handler tests of the task operations on an in-memory server, driven through the dispatcher
//! with the JSON an ECS client sends.

use crate::app::{App, ServerConfig};
use crate::dispatch::{dispatch, Caller, Ctx};
use crate::error::ApiError;
use serde_json::{json, Value};
use std::sync::Arc;

async fn app() -> Arc<App> {
    App::open(ServerConfig::default()).await.expect("app")
}

async fn call(app: &Arc<App>, op: &str, body: Value) -> Result<Value, ApiError> {
    let ctx = Ctx {
        app: app.clone(),
        caller: Caller::default(),
    };
    let bytes = dispatch(ctx, op, body.to_string().as_bytes()).await?;
    Ok(serde_json::from_slice(&bytes).expect("json response"))
}

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
