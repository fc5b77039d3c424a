//! DAEMON services: one task per eligible instance, joiners included, drained ones excluded.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_service_runs_one_task_per_instance_follows_joiners_and_leaves_drained_ones() {
    let app = app().await;
    let instances = setup(&app, 3).await;
    let created = ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "agent", "taskDefinition": "web:1",
               "schedulingStrategy": "DAEMON"}),
    )
    .await;
    assert_eq!(created["service"]["desiredCount"], 3);
    assert_eq!(
        created["service"]["deploymentConfiguration"]["maximumPercent"],
        100
    );
    assert_eq!(
        created["service"]["deploymentConfiguration"]["minimumHealthyPercent"],
        0
    );
    settle(&app).await;
    agent(&app, "agent", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let all = tasks(&app, "agent").await;
    assert_eq!(healthy(&all).len(), 3);
    let mut on: Vec<&str> = all
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), 3, "one task on each instance");
    assert!(is_stable(&describe(&app, "agent").await));

    let fourth = register(&app, "zone-3").await;
    settle(&app).await;
    let all = tasks(&app, "agent").await;
    assert_eq!(live(&all).len(), 4);
    assert!(all
        .iter()
        .any(|t| t["containerInstanceArn"] == fourth.as_str()));
    assert_eq!(describe(&app, "agent").await["desiredCount"], 4);
    agent(&app, "agent", Fate::Start, usize::MAX).await;
    settle(&app).await;

    ok(
        &app,
        "UpdateContainerInstancesState",
        json!({"cluster": "demo", "containerInstances": [instances[0]], "status": "DRAINING"}),
    )
    .await;
    settle(&app).await;
    let all = tasks(&app, "agent").await;
    let on_drained: Vec<&Value> = all
        .iter()
        .filter(|t| t["containerInstanceArn"] == instances[0].as_str())
        .collect();
    assert_eq!(on_drained.len(), 1);
    assert_eq!(on_drained[0]["desiredStatus"], "STOPPED");
    agent(&app, "agent", Fate::Start, usize::MAX).await;
    settle(&app).await;
    let service = describe(&app, "agent").await;
    assert_eq!(service["desiredCount"], 3);
    assert!(is_stable(&service));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_service_places_only_on_instances_meeting_its_constraints() {
    let app = app().await;
    setup(&app, 3).await;
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "agent", "taskDefinition": "web:1",
               "schedulingStrategy": "DAEMON",
               "placementConstraints": [{"type": "memberOf",
                   "expression": "attribute:ecs.availability-zone != zone-0"}]}),
    )
    .await;
    settle(&app).await;
    assert_eq!(live(&tasks(&app, "agent").await).len(), 2);
    assert_eq!(describe(&app, "agent").await["desiredCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_service_refuses_strategies_and_a_desired_count() {
    let app = app().await;
    setup(&app, 1).await;
    let strategies = call(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "agent", "taskDefinition": "web:1",
               "schedulingStrategy": "DAEMON",
               "placementStrategy": [{"type": "spread", "field": "instanceId"}]}),
    )
    .await
    .expect_err("strategies");
    assert_eq!(strategies.name, "InvalidParameterException");
    let count = call(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "agent", "taskDefinition": "web:1",
               "schedulingStrategy": "DAEMON", "desiredCount": 2}),
    )
    .await
    .expect_err("desired count");
    assert_eq!(count.name, "InvalidParameterException");
}
