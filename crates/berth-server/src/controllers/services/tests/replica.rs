//! REPLICA services: scaling, replacement of stopped tasks, backoff, draining, deletion.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_scales_up_to_its_desired_count_and_reaches_a_steady_state() {
    let app = app().await;
    setup(&app, 2).await;
    let created = create(&app, "web", 3, json!({})).await;
    assert_eq!(created["deployments"][0]["rolloutState"], "IN_PROGRESS");
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|t| t["group"] == "service:web"));
    let deployment = created["deployments"][0]["id"].as_str().expect("id");
    assert!(all.iter().all(|t| t["startedBy"] == deployment));
    // Spread over instances by default: both instances get tasks.
    let mut on: Vec<&str> = all
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), 2);
    let service = describe(&app, "web").await;
    assert_eq!(service["pendingCount"], 3);
    assert!(!is_stable(&service));
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "web").await;
    assert!(is_stable(&service));
    assert_eq!(service["runningCount"], 3);
    assert_eq!(service["deployments"][0]["rolloutState"], "COMPLETED");
    let events = messages(&service);
    assert_eq!(events[0], "(service web) has reached a steady state.");
    assert!(
        events[1].starts_with("(service web) (deployment ecs-svc/")
            && events[1].ends_with(") deployment completed.")
    );
    assert!(events[2].starts_with("(service web) has started 3 tasks: (task "));
    let history = ok(
        &app,
        "ListServiceDeployments",
        json!({"cluster": "demo", "service": "web"}),
    )
    .await;
    assert_eq!(history["serviceDeployments"][0]["status"], "SUCCESSFUL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_stops_the_extra_tasks_and_scaling_up_starts_more() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 3, json!({})).await;
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 1}),
    )
    .await;
    settle(&app).await;
    let all = tasks(&app, "web").await;
    assert_eq!(healthy(&all).len(), 1);
    let stopping: Vec<&Value> = all
        .iter()
        .filter(|t| t["desiredStatus"] == "STOPPED")
        .collect();
    assert_eq!(stopping.len(), 2);
    assert!(stopping
        .iter()
        .all(|t| t["stopCode"] == "ServiceSchedulerInitiated"));
    assert!(stopping[0]["stoppedReason"]
        .as_str()
        .unwrap_or("")
        .starts_with("Scaling activity initiated by (deployment ecs-svc/"));
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "web").await;
    assert!(is_stable(&service));
    assert_eq!(service["runningCount"], 1);
    assert!(messages(&service)
        .iter()
        .any(|m| m.starts_with("(service web) has stopped 2 running tasks:")));
    ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 4}),
    )
    .await;
    settle(&app).await;
    assert_eq!(live(&tasks(&app, "web").await).len(), 4);
    // Scaling is not a new deployment.
    assert_eq!(
        describe(&app, "web").await["deployments"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_stops_on_its_own_is_replaced_after_the_backoff_delay() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 2, json!({})).await;
    let all = tasks(&app, "web").await;
    crash(&app, &all[0]).await;
    settle(&app).await;
    // The first failure of a streak waits one second.
    assert_eq!(live(&tasks(&app, "web").await).len(), 1);
    let service = describe(&app, "web").await;
    assert_eq!(service["deployments"][0]["failedTasks"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    settle(&app).await;
    assert_eq!(live(&tasks(&app, "web").await).len(), 2);
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    assert!(is_stable(&describe(&app, "web").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_keep_failing_are_restarted_ever_more_slowly() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 1, json!({})).await;
    let mut starts = Vec::new();
    let begin = std::time::Instant::now();
    // Crash the task as soon as it runs, for four seconds.
    while begin.elapsed() < std::time::Duration::from_secs(4) {
        settle(&app).await;
        agent(&app, "web", Fate::Start, usize::MAX).await;
        for task in healthy(&tasks(&app, "web").await) {
            starts.push(begin.elapsed().as_secs_f64());
            crash(&app, task).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Delays of 1 s, then 2 s: at most three starts in four seconds (without backoff, one
    // every pass: dozens).
    assert!(starts.len() <= 3, "{starts:?}");
    assert!(starts.len() >= 2, "{starts:?}");
    let service = describe(&app, "web").await;
    assert_eq!(service["deployments"][0]["failedTasks"], starts.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_a_draining_instance_move_within_the_bounds() {
    let app = app().await;
    let instances = setup(&app, 2).await;
    create_steady(&app, "web", 2, json!({})).await;
    let before = tasks(&app, "web").await;
    let on_first: Vec<&Value> = before
        .iter()
        .filter(|t| t["containerInstanceArn"] == instances[0].as_str())
        .collect();
    assert_eq!(on_first.len(), 1, "spread puts one task on each instance");
    ok(
        &app,
        "UpdateContainerInstancesState",
        json!({"cluster": "demo", "containerInstances": [instances[0]], "status": "DRAINING"}),
    )
    .await;
    settle(&app).await;
    // The replacement starts first (max 200 %); the draining task stays until it is healthy.
    let now = tasks(&app, "web").await;
    assert_eq!(live(&now).len(), 3);
    assert_eq!(healthy(&now).len(), 2);
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let after = tasks(&app, "web").await;
    let running: Vec<&Value> = healthy(&after);
    assert_eq!(running.len(), 2);
    assert!(running
        .iter()
        .all(|t| t["containerInstanceArn"] == instances[1].as_str()));
    assert!(is_stable(&describe(&app, "web").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_service_needs_force_above_zero_then_drains_it_to_inactive() {
    let app = app().await;
    setup(&app, 1).await;
    create_steady(&app, "web", 2, json!({})).await;
    let refused = call(
        &app,
        "DeleteService",
        json!({"cluster": "demo", "service": "web"}),
    )
    .await
    .expect_err("scaled above 0");
    assert_eq!(refused.name, "InvalidParameterException");
    assert_eq!(
        refused.message,
        "The service cannot be stopped while it is scaled above 0."
    );
    let deleted = ok(
        &app,
        "DeleteService",
        json!({"cluster": "demo", "service": "web", "force": true}),
    )
    .await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    settle(&app).await;
    assert_eq!(healthy(&tasks(&app, "web").await).len(), 0);
    agent(&app, "web", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "web").await;
    assert_eq!(service["status"], "INACTIVE");
    let listed = ok(&app, "ListServices", json!({"cluster": "demo"})).await;
    assert_eq!(listed["serviceArns"], json!([]));
    // The name can be used again.
    create(&app, "web", 1, json!({})).await;
    assert_eq!(describe(&app, "web").await["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_fits_nowhere_is_reported_in_the_service_events() {
    let app = app().await;
    setup(&app, 1).await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "huge", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 8192}
        ]}),
    )
    .await;
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "huge", "taskDefinition": "huge", "desiredCount": 1}),
    )
    .await;
    settle(&app).await;
    settle(&app).await;
    let service = describe(&app, "huge").await;
    let unplaced: Vec<String> = messages(&service)
        .into_iter()
        .filter(|m| m.contains("was unable to place a task"))
        .collect();
    assert_eq!(
        unplaced.len(),
        1,
        "said once, not on every pass: {unplaced:?}"
    );
    assert!(
        unplaced[0].contains("has insufficient memory available"),
        "{}",
        unplaced[0]
    );
    assert!(tasks(&app, "huge").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_task_is_stopped_after_the_grace_period_and_replaced() {
    let app = app().await;
    setup(&app, 1).await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "checked", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 64,
             "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5}}
        ]}),
    )
    .await;
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "checked", "taskDefinition": "checked",
               "desiredCount": 1, "healthCheckGracePeriodSeconds": 0}),
    )
    .await;
    settle(&app).await;
    agent(&app, "checked", Fate::Start, usize::MAX).await;
    settle(&app).await;
    // RUNNING but not yet HEALTHY: not counted as healthy, so no steady state yet.
    assert!(!messages(&describe(&app, "checked").await)
        .iter()
        .any(|m| m.contains("steady state")));
    let task = tasks(&app, "checked").await.remove(0);
    let arn = task["taskArn"].as_str().expect("arn").to_string();
    let health = |status: &str| {
        json!({"cluster": "demo", "task": arn, "containers": [
            {"containerName": "web", "healthStatus": status}
        ]})
    };
    ok(&app, "SubmitTaskStateChange", health("HEALTHY")).await;
    settle(&app).await;
    assert!(is_stable(&describe(&app, "checked").await));
    ok(&app, "SubmitTaskStateChange", health("UNHEALTHY")).await;
    settle(&app).await;
    let stopped = ok(
        &app,
        "DescribeTasks",
        json!({"cluster": "demo", "tasks": [arn]}),
    )
    .await;
    assert_eq!(stopped["tasks"][0]["desiredStatus"], "STOPPED");
    assert_eq!(stopped["tasks"][0]["stopCode"], "ServiceSchedulerInitiated");
    assert_eq!(
        stopped["tasks"][0]["stoppedReason"],
        "Task failed container health checks."
    );
    // Its replacement starts beside it (max 200 %).
    assert_eq!(live(&tasks(&app, "checked").await).len(), 2);
    let service = describe(&app, "checked").await;
    assert!(messages(&service)
        .iter()
        .any(|m| m.ends_with("failed container health checks.")));
}
