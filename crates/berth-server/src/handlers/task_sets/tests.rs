//! Handler tests of the task set operations on an in-memory server, driven through the
//! dispatcher with the JSON an ECS client sends; the service controller runs one pass at a
//! time where tasks matter.

use crate::app::App;
use crate::controllers::services::reconcile_all;
use crate::test_support::{agent_attributes, app, call, ok};
use serde_json::{json, Value};
use std::sync::Arc;

async fn setup() -> Arc<App> {
    let app = app().await;
    ok(&app, "CreateCluster", json!({"clusterName": "demo"})).await;
    ok(
        &app,
        "RegisterContainerInstance",
        json!({"cluster": "demo", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ], "attributes": agent_attributes(&[])}),
    )
    .await;
    for _ in 0..2 {
        ok(
            &app,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "memory": 64}
            ]}),
        )
        .await;
    }
    app
}

async fn external(app: &Arc<App>, name: &str, desired: i32) -> Value {
    ok(
        app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": name, "desiredCount": desired,
               "deploymentController": {"type": "EXTERNAL"}}),
    )
    .await["service"]
        .clone()
}

async fn create_set(app: &Arc<App>, td: &str, scale: f64) -> Value {
    ok(
        app,
        "CreateTaskSet",
        json!({"cluster": "demo", "service": "web", "taskDefinition": td,
               "scale": {"value": scale, "unit": "PERCENT"},
               "tags": [{"key": "color", "value": td}]}),
    )
    .await["taskSet"]
        .clone()
}

async fn error_type(app: &Arc<App>, op: &str, body: Value) -> String {
    call(app, op, body)
        .await
        .expect_err("the call should fail")
        .name
        .to_string()
}

async fn settle(app: &Arc<App>) {
    for _ in 0..20 {
        if reconcile_all(app).await == 0 {
            return;
        }
    }
    panic!("the controller did not settle");
}

