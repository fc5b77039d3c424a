//! Rolling deployments: the bounds hold, the circuit breaker fails and rolls back, a stopped
//! deployment rolls back, and a controller restarted in the middle carries on.

use super::*;
use std::time::Duration;

/// Counts after every step: (live, healthy).
async fn counts(app: &Arc<App>) -> (usize, usize) {
    let all = tasks(app, "web").await;
    (live(&all).len(), healthy(&all).len())
}

fn task_definitions(all: &[&Value]) -> Vec<String> {
    let mut tds: Vec<String> = all
        .iter()
        .filter_map(|t| t["taskDefinitionArn"].as_str())
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .collect();
    tds.sort();
    tds.dedup();
    tds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_with_min_100_max_200_never_leaves_the_bounds() {
    let app = app().await;
    setup(&app, 2).await;
    create_steady(&app, "web", 3, json!({})).await;
    let updated = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2",
               "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200}}),
    )
    .await;
    let deployments = updated["service"]["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[1]["status"], "ACTIVE");
    // One task of the agents' per step: the slowest rollout, where the bounds matter most.
    for _ in 0..40 {
        settle(&app).await;
        let (live_now, healthy_now) = counts(&app).await;
        assert!(live_now <= 6, "{live_now} tasks RUNNING or PENDING");
        assert!(healthy_now >= 3, "only {healthy_now} tasks RUNNING");
        agent(&app, "web", Fate::Start, 1).await;
        let (live_now, healthy_now) = counts(&app).await;
        assert!(live_now <= 6 && healthy_now >= 3);
        if is_stable(&describe(&app, "web").await) {
            break;
        }
    }
    let service = describe(&app, "web").await;
    assert!(is_stable(&service), "{service}");
    assert_eq!(service["deployments"][0]["rolloutState"], "COMPLETED");
    assert!(service["taskDefinition"]
        .as_str()
        .unwrap_or("")
        .ends_with("web:2"));
    let all = tasks(&app, "web").await;
    assert_eq!(task_definitions(&live(&all)), vec!["web:2".to_string()]);
    assert_eq!(live(&all).len(), 3);
    let history = ok(
        &app,
        "ListServiceDeployments",
        json!({"cluster": "demo", "service": "web"}),
    )
    .await;
    let statuses: Vec<&str> = history["serviceDeployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["SUCCESSFUL", "SUCCESSFUL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_fails_a_broken_deployment_and_rolls_back() {
    let app = app().await;
    setup(&app, 2).await;
    let breaker = json!({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}});
    create_steady(&app, "web", 3, breaker).await;
    let before = describe(&app, "web").await;
    let completed_id = before["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let updated = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "bad:1"}),
    )
    .await;
    let failing_id = updated["service"]["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    settle(&app).await;
    agent(&app, "web", Fate::PullFails, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "web").await;
    let failed = service["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == failing_id.as_str());
    // Either still listed (its tasks not yet gone) or removed; the events tell.
    if let Some(failed) = failed {
        assert_eq!(failed["rolloutState"], "FAILED");
        assert_eq!(failed["failedTasks"], 3);
        assert_eq!(
            failed["rolloutStateReason"],
            "ECS deployment circuit breaker: tasks failed to start."
        );
    }
    let primary = &service["deployments"][0];
    assert_eq!(primary["status"], "PRIMARY");
    assert!(primary["taskDefinition"]
        .as_str()
        .unwrap_or("")
        .ends_with("web:1"));
    assert_eq!(
        primary["rolloutStateReason"],
        format!("ECS deployment circuit breaker: rolling back to deploymentId {completed_id}.")
    );
    let events = messages(&service);
    assert!(events.contains(&format!(
        "(service web) (deployment {failing_id}) deployment failed: tasks failed to start."
    )));
    assert!(events.contains(&format!(
        "(service web) rolling back to deployment {completed_id}."
    )));
    // Exactly the threshold's tasks of the broken deployment were started.
    let bad: Vec<Value> = tasks(&app, "web")
        .await
        .into_iter()
        .filter(|t| t["startedBy"] == failing_id.as_str())
        .collect();
    assert_eq!(bad.len(), 3);
    for _ in 0..10 {
        agent(&app, "web", Fate::PullFails, usize::MAX).await;
        settle(&app).await;
    }
    let service = describe(&app, "web").await;
    assert!(is_stable(&service), "{service}");
    assert_eq!(service["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(
        task_definitions(&live(&tasks(&app, "web").await)),
        vec!["web:1".to_string()]
    );
    assert_eq!(
        messages(&service)[0],
        "(service web) has reached a steady state."
    );
    let history = ok(
        &app,
        "ListServiceDeployments",
        json!({"cluster": "demo", "service": "web"}),
    )
    .await;
    assert_eq!(
        history["serviceDeployments"][0]["status"],
        "ROLLBACK_SUCCESSFUL"
    );
    let arn = history["serviceDeployments"][0]["serviceDeploymentArn"].clone();
    let described = ok(
        &app,
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": [arn]}),
    )
    .await;
    let sd = &described["serviceDeployments"][0];
    assert_eq!(sd["deploymentCircuitBreaker"]["status"], "TRIGGERED");
    assert_eq!(sd["deploymentCircuitBreaker"]["threshold"], 3);
    assert_eq!(sd["deploymentCircuitBreaker"]["failureCount"], 3);
    assert!(sd["rollback"]["serviceRevisionArn"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rollback_a_failed_deployment_stops_launching() {
    let app = app().await;
    setup(&app, 1).await;
    let breaker = json!({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}});
    create_steady(&app, "web", 3, breaker).await;
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "bad:1"}),
    )
    .await;
    for _ in 0..5 {
        settle(&app).await;
        agent(&app, "web", Fate::PullFails, usize::MAX).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let service = describe(&app, "web").await;
    assert_eq!(service["deployments"][0]["rolloutState"], "FAILED");
    assert_eq!(service["deployments"][0]["failedTasks"], 3);
    assert_eq!(
        healthy(&tasks(&app, "web").await).len(),
        3,
        "the old tasks keep running"
    );
    let bad = tasks(&app, "web")
        .await
        .into_iter()
        .filter(|t| {
            t["taskDefinitionArn"]
                .as_str()
                .unwrap_or("")
                .ends_with("bad:1")
        })
        .count();
    assert_eq!(bad, 3, "no task was launched after the deployment failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_service_deployment_rolls_back_to_the_last_completed_deployment() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 2, json!({})).await;
    let updated = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    let sd = updated["service"]["currentServiceDeployment"]
        .as_str()
        .expect("sd")
        .to_string();
    settle(&app).await;
    ok(
        &app,
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": sd}),
    )
    .await;
    for _ in 0..10 {
        agent(&app, "web", Fate::Start, usize::MAX).await;
        settle(&app).await;
    }
    let service = describe(&app, "web").await;
    assert!(is_stable(&service));
    assert_eq!(
        task_definitions(&live(&tasks(&app, "web").await)),
        vec!["web:1".to_string()]
    );
    let described = ok(
        &app,
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": [sd]}),
    )
    .await;
    assert_eq!(
        described["serviceDeployments"][0]["status"],
        "ROLLBACK_SUCCESSFUL"
    );
    let again = call(
        &app,
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": sd}),
    )
    .await
    .expect_err("finished");
    assert_eq!(again.name, "ConflictException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restarted_mid_deployment_continues_where_it_was() {
    let app = app().await;
    setup(&app, 2).await;
    create_steady(&app, "web", 3, json!({})).await;
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    let controller = super::super::spawn(app.clone());
    // Let the new tasks be placed and one of them start, then kill the controller.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while live(&tasks(&app, "web").await).len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the controller placed no new tasks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent(&app, "web", Fate::Start, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    controller.abort();
    let _ = controller.await;
    let mid = tasks(&app, "web").await;
    assert_eq!(
        live(&mid).len(),
        6,
        "placed tasks are kept, none placed twice"
    );
    // A new controller (as after a server restart) carries the deployment to its end.
    let controller = super::super::spawn(app.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        agent(&app, "web", Fate::Start, usize::MAX).await;
        let service = describe(&app, "web").await;
        if is_stable(&service) && service["deployments"][0]["rolloutState"] == "COMPLETED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no steady state: {service}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controller.abort();
    let all = tasks(&app, "web").await;
    assert_eq!(task_definitions(&live(&all)), vec!["web:2".to_string()]);
    // Six tasks of the new revision were never needed: exactly three were started.
    let new = all
        .iter()
        .filter(|t| {
            t["taskDefinitionArn"]
                .as_str()
                .unwrap_or("")
                .ends_with("web:2")
        })
        .count();
    assert_eq!(new, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_right_after_services_stable_still_rolls_back_to_the_stable_deployment() {
    let app = app().await;
    setup(&app, 2).await;
    let breaker = json!({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}});
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web:1",
               "desiredCount": 3})
        .as_object()
        .cloned()
        .map(|mut body| {
            body.extend(breaker.as_object().cloned().unwrap_or_default());
            Value::Object(body)
        })
        .expect("body"),
    )
    .await;
    settle(&app).await;
    agent(&app, "web", Fate::Start, usize::MAX).await;
    // `wait services-stable` would return now (one deployment, runningCount == desiredCount),
    // but the controller has not run since the tasks started: the update comes first.
    let stable = describe(&app, "web").await;
    assert_eq!(stable["runningCount"], 3);
    assert_eq!(
        stable["deployments"].as_array().expect("deployments").len(),
        1
    );
    let stable_id = stable["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "bad:1"}),
    )
    .await;
    let during = describe(&app, "web").await;
    let old = during["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == stable_id.as_str())
        .expect("old deployment listed");
    assert_eq!(old["rolloutState"], "COMPLETED");
    settle(&app).await;
    agent(&app, "web", Fate::PullFails, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "web").await;
    let primary = &service["deployments"][0];
    assert!(primary["taskDefinition"]
        .as_str()
        .unwrap_or("")
        .ends_with("web:1"));
    assert_eq!(
        primary["rolloutStateReason"],
        format!("ECS deployment circuit breaker: rolling back to deploymentId {stable_id}.")
    );
}
