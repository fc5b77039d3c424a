//! Controller tests on an in-memory server: the API is driven through the dispatcher with the
//! JSON an ECS client sends, agents are simulated by their SubmitTaskStateChange reports, and
//! the controller runs one pass at a time (or as its real loop, for the restart test).

mod daemon;
mod deployments;
mod protection;
mod replica;
mod scale;

use super::reconcile_all;
use crate::app::App;
pub(super) use crate::test_support::{agent_attributes, app, call, ok};
use serde_json::{json, Value};
use std::sync::Arc;

/// Cluster `demo`, `instances` container instances (4096 CPU, 4096 MiB each, one zone per
/// instance), task definitions `web:1` and `web:2` (busybox) and `bad:1` (an image that does
/// not exist). Returns the instance ARNs.
pub(super) async fn setup(app: &Arc<App>, instances: usize) -> Vec<String> {
    ok(app, "CreateCluster", json!({"clusterName": "demo"})).await;
    let mut arns = Vec::new();
    for i in 0..instances {
        arns.push(register(app, &format!("zone-{i}")).await);
    }
    for command in ["sleep 3600", "sleep 7200"] {
        ok(
            app,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "memory": 128, "essential": true,
                 "command": ["sh", "-c", command]}
            ]}),
        )
        .await;
    }
    ok(
        app,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": [
            {"name": "web", "image": "nope/does-not-exist:1", "memory": 128, "essential": true}
        ]}),
    )
    .await;
    arns
}

/// Registers one more instance in `demo`; returns its ARN.
pub(super) async fn register(app: &Arc<App>, zone: &str) -> String {
    let out = ok(
        app,
        "RegisterContainerInstance",
        json!({"cluster": "demo", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ], "attributes": agent_attributes(&[json!({"name": "ecs.availability-zone", "value": zone})])}),
    )
    .await;
    out["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_string()
}

/// Runs controller passes until one changes nothing (at most 20).
pub(super) async fn settle(app: &Arc<App>) {
    for _ in 0..20 {
        if reconcile_all(app).await == 0 {
            return;
        }
    }
    panic!("the controller did not settle in 20 passes");
}

/// Every task of the service, STOPPED ones included.
pub(super) async fn tasks(app: &Arc<App>, service: &str) -> Vec<Value> {
    let mut arns: Vec<Value> = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let out = ok(
            app,
            "ListTasks",
            json!({"cluster": "demo", "serviceName": service, "desiredStatus": desired}),
        )
        .await;
        arns.extend(out["taskArns"].as_array().cloned().unwrap_or_default());
    }
    describe_tasks(app, &arns).await
}

/// The tasks of `demo` with these ARNs, described 100 at a time.
pub(super) async fn describe_tasks(app: &Arc<App>, arns: &[Value]) -> Vec<Value> {
    let mut all = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ok(
            app,
            "DescribeTasks",
            json!({"cluster": "demo", "tasks": chunk}),
        )
        .await;
        all.extend(out["tasks"].as_array().cloned().unwrap_or_default());
    }
    all
}

/// Tasks not yet STOPPED.
pub(super) fn live(tasks: &[Value]) -> Vec<&Value> {
    tasks
        .iter()
        .filter(|t| t["lastStatus"] != "STOPPED")
        .collect()
}

/// Tasks RUNNING and not asked to stop.
pub(super) fn healthy(tasks: &[Value]) -> Vec<&Value> {
    tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["desiredStatus"] == "RUNNING")
        .collect()
}

async fn report(app: &Arc<App>, task: &Value, status: &str, container: Value) {
    let arn = task["taskArn"].as_str().expect("arn");
    ok(
        app,
        "SubmitTaskStateChange",
        json!({"cluster": "demo", "task": arn, "status": status, "containers": [container]}),
    )
    .await;
}

/// What the simulated agents do with one task per call of [`agent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Tasks start (RUNNING).
    Start,
    /// Tasks whose image is `nope/...` fail to start; others start.
    PullFails,
}

/// The agents act on every task once: a new task starts (or fails to pull), a task asked to
/// stop stops. At most `limit` tasks start per call.
pub(super) async fn agent(app: &Arc<App>, service: &str, fate: Fate, limit: usize) {
    let mut started = 0;
    for task in tasks(app, service).await {
        let last = task["lastStatus"].as_str().unwrap_or("");
        let desired = task["desiredStatus"].as_str().unwrap_or("");
        if last == "STOPPED" {
            continue;
        }
        if desired == "STOPPED" {
            let exited = json!({"containerName": "web", "status": "STOPPED", "exitCode": 143});
            report(app, &task, "STOPPED", exited).await;
            continue;
        }
        if last != "PROVISIONING" || started >= limit {
            continue;
        }
        started += 1;
        let image = task["containers"][0]["image"].as_str().unwrap_or("");
        if fate == Fate::PullFails && image.starts_with("nope/") {
            let reason = format!("CannotPullContainerError: pull image {image}: not found");
            report(
                app,
                &task,
                "PENDING",
                json!({"containerName": "web", "status": "PENDING"}),
            )
            .await;
            let failed = json!({"containerName": "web", "status": "STOPPED", "reason": reason});
            let arn = task["taskArn"].as_str().expect("arn");
            ok(
                app,
                "SubmitTaskStateChange",
                json!({"cluster": "demo", "task": arn, "status": "STOPPED", "reason": reason,
                       "containers": [failed]}),
            )
            .await;
        } else {
            let running =
                json!({"containerName": "web", "status": "RUNNING", "runtimeId": "c0ffee"});
            report(app, &task, "RUNNING", running).await;
        }
    }
}

/// The essential container of a RUNNING task exits on its own.
pub(super) async fn crash(app: &Arc<App>, task: &Value) {
    let exited = json!({"containerName": "web", "status": "STOPPED", "exitCode": 1});
    report(app, task, "STOPPED", exited).await;
}

/// The service as DescribeServices returns it.
pub(super) async fn describe(app: &Arc<App>, service: &str) -> Value {
    let out = ok(
        app,
        "DescribeServices",
        json!({"cluster": "demo", "services": [service]}),
    )
    .await;
    out["services"][0].clone()
}

/// The messages of the service's events, newest first.
pub(super) fn messages(service: &Value) -> Vec<String> {
    service["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

/// Whether the service is what `aws ecs wait services-stable` waits for.
pub(super) fn is_stable(service: &Value) -> bool {
    service["deployments"].as_array().map(Vec::len) == Some(1)
        && service["runningCount"] == service["desiredCount"]
}

/// Creates a REPLICA service `name` running `web:1` with `desired` tasks.
pub(super) async fn create(app: &Arc<App>, name: &str, desired: i64, extra: Value) -> Value {
    let mut body = json!({"cluster": "demo", "serviceName": name, "taskDefinition": "web:1",
                          "desiredCount": desired});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    ok(app, "CreateService", body).await["service"].clone()
}

/// Creates a service and drives it to a steady state.
pub(super) async fn create_steady(app: &Arc<App>, name: &str, desired: i64, extra: Value) {
    create(app, name, desired, extra).await;
    for _ in 0..10 {
        settle(app).await;
        agent(app, name, Fate::Start, usize::MAX).await;
    }
    settle(app).await;
    assert!(
        is_stable(&describe(app, name).await),
        "service {name} did not become stable"
    );
}
