//! Task scale-in protection: UpdateTaskProtection / GetTaskProtection through the dispatcher,
//! and the controller keeping protected tasks through scale-in and deployments.

use super::*;
use crate::controllers::services::reconcile_service;
use std::time::Duration;

const HELD: &str = "(service web) was unable to scale in due to (reason 1 tasks under protection).";

fn arns(tasks: &[&Value]) -> Vec<String> {
    tasks
        .iter()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect()
}

async fn protect(app: &Arc<App>, tasks: &[String], enabled: bool, minutes: Option<i64>) -> Value {
    let mut body = json!({"cluster": "demo", "tasks": tasks, "protectionEnabled": enabled});
    if let Some(m) = minutes {
        body["expiresInMinutes"] = json!(m);
    }
    ok(app, "UpdateTaskProtection", body).await
}

async fn error_of(app: &Arc<App>, op: &str, body: Value) -> String {
    call(app, op, body)
        .await
        .expect_err("refused")
        .name
        .to_string()
}

/// The task with `arn` among the service's tasks.
fn find<'a>(all: &'a [Value], arn: &str) -> &'a Value {
    all.iter()
        .find(|t| t["taskArn"] == arn)
        .expect("the task is listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_from_two_to_one_stops_the_unprotected_task() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 2, json!({})).await;
    let running = arns(&healthy(&tasks(&app, "web").await));
    let (kept, other) = (running[0].clone(), running[1].clone());
    let out = protect(&app, std::slice::from_ref(&kept), true, None).await;
    assert_eq!(out["failures"], json!([]));
    assert_eq!(out["protectedTasks"][0]["taskArn"], kept.as_str());
    assert_eq!(out["protectedTasks"][0]["protectionEnabled"], true);

    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 1}),
    )
    .await;
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(find(&all, &kept)["desiredStatus"], "RUNNING");
    assert_eq!(find(&all, &other)["desiredStatus"], "STOPPED");
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    assert!(is_stable(&describe(&app, "web").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_in_below_the_protected_tasks_waits_with_an_event_until_protection_is_removed() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 2, json!({})).await;
    let running = arns(&healthy(&tasks(&app, "web").await));
    protect(&app, &running, true, Some(60)).await;
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 1}),
    )
    .await;
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(healthy(&all).len(), 2, "no protected task is stopped");
    let service = describe(&app, "web").await;
    assert!(messages(&service).contains(&HELD.to_string()));
    assert!(!is_stable(&service));

    // The controller asks to be woken when the protection ends (60 minutes from now).
    let pass = reconcile_service(&app, "demo", "/services/demo/web")
        .await
        .expect("reconcile");
    let wake = pass.wake_after.expect("a held task wakes the controller");
    assert!(
        wake > Duration::from_secs(59 * 60) && wake <= Duration::from_secs(3600) + WAKE_SLACK,
        "{wake:?}"
    );

    protect(&app, &running[1..], false, None).await;
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(find(&all, &running[0])["desiredStatus"], "RUNNING");
    assert_eq!(find(&all, &running[1])["desiredStatus"], "STOPPED");
}