/// (startedBy, desiredStatus) of every task of service `web`.
async fn tasks(app: &Arc<App>) -> Vec<(String, String)> {
    let mut arns: Vec<Value> = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let out = ok(
            app,
            "ListTasks",
            json!({"cluster": "demo", "serviceName": "web", "desiredStatus": desired}),
        )
        .await;
        arns.extend(out["taskArns"].as_array().cloned().unwrap_or_default());
    }
    if arns.is_empty() {
        return Vec::new();
    }
    let out = ok(
        &app.clone(),
        "DescribeTasks",
        json!({"cluster": "demo", "tasks": arns}),
    )
    .await;
    out["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["startedBy"].as_str().unwrap_or_default().to_string(),
                t["desiredStatus"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wanted(tasks: &[(String, String)], set: &Value) -> usize {
    tasks
        .iter()
        .filter(|(by, desired)| Some(by.as_str()) == set["id"].as_str() && desired == "RUNNING")
        .count()
}

async fn describe(app: &Arc<App>, sets: Option<Vec<&Value>>) -> Value {
    let mut body = json!({"cluster": "demo", "service": "web", "include": ["TAGS"]});
    if let Some(sets) = sets {
        body["taskSets"] = json!(sets);
    }
    ok(app, "DescribeTaskSets", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_service_has_no_deployments_and_needs_no_task_definition() {
    let app = setup().await;
    let service = external(&app, "web", 2).await;
    assert_eq!(service["deploymentController"]["type"], "EXTERNAL");
    assert_eq!(service["deployments"], json!([]));
    assert_eq!(service["taskSets"], json!([]));
    assert!(service.get("taskDefinition").is_none());
    assert_eq!(service["desiredCount"], 2);
    let defaulted = ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "bare",
               "deploymentController": {"type": "EXTERNAL"}}),
    )
    .await;
    assert_eq!(defaulted["service"]["desiredCount"], 0);
    assert_eq!(
        error_type(
            &app,
            "CreateService",
            json!({"cluster": "demo", "serviceName": "d", "schedulingStrategy": "DAEMON",
                   "deploymentController": {"type": "EXTERNAL"}}),
        )
        .await,
        "InvalidParameterException"
    );
    for (member, value) in [
        ("taskDefinition", json!("web:2")),
        ("forceNewDeployment", json!(true)),
        (
            "networkConfiguration",
            json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}}),
        ),
    ] {
        let mut body = json!({"cluster": "demo", "service": "web"});
        body[member] = value;
        assert_eq!(
            error_type(&app, "UpdateService", body).await,
            "InvalidParameterException",
            "{member}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_set_calls_name_ecs_errors_for_bad_input() {
    let app = setup().await;
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "rolling", "taskDefinition": "web:1",
               "desiredCount": 0}),
    )
    .await;
    external(&app, "web", 1).await;
    let create = |service: &str, scale: f64, td: &str| {
        json!({"cluster": "demo", "service": service, "taskDefinition": td,
               "scale": {"value": scale, "unit": "PERCENT"}})
    };
    let cases = [
        (
            "CreateTaskSet",
            create("rolling", 50.0, "web:1"),
            "InvalidParameterException",
        ),
        (
            "CreateTaskSet",
            create("nope", 50.0, "web:1"),
            "ServiceNotFoundException",
        ),
        (
            "CreateTaskSet",
            create("web", 150.0, "web:1"),
            "InvalidParameterException",
        ),
        (
            "CreateTaskSet",
            create("web", 50.0, "nope:1"),
            "ClientException",
        ),
        (
            "UpdateTaskSet",
            json!({"cluster": "demo", "service": "web", "taskSet": "ecs-svc/1",
                   "scale": {"value": 10.0, "unit": "PERCENT"}}),
            "TaskSetNotFoundException",
        ),
        (
            "DeleteTaskSet",
            json!({"cluster": "demo", "service": "web", "taskSet": "ecs-svc/1"}),
            "TaskSetNotFoundException",
        ),
        (
            "UpdateServicePrimaryTaskSet",
            json!({"cluster": "demo", "service": "web", "primaryTaskSet": "ecs-svc/1"}),
            "TaskSetNotFoundException",
        ),
        (
            "DescribeTaskSets",
            json!({"cluster": "demo", "service": "rolling"}),
            "InvalidParameterException",
        ),
    ];
    for (op, body, expected) in cases {
        assert_eq!(
            error_type(&app, op, body.clone()).await,
            expected,
            "{op} {body}"
        );
    }
    let set = create_set(&app, "web:1", 100.0).await;
    assert_eq!(
        error_type(
            &app,
            "DeleteTaskSet",
            json!({"cluster": "demo", "service": "web", "taskSet": set["id"]}),
        )
        .await,
        "InvalidParameterException",
        "a task set scaled above 0 needs force"
    );
    let missing = describe(&app, Some(vec![&set["id"], &json!("ecs-svc/42")])).await;
    assert_eq!(missing["taskSets"].as_array().map(Vec::len), Some(1));
    assert_eq!(missing["failures"][0]["reason"], "MISSING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_through_task_sets_moves_the_tasks_from_one_set_to_the_other() {
    let app = setup().await;
    external(&app, "web", 2).await;
    let blue = create_set(&app, "web:1", 100.0).await;
    let id = blue["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("ecs-svc/") && id.len() == 8 + 19, "{id}");
    assert_eq!(
        blue["taskSetArn"],
        format!("arn:aws:ecs:us-east-1:000000000000:task-set/demo/web/{id}")
    );
    assert_eq!(blue["status"], "ACTIVE");
    assert_eq!(blue["computedDesiredCount"], 2);
    assert_eq!(blue["stabilityStatus"], "STABILIZING");
    assert_eq!(blue["launchType"], "EC2");
    assert_eq!(blue["tags"], json!([{"key": "color", "value": "web:1"}]));
    settle(&app).await;
    assert_eq!(wanted(&tasks(&app).await, &blue), 2);

    let green = create_set(&app, "web:2", 0.0).await;
    assert_eq!(green["computedDesiredCount"], 0);
    let scaled = ok(
        &app,
        "UpdateTaskSet",
        json!({"cluster": "demo", "service": "web", "taskSet": green["taskSetArn"],
               "scale": {"value": 100.0, "unit": "PERCENT"}}),
    )
    .await;
    assert_eq!(scaled["taskSet"]["computedDesiredCount"], 2);
    settle(&app).await;
    let now = tasks(&app).await;
    assert_eq!((wanted(&now, &blue), wanted(&now, &green)), (2, 2));

    let primary = ok(
        &app,
        "UpdateServicePrimaryTaskSet",
        json!({"cluster": "demo", "service": "web", "primaryTaskSet": green["id"]}),
    )
    .await;
    assert_eq!(primary["taskSet"]["status"], "PRIMARY");
    let service = ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": ["web"]}),
    )
    .await["services"][0]
        .clone();
    assert_eq!(service["taskDefinition"], green["taskDefinition"]);
    assert_eq!(service["pendingCount"], 4);
    assert!(service["taskSets"][0].get("tags").is_none());

    ok(
        &app,
        "UpdateTaskSet",
        json!({"cluster": "demo", "service": "web", "taskSet": blue["id"],
               "scale": {"value": 0.0, "unit": "PERCENT"}}),
    )
    .await;
    settle(&app).await;
    let now = tasks(&app).await;
    assert_eq!((wanted(&now, &blue), wanted(&now, &green)), (0, 2));
    let deleted = ok(
        &app,
        "DeleteTaskSet",
        json!({"cluster": "demo", "service": "web", "taskSet": blue["id"]}),
    )
    .await;
    assert_eq!(deleted["taskSet"]["status"], "DRAINING");

    // The service's desired count drives every set's computed count.
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 3}),
    )
    .await;
    let sets = describe(&app, Some(vec![&green["taskSetArn"]])).await;
    assert_eq!(sets["taskSets"][0]["computedDesiredCount"], 3);
    assert_eq!(sets["taskSets"][0]["tags"][0]["key"], "color");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_deploy_service_starts_with_one_primary_task_set_and_refuses_changes() {
    let app = setup().await;
    let service = ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web:1",
               "desiredCount": 1, "deploymentController": {"type": "CODE_DEPLOY"}}),
    )
    .await["service"]
        .clone();
    assert_eq!(service["taskSets"][0]["status"], "PRIMARY");
    assert_eq!(service["taskSets"][0]["scale"]["value"], 100.0);
    assert_eq!(service["taskSets"][0]["computedDesiredCount"], 1);
    assert_eq!(
        service["taskDefinition"],
        service["taskSets"][0]["taskDefinition"]
    );
    settle(&app).await;
    assert_eq!(wanted(&tasks(&app).await, &service["taskSets"][0]), 1);
    assert_eq!(
        error_type(
            &app,
            "UpdateService",
            json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2"}),
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        error_type(
            &app,
            "CreateTaskSet",
            json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2"}),
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        describe(&app, None).await["taskSets"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_external_service_drains_its_task_sets_then_it_is_inactive() {
    let app = setup().await;
    external(&app, "web", 1).await;
    create_set(&app, "web:1", 100.0).await;
    settle(&app).await;
    let deleted = ok(
        &app,
        "DeleteService",
        json!({"cluster": "demo", "service": "web", "force": true}),
    )
    .await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    assert_eq!(deleted["service"]["taskSets"][0]["status"], "DRAINING");
    settle(&app).await;
    assert!(tasks(&app)
        .await
        .iter()
        .all(|(_, desired)| desired == "STOPPED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fargate_task_set_goes_through_the_checks_run_task_makes() {
    let app = setup().await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "fg", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "web", "image": "busybox"}]}),
    )
    .await;
    external(&app, "web", 1).await;
    let body = |extra: Value| {
        let mut body = json!({"cluster": "demo", "service": "web", "taskDefinition": "fg",
                              "launchType": "FARGATE"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let vpc = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
    assert_eq!(
        error_type(&app, "CreateTaskSet", body(json!({}))).await,
        "InvalidParameterException",
        "awsvpc needs a network configuration"
    );
    assert_eq!(
        error_type(
            &app,
            "CreateTaskSet",
            body(json!({"networkConfiguration": vpc, "platformVersion": "1.3.0"}))
        )
        .await,
        "ClientException"
    );
    let set = ok(
        &app,
        "CreateTaskSet",
        body(json!({"networkConfiguration": vpc, "scale": {"value": 100.0, "unit": "PERCENT"}})),
    )
    .await["taskSet"]
        .clone();
    assert_eq!(set["launchType"], "FARGATE");
    assert_eq!(set["platformVersion"], "LATEST");
    assert_eq!(set["platformFamily"], "Linux");
    assert_eq!(
        set["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
        "DISABLED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_task_set_retried_with_its_client_token_answers_the_same_set() {
    let app = setup().await;
    external(&app, "web", 2).await;
    let body = json!({"cluster": "demo", "service": "web", "taskDefinition": "web:1",
                      "clientToken": "retry-1"});
    let first = ok(&app, "CreateTaskSet", body.clone()).await["taskSet"].clone();
    let again = ok(&app, "CreateTaskSet", body).await["taskSet"].clone();
    assert_eq!(first["id"], again["id"]);
    assert!(first.get("clientToken").is_none(), "{first}");
    let other = ok(
        &app,
        "CreateTaskSet",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web:1",
               "clientToken": "retry-2"}),
    )
    .await["taskSet"]
        .clone();
    assert_ne!(first["id"], other["id"]);
    let sets = describe(&app, None).await["taskSets"].clone();
    assert_eq!(sets.as_array().map(Vec::len), Some(2), "{sets}");
    assert_eq!(
        error_type(
            &app,
            "CreateTaskSet",
            json!({"cluster": "demo", "service": "web", "taskDefinition": "web:1",
                   "clientToken": "x".repeat(37)}),
        )
        .await,
        "InvalidParameterException"
    );
}
