//! Handler tests of the service operations on an in-memory server (no controller running),
//! driven through the dispatcher with the JSON an ECS client sends.

use crate::app::{App, ServerConfig};
use crate::error::ApiError;
use crate::test_support::{call, ok};
use serde_json::{json, Value};
use std::sync::Arc;

async fn app() -> Arc<App> {
    let app = App::open(ServerConfig::default()).await.expect("app");
    ok(&app, "CreateCluster", json!({"clusterName": "demo"})).await;
    ok(
        &app,
        "RegisterContainerInstance",
        json!({"cluster": "demo", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 2048}
        ]}),
    )
    .await;
    for _ in 0..2 {
        ok(
            &app,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "memory": 64}
            ], "tags": [{"key": "from", "value": "td"}]}),
        )
        .await;
    }
    app
}

async fn err(app: &Arc<App>, op: &str, body: Value) -> ApiError {
    call(app, op, body).await.expect_err("the call should fail")
}

async fn create(app: &Arc<App>, name: &str, extra: Value) -> Value {
    let mut body = json!({"cluster": "demo", "serviceName": name, "taskDefinition": "web:1",
                          "desiredCount": 2});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    ok(app, "CreateService", body).await["service"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_service_returns_the_ecs_shape_with_defaults_and_one_primary_deployment() {
    let app = app().await;
    let service = create(
        &app,
        "web",
        json!({"tags": [{"key": "team", "value": "a"}]}),
    )
    .await;
    assert_eq!(
        service["serviceArn"],
        "arn:aws:ecs:us-east-1:000000000000:service/demo/web"
    );
    assert_eq!(
        service["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/demo"
    );
    assert_eq!(service["status"], "ACTIVE");
    assert_eq!(service["desiredCount"], 2);
    assert_eq!(service["runningCount"], 0);
    assert_eq!(service["launchType"], "EC2");
    assert_eq!(service["schedulingStrategy"], "REPLICA");
    assert_eq!(service["deploymentController"]["type"], "ECS");
    assert_eq!(
        service["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false},
               "maximumPercent": 200, "minimumHealthyPercent": 100})
    );
    let deployment = &service["deployments"][0];
    assert_eq!(deployment["status"], "PRIMARY");
    assert_eq!(deployment["rolloutState"], "IN_PROGRESS");
    let id = deployment["id"].as_str().expect("id");
    assert!(
        id.starts_with("ecs-svc/") && id.len() == "ecs-svc/".len() + 19,
        "{id}"
    );
    assert_eq!(
        deployment["rolloutStateReason"],
        format!("ECS deployment {id} in progress.")
    );
    assert!(service["currentServiceDeployment"]
        .as_str()
        .unwrap_or("")
        .contains(":service-deployment/demo/web/"));
    // The deployment and the revision it deploys share their number, as on ECS.
    let number = id.trim_start_matches("ecs-svc/");
    assert_eq!(
        service["currentServiceRevisions"][0]["arn"],
        format!("arn:aws:ecs:us-east-1:000000000000:service-revision/demo/web/{number}")
    );
    assert_eq!(
        service["currentServiceRevisions"][0]["requestedTaskCount"],
        2
    );
    assert_eq!(service["tags"], json!([{"key": "team", "value": "a"}]));
    assert!(
        service.get("berthState").is_none(),
        "internal state stays inside"
    );

    let described = ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": ["web", "ghost"]}),
    )
    .await;
    assert!(described["services"][0].get("tags").is_none());
    assert_eq!(
        described["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:000000000000:service/demo/ghost", "reason": "MISSING"}])
    );
    let with_tags = ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": [service["serviceArn"]], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(
        with_tags["services"][0]["tags"],
        json!([{"key": "team", "value": "a"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_create_requests_are_refused_with_what_to_fix() {
    let app = app().await;
    create(&app, "web", json!({})).await;
    let cases = [
        (
            json!({"serviceName": "web"}),
            "InvalidParameterException",
            "not idempotent",
        ),
        (
            json!({"serviceName": "bad name"}),
            "InvalidParameterException",
            "invalid",
        ),
        (
            json!({"serviceName": "x", "desiredCount": null}),
            "InvalidParameterException",
            "desiredCount",
        ),
        (
            json!({"serviceName": "x", "taskDefinition": "ghost"}),
            "ClientException",
            "ghost",
        ),
        (
            json!({"serviceName": "x", "launchType": "FARGATE"}),
            "InvalidParameterException",
            "does not support launch_type FARGATE",
        ),
        (
            json!({"serviceName": "x", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}}),
            "InvalidParameterException",
            "not valid for the given networkMode",
        ),
        (
            json!({"serviceName": "x", "loadBalancers": [{"targetGroupArn": "t", "containerName": "web", "containerPort": 80}]}),
            "InvalidParameterException",
            "The target group with targetGroupArn t does not exist.",
        ),
        (
            json!({"serviceName": "x", "loadBalancers": [{"loadBalancerName": "classic", "containerName": "web", "containerPort": 80}]}),
            "InvalidParameterException",
            "Classic Load Balancers",
        ),
        (
            json!({"serviceName": "x", "loadBalancers": [{"targetGroupArn": "t", "loadBalancerName": "c", "containerName": "web", "containerPort": 80}]}),
            "InvalidParameterException",
            "cannot both be specified",
        ),
        (
            json!({"serviceName": "x", "loadBalancers": [{"targetGroupArn": "t", "containerPort": 80}]}),
            "InvalidParameterException",
            "Container Name can not be blank.",
        ),
        (
            json!({"serviceName": "x", "deploymentConfiguration": {"minimumHealthyPercent": 150}}),
            "InvalidParameterException",
            "minimumHealthyPercent",
        ),
        (
            json!({"serviceName": "x", "schedulingStrategy": "BATCH"}),
            "InvalidParameterException",
            "REPLICA or DAEMON",
        ),
        (
            json!({"serviceName": "x", "placementStrategy": [{"type": "spread"}]}),
            "InvalidParameterException",
            "field",
        ),
        (
            json!({"serviceName": "x", "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}),
            "InvalidParameterException",
            "memberOf",
        ),
        (
            json!({"serviceName": "x", "deploymentController": {"type": "BLUE_GREEN"}}),
            "InvalidParameterException",
            "EXTERNAL",
        ),
        (
            json!({"serviceName": "x", "cluster": "nope"}),
            "ClusterNotFoundException",
            "",
        ),
        (
            json!({"serviceName": "x", "desiredCount": "three"}),
            "SerializationException",
            "desiredCount",
        ),
    ];
    for (extra, name, fragment) in cases {
        let mut body = json!({"cluster": "demo", "taskDefinition": "web:1", "desiredCount": 1});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(k);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        let e = err(&app, "CreateService", body.clone()).await;
        assert_eq!(e.name, name, "{body}: {}", e.message);
        assert!(e.message.contains(fragment), "{body}: {}", e.message);
    }
    let listed = ok(&app, "ListServices", json!({"cluster": "demo"})).await;
    assert_eq!(
        listed["serviceArns"].as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_service_with_the_same_client_token_returns_the_existing_service() {
    let app = app().await;
    let first = create(&app, "web", json!({"clientToken": "t-1"})).await;
    let again = create(&app, "web", json!({"clientToken": "t-1"})).await;
    assert_eq!(first["deployments"][0]["id"], again["deployments"][0]["id"]);
    let other = err(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web:1",
               "desiredCount": 2, "clientToken": "t-2"}),
    )
    .await;
    assert_eq!(other.message, "Creation of service was not idempotent.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_services_filters_and_pages() {
    let app = app().await;
    for name in ["a", "b", "c"] {
        create(&app, name, json!({})).await;
    }
    ok(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "d", "taskDefinition": "web:1",
               "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let all = ok(&app, "ListServices", json!({"cluster": "demo"})).await;
    assert_eq!(all["serviceArns"].as_array().map(Vec::len), Some(4));
    let daemons = ok(
        &app,
        "ListServices",
        json!({"cluster": "demo", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    assert_eq!(
        daemons["serviceArns"],
        json!(["arn:aws:ecs:us-east-1:000000000000:service/demo/d"])
    );
    let external = ok(
        &app,
        "ListServices",
        json!({"cluster": "demo", "launchType": "EXTERNAL"}),
    )
    .await;
    assert_eq!(external["serviceArns"], json!([]));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"cluster": "demo", "maxResults": 3});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = ok(&app, "ListServices", body).await;
        seen.extend(page["serviceArns"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let bad = err(
        &app,
        "ListServices",
        json!({"cluster": "demo", "launchType": "MOON"}),
    )
    .await;
    assert_eq!(bad.name, "InvalidParameterException");
    let bad = err(
        &app,
        "ListServices",
        json!({"cluster": "demo", "maxResults": 101}),
    )
    .await;
    assert_eq!(bad.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_service_starts_a_new_deployment_only_for_a_new_revision_or_when_forced() {
    let app = app().await;
    create(&app, "web", json!({})).await;
    let scaled = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 5}),
    )
    .await;
    assert_eq!(scaled["service"]["desiredCount"], 5);
    assert_eq!(
        scaled["service"]["deployments"].as_array().map(Vec::len),
        Some(1)
    );
    let same = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web:1"}),
    )
    .await;
    assert_eq!(
        same["service"]["deployments"].as_array().map(Vec::len),
        Some(1)
    );
    let forced = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "forceNewDeployment": true}),
    )
    .await;
    assert_eq!(
        forced["service"]["deployments"].as_array().map(Vec::len),
        Some(2)
    );
    let newer = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "taskDefinition": "web"}),
    )
    .await;
    let deployments = newer["service"]["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(deployments.len(), 3);
    assert!(deployments[0]["taskDefinition"]
        .as_str()
        .unwrap_or("")
        .ends_with("web:2"));
    assert_eq!(
        newer["service"]["taskDefinition"],
        deployments[0]["taskDefinition"]
    );
    assert_eq!(deployments[1]["status"], "ACTIVE");
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
    assert_eq!(
        statuses,
        vec!["IN_PROGRESS", "STOPPED", "STOPPED"],
        "newest first; superseded ones stopped"
    );
    let in_progress = ok(
        &app,
        "ListServiceDeployments",
        json!({"cluster": "demo", "service": "web", "status": ["IN_PROGRESS"]}),
    )
    .await;
    assert_eq!(
        in_progress["serviceDeployments"].as_array().map(Vec::len),
        Some(1)
    );
    let sd = in_progress["serviceDeployments"][0].clone();
    let described = ok(&app, "DescribeServiceDeployments", json!({"serviceDeploymentArns": [sd["serviceDeploymentArn"], "arn:aws:ecs:us-east-1:000000000000:service-deployment/demo/web/nope"]})).await;
    let full = &described["serviceDeployments"][0];
    assert_eq!(
        full["sourceServiceRevisions"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(full["deploymentCircuitBreaker"]["status"], "DISABLED");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    let revisions = ok(
        &app,
        "DescribeServiceRevisions",
        json!({"serviceRevisionArns": [sd["targetServiceRevisionArn"]]}),
    )
    .await;
    let revision = &revisions["serviceRevisions"][0];
    assert!(revision["taskDefinition"]
        .as_str()
        .unwrap_or("")
        .ends_with("web:2"));
    assert_eq!(
        revision["containerImages"],
        json!([{"containerName": "web", "image": "busybox"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_delete_name_missing_and_inactive_services() {
    let app = app().await;
    let missing = err(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "ghost", "desiredCount": 1}),
    )
    .await;
    assert_eq!(missing.name, "ServiceNotFoundException");
    let missing = err(
        &app,
        "DeleteService",
        json!({"cluster": "demo", "service": "ghost"}),
    )
    .await;
    assert_eq!(missing.name, "ServiceNotFoundException");
    create(&app, "web", json!({"desiredCount": 0})).await;
    let deleted = ok(
        &app,
        "DeleteService",
        json!({"cluster": "demo", "service": "web"}),
    )
    .await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    let draining = err(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "web", "desiredCount": 1}),
    )
    .await;
    assert_eq!(draining.name, "ServiceNotActiveException");
    let again = err(
        &app,
        "CreateService",
        json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web:1", "desiredCount": 1}),
    )
    .await;
    assert_eq!(
        again.message,
        "Unable to Start a service that is still Draining."
    );
    let other_cluster = err(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "arn:aws:ecs:us-east-1:000000000000:service/prod/web"}),
    )
    .await;
    assert_eq!(other_cluster.name, "ServiceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_taggable_through_the_tag_operations() {
    let app = app().await;
    let service = create(&app, "web", json!({})).await;
    let arn = service["serviceArn"].clone();
    ok(
        &app,
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"key": "env", "value": "prod"}]}),
    )
    .await;
    let tags = ok(&app, "ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(tags["tags"], json!([{"key": "env", "value": "prod"}]));
    ok(
        &app,
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["env"]}),
    )
    .await;
    let described = ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": ["web"], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(described["services"][0]["tags"], json!([]));
    // The service still reads back whole after the generic tag edit.
    assert_eq!(
        described["services"][0]["deployments"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_service_deployment_needs_a_deployment_in_progress_and_something_to_roll_back_to() {
    let app = app().await;
    let service = create(&app, "web", json!({})).await;
    let sd = service["currentServiceDeployment"].clone();
    let nothing = err(
        &app,
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": sd}),
    )
    .await;
    assert_eq!(nothing.name, "ConflictException");
    let abort = err(
        &app,
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": sd, "stopType": "ABORT"}),
    )
    .await;
    assert_eq!(abort.name, "InvalidParameterException");
    let unknown = err(
        &app,
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": "arn:aws:ecs:us-east-1:000000000000:service-deployment/demo/web/nope"}),
    )
    .await;
    assert_eq!(unknown.name, "ServiceDeploymentNotFoundException");
    let bad = err(
        &app,
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": []}),
    )
    .await;
    assert_eq!(bad.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_show_no_tags_for_an_untagged_service_as_ecs_does() {
    let app = app().await;
    let created = create(&app, "bare", json!({})).await;
    assert!(created.get("tags").is_none(), "{created}");
    let updated = ok(
        &app,
        "UpdateService",
        json!({"cluster": "demo", "service": "bare", "desiredCount": 1}),
    )
    .await;
    assert!(updated["service"].get("tags").is_none());
    let tagged = create(
        &app,
        "tagged",
        json!({"tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    assert_eq!(tagged["tags"], json!([{"key": "k", "value": "v"}]));
    let described = ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": ["bare"], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(described["services"][0]["tags"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describing_no_services_of_an_unknown_cluster_is_cluster_not_found() {
    let app = app().await;
    let missing = err(
        &app,
        "DescribeServices",
        json!({"cluster": "nowhere", "services": []}),
    )
    .await;
    assert_eq!(missing.name, "ClusterNotFoundException");
    assert_eq!(missing.message, "Cluster not found.");
    let empty = err(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": []}),
    )
    .await;
    assert_eq!(empty.name, "InvalidParameterException");
}