const WAKE_SLACK: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_deployment_waits_for_a_protected_task_until_its_protection_is_removed() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 1, json!({})).await;
    let old = arns(&healthy(&tasks(&app, "web").await));
    protect(&app, &old, true, Some(1)).await;
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "forceNewDeployment": true}),
    )
    .await;
    for _ in 0..3 {
        settle(&app).await;
        agent(&app, "web", Fate::Start, usize::MAX).await;
    }
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(find(&all, &old[0])["desiredStatus"], "RUNNING");
    assert_eq!(
        healthy(&all).len(),
        2,
        "the new task runs beside the old one"
    );
    let service = describe(&app, "web").await;
    assert_eq!(service["deployments"].as_array().map(Vec::len), Some(2));
    assert!(messages(&service).contains(&HELD.to_string()));

    protect(&app, &old, false, None).await;
    for _ in 0..3 {
        settle(&app).await;
        agent(&app, "web", Fate::Start, usize::MAX).await;
    }
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(find(&all, &old[0])["lastStatus"], "STOPPED");
    assert!(is_stable(&describe(&app, "web").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_task_protection_shows_protection_and_describe_tasks_does_not() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 1, json!({})).await;
    let task = arns(&healthy(&tasks(&app, "web").await));
    let before = app.now();
    let set = protect(&app, &task, true, None).await;
    let expires = set["protectedTasks"][0]["expirationDate"]
        .as_f64()
        .expect("expirationDate");
    assert!(
        (expires - before - 7200.0).abs() < 5.0,
        "two hours by default"
    );

    let got = ok(
        &app,
        "GetTaskProtection",
        json!({"cluster": "demo", "tasks": task}),
    )
    .await;
    assert_eq!(got["protectedTasks"][0]["protectionEnabled"], true);
    assert_eq!(got["protectedTasks"][0]["expirationDate"], expires);
    let all = ok(&app, "GetTaskProtection", json!({"cluster": "demo"})).await;
    assert_eq!(all["protectedTasks"].as_array().map(Vec::len), Some(1));

    let described = describe_tasks(&app, &[json!(task[0])]).await;
    let fields = described[0].as_object().expect("a task");
    assert!(fields.keys().all(|k| !k.to_lowercase().contains("protect")));

    protect(&app, &task, false, None).await;
    let got = ok(
        &app,
        "GetTaskProtection",
        json!({"cluster": "demo", "tasks": task}),
    )
    .await;
    assert_eq!(got["protectedTasks"][0]["protectionEnabled"], false);
    assert!(got["protectedTasks"][0].get("expirationDate").is_none());
    let all = ok(&app, "GetTaskProtection", json!({"cluster": "demo"})).await;
    assert_eq!(all["protectedTasks"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_ecs_errors_and_odd_tasks_are_failures() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 1, json!({})).await;
    let task = arns(&healthy(&tasks(&app, "web").await));
    let update = |extra: Value| {
        let mut body = json!({"cluster": "demo", "tasks": task, "protectionEnabled": true});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    for minutes in [0, -1, 2881] {
        assert_eq!(
            error_of(
                &app,
                "UpdateTaskProtection",
                update(json!({"expiresInMinutes": minutes}))
            )
            .await,
            "InvalidParameterException"
        );
    }
    assert_eq!(
        error_of(&app, "UpdateTaskProtection", update(json!({"tasks": []}))).await,
        "InvalidParameterException"
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("{i:032x}")).collect();
    assert_eq!(
        error_of(
            &app,
            "UpdateTaskProtection",
            update(json!({"tasks": eleven}))
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        error_of(
            &app,
            "UpdateTaskProtection",
            update(json!({"cluster": "nowhere"}))
        )
        .await,
        "ClusterNotFoundException"
    );
    assert_eq!(
        error_of(
            &app,
            "UpdateTaskProtection",
            json!({"cluster": "demo", "tasks": task})
        )
        .await,
        "InvalidParameterException",
        "protectionEnabled is required"
    );
    // Nothing was written by the refused calls.
    let got = ok(
        &app,
        "GetTaskProtection",
        json!({"cluster": "demo", "tasks": task}),
    )
    .await;
    assert_eq!(got["protectedTasks"][0]["protectionEnabled"], false);

    // An unknown task is MISSING; a RunTask task is not a service's: TASK_NOT_VALID.
    let run = ok(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "web:1"}),
    )
    .await;
    let standalone = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let missing = "0123456789abcdef0123456789abcdef".to_string();
    let out = ok(
        &app,
        "UpdateTaskProtection",
        update(json!({"tasks": [task[0], standalone, missing]})),
    )
    .await;
    assert_eq!(out["protectedTasks"].as_array().map(Vec::len), Some(1));
    let failures = out["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["arn"], standalone.as_str());
    assert_eq!(failures[0]["reason"], "TASK_NOT_VALID");
    assert!(failures[1]["arn"]
        .as_str()
        .is_some_and(|a| a.ends_with(&format!("task/demo/{missing}"))));
    assert_eq!(failures[1]["reason"], "MISSING");
}
