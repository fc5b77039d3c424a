use super::*;
use crate::handlers::clusters;
use crate::{App, ServerConfig};
use berth_core::model::container_instance::managed_instance_id_for;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;

async fn app_with(names: &[&str]) -> Ctx {
    let app = App::open(ServerConfig::default()).await.expect("opens");
    for name in names {
        clusters::ensure_cluster(&app, name)
            .await
            .expect("creates cluster");
    }
    let caller = crate::auth::root_principal(&app).expect("root");
    Ctx { app, caller }
}

fn req<T: DeserializeOwned>(body: Value) -> T {
    serde_json::from_value(body).expect("well-formed request")
}

async fn register_ok(ctx: &Ctx, body: Value) -> ContainerInstance {
    register(ctx.clone(), req(body))
        .await
        .expect("registers")
        .container_instance
}

fn resource(instance: &ContainerInstance, name: &str) -> Resource {
    instance
        .registered_resources
        .iter()
        .flatten()
        .find(|r| r.name.as_deref() == Some(name))
        .cloned()
        .expect("resource present")
}

fn arn_of(instance: &ContainerInstance) -> String {
    instance.container_instance_arn.clone().expect("has arn")
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_assigns_a_hex_id_a_managed_instance_id_and_ecs_defaults() {
    let ctx = app_with(&["default"]).await;
    let instance = register_ok(
        &ctx,
        json!({"totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
          "versionInfo": {"agentVersion": "1.0.0"},
          "attributes": [{"name": "ecs.os-type", "value": "linux"}],
          "tags": [{"key": "team", "value": "a"}]}),
    )
    .await;
    let id = id_of(&instance);
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        arn_of(&instance),
        ctx.arns.container_instance("default", &id)
    );
    assert_eq!(instance.ec2_instance_id, Some(managed_instance_id_for(&id)));
    assert_eq!(instance.status, Some(ContainerInstanceStatus::Active));
    assert_eq!(resource(&instance, "CPU").integer_value, Some(2048));
    assert_eq!(instance.tags.as_ref().map(Vec::len), Some(1));
    let stored = ctx
        .get::<ContainerInstance>(&keys::instance("default", &id))
        .expect("reads")
        .expect("stored");
    assert_eq!(instance.version, Some(stored.mod_revision as i64));
    let with_doc = register_ok(
        &ctx,
        json!({"instanceIdentityDocument": "{\"instanceId\": \"i-0123\"}"}),
    )
    .await;
    assert_eq!(with_doc.ec2_instance_id.as_deref(), Some("i-0123"));
}

