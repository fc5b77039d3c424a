//! The controller at scale: 1,000 services on its real work-queue loop.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

const SERVICES: usize = 1000;

/// Every task of `demo` (STOPPED ones too), described.
async fn all_tasks(app: &Arc<App>) -> Vec<Value> {
    let mut arns: Vec<Value> = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"cluster": "demo", "desiredStatus": desired, "family": "web"});
            if let Some(token) = &token {
                input["nextToken"] = json!(token);
            }
            let out = ok(app, "ListTasks", input).await;
            arns.extend(out["taskArns"].as_array().cloned().unwrap_or_default());
            match out["nextToken"].as_str() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
    }
    describe_tasks(app, &arns).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_services_each_get_exactly_their_one_task_and_reach_running() {
    let app = app().await;
    // 40 instances of 4096 MiB hold 1,280 tasks of 128 MiB.
    ok(&app, "CreateCluster", json!({"clusterName": "demo"})).await;
    for i in 0..40 {
        register(&app, &format!("zone-{}", i % 3)).await;
    }
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 128, "essential": true}
        ]}),
    )
    .await;
    let controller = crate::controllers::services::spawn(app.clone());
    for i in 0..SERVICES {
        ok(
            &app,
            "CreateService",
            json!({"cluster": "demo", "serviceName": format!("s{i:04}"),
                   "taskDefinition": "web", "desiredCount": 1}),
        )
        .await;
    }
    // The controller places one task per service; the simulated agents start each once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut reported: std::collections::HashSet<String> = Default::default();
    loop {
        let tasks = all_tasks(&app).await;
        for task in &tasks {
            let arn = task["taskArn"].as_str().expect("arn").to_string();
            if task["lastStatus"] == "PROVISIONING" && reported.insert(arn.clone()) {
                ok(&app, "SubmitTaskStateChange", json!({"cluster": "demo", "task": arn,
                    "status": "RUNNING",
                    "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "x"}]}))
                .await;
            }
        }
        let mut per_service: HashMap<String, usize> = HashMap::new();
        for task in tasks.iter().filter(|t| t["lastStatus"] != "STOPPED") {
            let group = task["group"].as_str().expect("group").to_string();
            *per_service.entry(group).or_default() += 1;
        }
        assert!(
            per_service.values().all(|n| *n <= 1),
            "a service got a second task: {per_service:?}"
        );
        let running = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING")
            .count();
        if running == SERVICES && per_service.len() == SERVICES {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{running} of {SERVICES} services running, {} with a task",
            per_service.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every service shows it, as DescribeServices counts it.
    for chunk in (0..SERVICES).collect::<Vec<_>>().chunks(10) {
        let names: Vec<String> = chunk.iter().map(|i| format!("s{i:04}")).collect();
        let out = ok(
            &app,
            "DescribeServices",
            json!({"cluster": "demo", "services": names}),
        )
        .await;
        for service in out["services"].as_array().expect("services") {
            assert_eq!(service["runningCount"], 1, "{service}");
            assert_eq!(service["pendingCount"], 0, "{service}");
        }
    }
    controller.abort();
}
