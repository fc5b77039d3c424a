use crate::test_support::{agent_attributes, app, call, ok};
use serde_json::{json, Value};
use std::collections::HashMap;

fn asg(group: &str) -> Value {
    json!({
        "autoScalingGroupArn": format!(
            "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/{group}"
        )
    })
}

async fn create(app: &std::sync::Arc<crate::App>, name: &str, group: &str) -> Value {
    ok(
        app,
        "CreateCapacityProvider",
        json!({"name": name, "autoScalingGroupProvider": asg(group)}),
    )
    .await["capacityProvider"]
        .clone()
}

async fn error(app: &std::sync::Arc<crate::App>, op: &str, body: Value) -> (String, String) {
    match call(app, op, body).await {
        Ok(v) => panic!("{op} should fail, answered {v}"),
        Err(e) => (e.name.to_string(), e.message),
    }
}

async fn register(app: &std::sync::Arc<crate::App>, cluster: &str, group: &str) -> String {
    let attributes =
        agent_attributes(&[json!({"name": "berth.autoscaling-group", "value": group})]);
    ok(
        app,
        "RegisterContainerInstance",
        json!({
            "cluster": cluster,
            "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192}],
            "versionInfo": {"agentVersion": "1.0.0"},
            "attributes": attributes,
        }),
    )
    .await["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_provider_has_ecs_defaults_and_is_described_with_the_built_in_ones() {
    let app = app().await;
    let provider = create(&app, "web", "web-asg").await;
    assert_eq!(provider["status"], "ACTIVE");
    assert_eq!(provider["type"], "EC2_AUTOSCALING");
    assert_eq!(
        provider["capacityProviderArn"],
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/web"
    );
    let asg = &provider["autoScalingGroupProvider"];
    assert_eq!(asg["managedScaling"]["targetCapacity"], 100);
    assert_eq!(asg["managedScaling"]["instanceWarmupPeriod"], 300);
    assert_eq!(asg["managedTerminationProtection"], "DISABLED");
    assert_eq!(asg["managedDraining"], "ENABLED");
    let all = ok(&app, "DescribeCapacityProviders", json!({})).await;
    let names: Vec<&str> = all["capacityProviders"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["web", "FARGATE", "FARGATE_SPOT"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_groups_and_built_in_providers_are_guarded() {
    let app = app().await;
    create(&app, "web", "web-asg").await;
    for (body, want) in [
        (
            json!({"name": "web", "autoScalingGroupProvider": asg("other")}),
            "ClientException",
        ),
        (
            json!({"name": "web2", "autoScalingGroupProvider": asg("web-asg")}),
            "ClientException",
        ),
        (
            json!({"name": "ecs-web", "autoScalingGroupProvider": asg("x")}),
            "ClientException",
        ),
        (
            json!({"name": "FARGATE", "autoScalingGroupProvider": asg("x")}),
            "ClientException",
        ),
        (json!({"name": "nogroup"}), "InvalidParameterException"),
    ] {
        assert_eq!(error(&app, "CreateCapacityProvider", body).await.0, want);
    }
    let (name, _) = error(
        &app,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "FARGATE"}),
    )
    .await;
    assert_eq!(name, "ClientException");
    let (name, _) = error(
        &app,
        "UpdateCapacityProvider",
        json!({"name": "FARGATE_SPOT", "autoScalingGroupProvider": {}}),
    )
    .await;
    assert_eq!(name, "ClientException");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_of_a_cluster_is_not_deleted_until_it_leaves() {
    let app = app().await;
    create(&app, "web", "web-asg").await;
    ok(
        &app,
        "CreateCluster",
        json!({"clusterName": "c1", "capacityProviders": ["web"]}),
    )
    .await;
    // One Auto Scaling group provider, one cluster.
    let (name, _) = error(
        &app,
        "CreateCluster",
        json!({"clusterName": "c2", "capacityProviders": ["web"]}),
    )
    .await;
    assert_eq!(name, "InvalidParameterException");
    let failed = ok(
        &app,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "web"}),
    )
    .await;
    assert_eq!(failed["capacityProvider"]["updateStatus"], "DELETE_FAILED");
    assert_eq!(failed["capacityProvider"]["status"], "ACTIVE");
    ok(
        &app,
        "PutClusterCapacityProviders",
        json!({"cluster": "c1", "capacityProviders": [], "defaultCapacityProviderStrategy": []}),
    )
    .await;
    let deleted = ok(
        &app,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "web"}),
    )
    .await;
    assert_eq!(
        deleted["capacityProvider"]["updateStatus"],
        "DELETE_IN_PROGRESS"
    );
    let described = ok(
        &app,
        "DescribeCapacityProviders",
        json!({"capacityProviders": ["web"]}),
    )
    .await;
    assert_eq!(described["capacityProviders"][0]["status"], "INACTIVE");
    assert_eq!(
        described["capacityProviders"][0]["updateStatus"],
        "DELETE_COMPLETE"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_strategy_may_name_only_the_clusters_providers() {
    let app = app().await;
    create(&app, "web", "web-asg").await;
    let (name, message) = error(
        &app,
        "CreateCluster",
        json!({"clusterName": "c1", "capacityProviders": ["FARGATE"],
               "defaultCapacityProviderStrategy": [{"capacityProvider": "web", "weight": 1}]}),
    )
    .await;
    assert_eq!(name, "InvalidParameterException");
    assert!(
        message.contains("not associated with the cluster"),
        "{message}"
    );
    let (_, message) = error(
        &app,
        "CreateCluster",
        json!({"clusterName": "c1", "capacityProviders": ["FARGATE", "web"],
               "defaultCapacityProviderStrategy": [
                   {"capacityProvider": "web", "weight": 1},
                   {"capacityProvider": "FARGATE", "weight": 1}]}),
    )
    .await;
    assert!(message.contains("mix"), "{message}");
    let cluster = ok(
        &app,
        "CreateCluster",
        json!({"clusterName": "c1", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
               "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}]}),
    )
    .await;
    assert_eq!(
        cluster["cluster"]["defaultCapacityProviderStrategy"],
        json!([{"capacityProvider": "FARGATE", "base": 1, "weight": 1}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_task_splits_tasks_over_the_providers_instances_by_base_and_weight() {
    let app = app().await;
    create(&app, "blue", "blue-asg").await;
    create(&app, "green", "green-asg").await;
    ok(
        &app,
        "CreateCluster",
        json!({"clusterName": "c1", "capacityProviders": ["blue", "green"]}),
    )
    .await;
    let blue = register(&app, "c1", "blue-asg").await;
    let green = register(&app, "c1", "green-asg").await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 16}]}),
    )
    .await;
    let strategy = json!([
        {"capacityProvider": "blue", "base": 2, "weight": 1},
        {"capacityProvider": "green", "weight": 3}]);
    let out = ok(
        &app,
        "RunTask",
        json!({"cluster": "c1", "taskDefinition": "web", "count": 10, "capacityProviderStrategy": strategy}),
    )
    .await;
    let mut by_provider: HashMap<String, (usize, String)> = HashMap::new();
    for task in out["tasks"].as_array().expect("tasks") {
        let provider = task["capacityProviderName"]
            .as_str()
            .expect("provider")
            .to_string();
        let instance = task["containerInstanceArn"]
            .as_str()
            .expect("instance")
            .to_string();
        assert_eq!(task["launchType"], "EC2");
        let entry = by_provider.entry(provider).or_insert((0, instance.clone()));
        entry.0 += 1;
        assert_eq!(
            entry.1, instance,
            "a provider's tasks stay on its instances"
        );
    }
    assert_eq!(by_provider["blue"], (4, blue));
    assert_eq!(by_provider["green"], (6, green));
    let (name, message) = error(
        &app,
        "RunTask",
        json!({"cluster": "c1", "taskDefinition": "web", "launchType": "EC2", "capacityProviderStrategy": strategy}),
    )
    .await;
    assert_eq!(name, "InvalidParameterException");
    assert_eq!(
        message,
        "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
    );
}

/// Calls `op` with `first` and `second` at once: exactly one must succeed, and the other
/// be refused with InvalidParameterException (a provider goes to one cluster only).
async fn one_of_two_wins(
    app: &std::sync::Arc<crate::app::App>,
    op: &'static str,
    first: Value,
    second: Value,
) {
    let start = |body: Value| {
        let app = app.clone();
        tokio::spawn(async move { call(&app, op, body).await })
    };
    let (first, second) = (start(first), start(second));
    let answers = [first.await.expect("join"), second.await.expect("join")];
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        1,
        "{op}: {answers:?}"
    );
    let lost = answers
        .iter()
        .find_map(|a| a.as_ref().err())
        .expect("a loser");
    assert_eq!(lost.name, "InvalidParameterException", "{lost:?}");
}

/// Two clusters created at once with the same provider: one gets it, the other is refused
/// and not created (CreateCluster guards the providers it associates as checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_created_at_once_with_one_provider_get_it_once() {
    let app = app().await;
    for p in 0..10 {
        create(&app, &format!("p{p}"), &format!("asg-{p}")).await;
    }
    for p in 0..10 {
        let cluster =
            |name: String| json!({"clusterName": name, "capacityProviders": [format!("p{p}")]});
        one_of_two_wins(
            &app,
            "CreateCluster",
            cluster(format!("a{p}")),
            cluster(format!("b{p}")),
        )
        .await;
        let described = ok(
            &app,
            "DescribeClusters",
            json!({"clusters": [format!("a{p}"), format!("b{p}")]}),
        )
        .await;
        assert_eq!(
            described["clusters"].as_array().expect("clusters").len(),
            1,
            "the refused cluster was not made: {described}"
        );
    }
}