#[tokio::test(flavor = "multi_thread")]
async fn registering_again_with_the_arn_updates_the_same_instance() {
    let ctx = app_with(&["demo"]).await;
    let first = register_ok(
        &ctx,
        json!({"cluster": "demo",
               "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024}],
               "attributes": [{"name": "ecs.capability.old"}]}),
    )
    .await;
    let again = register_ok(
        &ctx,
        json!({"cluster": "demo", "containerInstanceArn": arn_of(&first),
               "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096}],
               "versionInfo": {"agentVersion": "2.0.0"},
               "attributes": [{"name": "ecs.os-type", "value": "linux"}]}),
    )
    .await;
    assert_eq!(arn_of(&again), arn_of(&first));
    assert_eq!(again.registered_at, first.registered_at);
    assert_eq!(again.ec2_instance_id, first.ec2_instance_id);
    assert_eq!(resource(&again, "CPU").integer_value, Some(4096));
    assert!(again.version > first.version);
    let chosen = "0123456789abcdef0123456789abcdef";
    let created = register_ok(
        &ctx,
        json!({"cluster": "demo", "containerInstanceArn": chosen}),
    )
    .await;
    assert_eq!(
        arn_of(&created),
        ctx.arns.container_instance("demo", chosen)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_registrations_name_what_to_fix_and_deregistration_is_final() {
    let ctx = app_with(&["demo"]).await;
    let fails = |body: Value| {
        let ctx = ctx.clone();
        async move { register(ctx, req(body)).await.expect_err("refused").name }
    };
    assert_eq!(
        fails(json!({"cluster": "nope"})).await,
        "ClusterNotFoundException"
    );
    let invalid = "InvalidParameterException";
    let bad_bodies = [
        json!({"cluster": "demo", "totalResources": [{"name": "DISK", "integerValue": 1}]}),
        json!({"cluster": "demo", "totalResources": [{"name": "CPU", "integerValue": -1}]}),
        json!({"cluster": "demo", "attributes": [{"name": "bad*name"}]}),
        json!({"cluster": "demo", "tags": [{"key": "aws:x", "value": "v"}]}),
        json!({"cluster": "demo", "instanceIdentityDocument": "not json"}),
        json!({"cluster": "demo", "containerInstanceArn":
            "arn:aws:ecs:us-east-1:000000000000:container-instance/other/abc"}),
    ];
    for body in bad_bodies {
        assert_eq!(fails(body).await, invalid);
    }
    let instance = register_ok(&ctx, json!({"cluster": "demo"})).await;
    deregister(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstance": arn_of(&instance)})),
    )
    .await
    .expect("deregisters");
    let again = json!({"cluster": "demo", "containerInstanceArn": arn_of(&instance)});
    assert_eq!(fails(again).await, "ClientException");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_reports_missing_instances_and_shows_tags_and_health_only_when_asked() {
    let ctx = app_with(&["demo"]).await;
    let instance = register_ok(
        &ctx,
        json!({"cluster": "demo", "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    let id = id_of(&instance);
    let plain = describe(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstances": [id, "feedface"]})),
    )
    .await
    .expect("describes");
    assert_eq!(plain.container_instances.len(), 1);
    assert!(plain.container_instances[0].tags.is_none());
    assert!(plain.container_instances[0].health_status.is_none());
    assert_eq!(
        plain.failures,
        vec![Failure::new(
            ctx.arns.container_instance("demo", "feedface"),
            "MISSING"
        )]
    );
    let full = describe(
        ctx.clone(),
        req(
            json!({"cluster": "demo", "containerInstances": [arn_of(&instance)],
                   "include": ["TAGS", "CONTAINER_INSTANCE_HEALTH"]}),
        ),
    )
    .await
    .expect("describes");
    let shown = &full.container_instances[0];
    assert_eq!(shown.tags.as_ref().map(Vec::len), Some(1));
    assert!(shown.health_status.is_some());
    let bad = describe(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstances": [id], "include": ["X"]})),
    )
    .await;
    assert_eq!(
        bad.expect_err("bad include").name,
        "InvalidParameterException"
    );
}

async fn list_arns(ctx: &Ctx, body: Value) -> Result<ListContainerInstancesResponse, ApiError> {
    list(ctx.clone(), req(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_hides_inactive_instances_filters_by_status_and_pages() {
    let ctx = app_with(&["demo"]).await;
    let mut arns = Vec::new();
    for _ in 0..3 {
        arns.push(arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await));
    }
    arns.sort();
    deregister(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstance": arns[0]})),
    )
    .await
    .expect("deregisters");
    update_state(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstances": [arns[1]], "status": "DRAINING"})),
    )
    .await
    .expect("drains");
    let all = list_arns(&ctx, json!({"cluster": "demo"}))
        .await
        .expect("lists");
    assert_eq!(all.container_instance_arns, arns[1..].to_vec());
    let draining = list_arns(&ctx, json!({"cluster": "demo", "status": "DRAINING"}))
        .await
        .expect("lists");
    assert_eq!(draining.container_instance_arns, vec![arns[1].clone()]);
    let first = list_arns(&ctx, json!({"cluster": "demo", "maxResults": 1}))
        .await
        .expect("lists");
    assert_eq!(first.container_instance_arns, vec![arns[1].clone()]);
    let second = list_arns(
        &ctx,
        json!({"cluster": "demo", "maxResults": 1, "nextToken": first.next_token}),
    )
    .await
    .expect("lists");
    assert_eq!(second.container_instance_arns, vec![arns[2].clone()]);
    assert!(second.next_token.is_none());
    for body in [
        json!({"cluster": "demo", "filter": "attribute:ecs.os-type = linux"}),
        json!({"cluster": "demo", "status": "INACTIVE"}),
        json!({"cluster": "demo", "maxResults": 0}),
    ] {
        let err = list_arns(&ctx, body).await.expect_err("refused");
        assert_eq!(err.name, "InvalidParameterException");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_filters_with_the_cluster_query_language() {
    let ctx = app_with(&["demo"]).await;
    let mut by_zone = HashMap::new();
    for zone in ["a", "b", "c"] {
        let body = json!({"cluster": "demo", "attributes": [{"name": "zone", "value": zone}]});
        by_zone.insert(zone, arn_of(&register_ok(&ctx, body).await));
    }
    let listed = |filter: &str| {
        let ctx = ctx.clone();
        let body = json!({"cluster": "demo", "filter": filter});
        async move {
            list_arns(&ctx, body)
                .await
                .map(|r| r.container_instance_arns)
        }
    };
    assert_eq!(
        listed("attribute:zone == b").await.expect("lists"),
        vec![by_zone["b"].clone()]
    );
    let mut a_c = vec![by_zone["a"].clone(), by_zone["c"].clone()];
    a_c.sort();
    assert_eq!(
        listed("attribute:zone in [a, c]").await.expect("lists"),
        a_c
    );
    assert_eq!(
        listed("runningTasksCount == 0 and not (task:group exists)")
            .await
            .expect("lists")
            .len(),
        3
    );
    assert!(listed("attribute:zone =~ [xy]")
        .await
        .expect("lists")
        .is_empty());
    let err = listed("attribute:zone == b and")
        .await
        .expect_err("bad filter");
    assert_eq!(err.name, "InvalidParameterException");
    assert!(err.message.contains("column 24"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_state_drains_and_reactivates_and_reports_failures() {
    let ctx = app_with(&["demo"]).await;
    let live = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
    let gone = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
    deregister(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstance": gone})),
    )
    .await
    .expect("deregisters");
    let set = |status: &str, which: Vec<String>| {
        let ctx = ctx.clone();
        let body = json!({"cluster": "demo", "containerInstances": which, "status": status});
        async move { update_state(ctx, req(body)).await }
    };
    let drained = set("DRAINING", vec![live.clone(), gone.clone(), "cafe".into()])
        .await
        .expect("updates");
    assert_eq!(drained.container_instances.len(), 1);
    assert_eq!(
        drained.container_instances[0].status,
        Some(ContainerInstanceStatus::Draining)
    );
    let reasons: Vec<_> = drained
        .failures
        .iter()
        .filter_map(|f| f.reason.clone())
        .collect();
    assert_eq!(reasons, ["MISSING", "INACTIVE"]);
    let active = set("ACTIVE", vec![live.clone()]).await.expect("updates");
    assert_eq!(
        active.container_instances[0].status,
        Some(ContainerInstanceStatus::Active)
    );
    let bad = set("INACTIVE", vec![live.clone()])
        .await
        .expect_err("refused");
    assert_eq!(bad.name, "InvalidParameterException");
    assert!(
        bad.message.contains("ACTIVE or DRAINING"),
        "{}",
        bad.message
    );
    let too_many = set("ACTIVE", vec![live; 11]).await.expect_err("refused");
    assert_eq!(too_many.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn deregistration_with_unstopped_tasks_needs_force_and_frees_the_cluster() {
    let ctx = app_with(&["demo"]).await;
    let arn = arn_of(&register_ok(&ctx, json!({"cluster": "demo"})).await);
    let delete_cluster = || {
        let ctx = ctx.clone();
        async move { clusters::delete_cluster(ctx, req(json!({"cluster": "demo"}))).await }
    };
    let err = delete_cluster().await.expect_err("instance registered");
    assert_eq!(err.name, "ClusterContainsContainerInstancesException");
    let task = json!({"containerInstanceArn": arn, "lastStatus": "RUNNING"});
    let task_key = format!("{}0001", keys::tasks_of("demo"));
    ctx.commit(Txn::new().put(task_key.as_str(), encode(&task)))
        .await
        .expect("stores task");
    let body = json!({"cluster": "demo", "containerInstance": arn});
    let err = deregister(ctx.clone(), req(body.clone()))
        .await
        .expect_err("has tasks");
    assert_eq!(err.name, "InvalidParameterException");
    assert!(err.message.contains("force"), "{}", err.message);
    let mut forced = body.clone();
    forced["force"] = json!(true);
    let gone = deregister(ctx.clone(), req(forced)).await.expect("forced");
    assert_eq!(
        gone.container_instance.status,
        Some(ContainerInstanceStatus::Inactive)
    );
    assert_eq!(gone.container_instance.running_tasks_count, Some(1));
    let unknown = json!({"cluster": "demo", "containerInstance": "feedface"});
    let err = deregister(ctx.clone(), req(unknown))
        .await
        .expect_err("unknown");
    assert_eq!(err.name, "InvalidParameterException");
    ctx.commit(Txn::new().delete(task_key.as_str()))
        .await
        .expect("drops task");
    delete_cluster()
        .await
        .expect("cluster deletes once the instance is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_and_deregistration_show_the_instance_tags_as_ecs_does() {
    let ctx = app_with(&["demo"]).await;
    let tagged = register_ok(
        &ctx,
        json!({"cluster": "demo", "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    let bare = register_ok(&ctx, json!({"cluster": "demo"})).await;
    let drained = update_state(
        ctx.clone(),
        req(json!({"cluster": "demo", "status": "DRAINING",
                   "containerInstances": [arn_of(&tagged), arn_of(&bare)]})),
    )
    .await
    .expect("drains");
    let tags: Vec<Option<usize>> = drained
        .container_instances
        .iter()
        .map(|i| i.tags.as_ref().map(Vec::len))
        .collect();
    assert_eq!(tags, vec![Some(1), Some(0)]);
    let gone = deregister(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstance": arn_of(&bare)})),
    )
    .await
    .expect("deregisters");
    assert_eq!(gone.container_instance.tags, Some(Vec::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn describing_no_instances_of_an_unknown_cluster_is_cluster_not_found() {
    let ctx = app_with(&["demo"]).await;
    for cluster in [None, Some("nowhere")] {
        let err = describe(
            ctx.clone(),
            req(json!({"cluster": cluster, "containerInstances": []})),
        )
        .await
        .expect_err("no cluster");
        assert_eq!(
            (err.name, err.message.as_str()),
            ("ClusterNotFoundException", "Cluster not found.")
        );
    }
    let empty = describe(
        ctx.clone(),
        req(json!({"cluster": "demo", "containerInstances": []})),
    )
    .await
    .expect_err("empty list");
    assert_eq!(empty.name, "InvalidParameterException");
}
