//! RunTask and StartTask through signed HTTP honour the task definition's `requiresAttributes`:
//! a task needing an attribute no instance carries is an `ATTRIBUTE` failure per instance,
//! naming the attribute in `detail`, and nothing is placed; once PutAttributes gives an
//! instance the attribute, the tasks go there.

use crate::test_support::{now, send_ecs, served, Served, Signing};
use serde_json::{json, Value};

const SPLUNK: &str = "com.amazonaws.ecs.capability.logging-driver.splunk";

async fn ok(s: &Served, op: &str, body: Value) -> Value {
    let answer = send_ecs(s, op, &body, Signing::As(&s.credentials, now())).await;
    assert_eq!(answer.status, 200, "{op}: {answer:?}");
    serde_json::from_str(&answer.body).expect("json")
}

/// Registers an instance with the attributes a Berth agent on a Docker daemon without the
/// splunk log driver advertises: Docker Remote API versions and the json-file driver.
async fn agent_like_instance(s: &Served) -> String {
    let mut attributes: Vec<Value> = (17..=44)
        .map(|v| json!({"name": format!("com.amazonaws.ecs.capability.docker-remote-api.1.{v}")}))
        .collect();
    attributes.push(json!({"name": "com.amazonaws.ecs.capability.logging-driver.json-file"}));
    attributes.push(json!({"name": "ecs.os-type", "value": "linux"}));
    let out = ok(
        s,
        "RegisterContainerInstance",
        json!({"cluster": "logs", "attributes": attributes, "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ]}),
    )
    .await;
    out["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("instance arn")
        .to_string()
}

fn placed_on(out: &Value) -> Vec<String> {
    out["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().expect("arn").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_needing_an_attribute_no_instance_has_fails_placement_until_one_gets_it() {
    let s = served().await;
    ok(&s, "CreateCluster", json!({"clusterName": "logs"})).await;
    let first = agent_like_instance(&s).await;
    let second = agent_like_instance(&s).await;
    let td = ok(
        &s,
        "RegisterTaskDefinition",
        json!({"family": "splunky", "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": 64, "essential": true,
            "logConfiguration": {"logDriver": "splunk",
                "options": {"splunk-url": "https://splunk.example:8088"}}}]}),
    )
    .await;
    let required: Vec<&str> = td["taskDefinition"]["requiresAttributes"]
        .as_array()
        .expect("requiresAttributes")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(required.contains(&SPLUNK), "{required:?}");

    let out = ok(
        &s,
        "RunTask",
        json!({"cluster": "logs", "taskDefinition": "splunky", "count": 2}),
    )
    .await;
    assert_eq!(out["tasks"], json!([]));
    let mut failures = out["failures"].as_array().expect("failures").clone();
    failures.sort_by_key(|f| f["arn"].as_str().unwrap_or_default().to_string());
    let mut expected = vec![
        json!({"arn": first, "reason": "ATTRIBUTE", "detail": SPLUNK}),
        json!({"arn": second, "reason": "ATTRIBUTE", "detail": SPLUNK}),
    ];
    expected.sort_by_key(|f| f["arn"].as_str().unwrap_or_default().to_string());
    assert_eq!(failures, expected);
    let listed = ok(&s, "ListTasks", json!({"cluster": "logs"})).await;
    assert_eq!(listed["taskArns"], json!([]), "nothing was placed");

    // StartTask on a named instance lacking the attribute is refused the same way.
    let out = ok(
        &s,
        "StartTask",
        json!({"cluster": "logs", "taskDefinition": "splunky", "containerInstances": [first]}),
    )
    .await;
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(
        out["failures"],
        json!([{"arn": first, "reason": "ATTRIBUTE", "detail": SPLUNK}])
    );

    ok(
        &s,
        "PutAttributes",
        json!({"cluster": "logs", "attributes": [
            {"name": SPLUNK, "targetType": "container-instance", "targetId": second}]}),
    )
    .await;
    let out = ok(
        &s,
        "RunTask",
        json!({"cluster": "logs", "taskDefinition": "splunky", "count": 3}),
    )
    .await;
    assert_eq!(out["failures"], json!([]));
    assert_eq!(placed_on(&out), vec![second.clone(); 3]);
    let out = ok(
        &s,
        "StartTask",
        json!({"cluster": "logs", "taskDefinition": "splunky",
               "containerInstances": [first, second]}),
    )
    .await;
    assert_eq!(placed_on(&out), vec![second.clone()]);
    assert_eq!(
        out["failures"],
        json!([{"arn": first, "reason": "ATTRIBUTE", "detail": SPLUNK}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_requiring_nothing_runs_on_an_instance_registered_without_attributes() {
    let s = served().await;
    ok(&s, "CreateCluster", json!({"clusterName": "bare"})).await;
    let instance = ok(
        &s,
        "RegisterContainerInstance",
        json!({"cluster": "bare", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
        ]}),
    )
    .await;
    ok(
        &s,
        "RegisterTaskDefinition",
        json!({"family": "plain", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 64, "essential": true}]}),
    )
    .await;
    let out = ok(
        &s,
        "RunTask",
        json!({"cluster": "bare", "taskDefinition": "plain"}),
    )
    .await;
    assert_eq!(out["failures"], json!([]));
    assert_eq!(
        placed_on(&out),
        vec![instance["containerInstance"]["containerInstanceArn"]
            .as_str()
            .expect("arn")
            .to_string()]
    );
}