/// On a real etcd, whose transactions take 128 guards: associations in an account of more
/// ACTIVE clusters than that, one provider still going to one cluster only, even when two
/// clusters ask for it at once.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_provider_one_cluster_among_more_clusters_than_one_etcd_transaction_guards() {
    let etcd = berth_store::etcd::local::LocalEtcd::start(1).expect("a local etcd");
    let app = crate::test_support::app_on_etcd(&etcd).await;
    for i in 0..140 {
        ok(
            &app,
            "CreateCluster",
            json!({"clusterName": format!("c{i}")}),
        )
        .await;
    }
    for p in 0..10 {
        create(&app, &format!("p{p}"), &format!("asg-{p}")).await;
    }
    for p in 0..10 {
        let put = |cluster: String| {
            json!({"cluster": cluster, "capacityProviders": [format!("p{p}")],
                   "defaultCapacityProviderStrategy": []})
        };
        one_of_two_wins(
            &app,
            "PutClusterCapacityProviders",
            put(format!("c{}", 2 * p)),
            put(format!("c{}", 2 * p + 1)),
        )
        .await;
    }
    // Associated, a provider cannot go; once its cluster lets it go, it can.
    let deleted = ok(
        &app,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "p0"}),
    )
    .await;
    assert_eq!(deleted["capacityProvider"]["updateStatus"], "DELETE_FAILED");
    let described = ok(&app, "DescribeClusters", json!({"clusters": ["c0", "c1"]})).await;
    let holder = described["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["capacityProviders"] == json!(["p0"]))
        .and_then(|c| c["clusterName"].as_str())
        .expect("one of c0 and c1 holds p0")
        .to_string();
    ok(
        &app,
        "PutClusterCapacityProviders",
        json!({"cluster": holder, "capacityProviders": [],
               "defaultCapacityProviderStrategy": []}),
    )
    .await;
    let deleted = ok(
        &app,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "p0"}),
    )
    .await;
    assert_eq!(
        deleted["capacityProvider"]["updateStatus"],
        "DELETE_IN_PROGRESS"
    );
}
