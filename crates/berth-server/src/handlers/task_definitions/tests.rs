//! Handler tests of the task definition operations on an in-memory server, driven through
//! the dispatcher with the JSON an ECS client sends.

use crate::app::App;
use crate::test_support::{app, call};
use berth_store::keys;
use serde_json::{json, Value};
use std::sync::Arc;

async fn register(app: &Arc<App>, family: &str) -> Value {
    call(
        app,
        "RegisterTaskDefinition",
        json!({"family": family, "containerDefinitions": [
            {"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}
        ]}),
    )
    .await
    .expect("register")["taskDefinition"]
        .clone()
}

async fn arns(app: &Arc<App>, body: Value) -> Vec<String> {
    let out = call(app, "ListTaskDefinitions", body).await.expect("list");
    out["taskDefinitionArns"]
        .as_array()
        .expect("arns")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect()
}

fn arn(family_revision: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{family_revision}")
}

#[tokio::test(flavor = "multi_thread")]
async fn registering_a_family_twice_numbers_revisions_from_one() {
    let app = app().await;
    let first = register(&app, "web").await;
    let second = register(&app, "web").await;
    assert_eq!(first["revision"], 1);
    assert_eq!(second["revision"], 2);
    assert_eq!(second["taskDefinitionArn"], arn("web:2"));
    assert_eq!(second["status"], "ACTIVE");
    assert_eq!(second["registeredBy"], "arn:aws:iam::000000000000:root");
    assert!(second["registeredAt"].as_f64().is_some_and(|t| t > 1.0e9));
    assert_eq!(second["compatibilities"], json!(["EXTERNAL", "EC2"]));
    assert_eq!(second["requiresAttributes"], json!([]));
    let container = &second["containerDefinitions"][0];
    assert_eq!(container["cpu"], 0);
    assert_eq!(container["essential"], true);
    assert_eq!(
        container["portMappings"],
        json!([{"containerPort": 80, "protocol": "tcp"}])
    );
    let described = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await
    .expect("describe");
    assert_eq!(described["taskDefinition"]["revision"], 2);
    assert_eq!(described["tags"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_of_one_family_get_distinct_revisions() {
    let app = app().await;
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { register(&app, "busy").await["revision"].as_i64() })
        })
        .collect();
    let mut revisions = Vec::new();
    for handle in handles {
        revisions.push(handle.await.expect("joined").expect("revision"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=12).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_accepts_revisions_and_arns_and_returns_tags_on_request() {
    let app = app().await;
    let out = call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "tagged", "tags": [{"key": "team", "value": "a"}],
               "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 64}]}),
    )
    .await
    .expect("register");
    assert_eq!(out["tags"], json!([{"key": "team", "value": "a"}]));
    let by_arn = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": arn("tagged:1"), "include": ["TAGS"]}),
    )
    .await
    .expect("describe");
    assert_eq!(by_arn["taskDefinition"]["family"], "tagged");
    assert_eq!(by_arn["tags"], json!([{"key": "team", "value": "a"}]));
    assert!(by_arn["taskDefinition"].get("tags").is_none());
    let bad_include = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "tagged", "include": ["SETTINGS"]}),
    )
    .await
    .expect_err("bad include");
    assert_eq!(bad_include.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_malformed_references_are_client_errors() {
    let app = app().await;
    register(&app, "web").await;
    for reference in ["nope", "web:7", "nope:1"] {
        let err = call(
            &app,
            "DescribeTaskDefinition",
            json!({"taskDefinition": reference}),
        )
        .await
        .expect_err("unknown");
        assert_eq!(err.name, "ClientException");
        assert_eq!(err.message, "Unable to describe task definition.");
    }
    let err = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web:x"}),
    )
    .await
    .expect_err("malformed");
    assert_eq!(err.name, "ClientException");
    assert!(err.message.contains("web:x"), "{}", err.message);
    let err = call(&app, "DescribeTaskDefinition", json!({}))
        .await
        .expect_err("missing");
    assert_eq!(err.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_registration_writes_nothing() {
    let app = app().await;
    let err = call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": [{"name": "c", "image": "busybox"}]}),
    )
    .await
    .expect_err("no memory");
    assert_eq!(err.name, "ClientException");
    assert!(err.message.contains("'c'"), "{}", err.message);
    let err = call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": []}),
    )
    .await
    .expect_err("empty");
    assert_eq!(err.message, "Container list cannot be empty.");
    let err = call(&app, "RegisterTaskDefinition", json!({"family": "bad"}))
        .await
        .expect_err("missing");
    assert_eq!(err.name, "InvalidParameterException");
    assert!(app.state.get(&keys::family("bad")).is_none());
    assert!(app.state.list(&keys::task_definitions_of("bad")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deregistering_makes_a_revision_inactive_and_hides_it_from_active_lists() {
    let app = app().await;
    register(&app, "web").await;
    register(&app, "web").await;
    register(&app, "webapp").await;
    let out = call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await
    .expect("deregister");
    assert_eq!(out["taskDefinition"]["status"], "INACTIVE");
    assert!(out["taskDefinition"]["deregisteredAt"].as_f64().is_some());
    let active = arns(&app, json!({"familyPrefix": "web", "status": "ACTIVE"})).await;
    assert_eq!(active, vec![arn("web:2")]);
    let inactive = arns(&app, json!({"status": "INACTIVE"})).await;
    assert_eq!(inactive, vec![arn("web:1")]);
    let still = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await
    .expect("inactive revisions stay describable");
    assert_eq!(still["taskDefinition"]["status"], "INACTIVE");
    call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:2"}),
    )
    .await
    .expect("deregister");
    let err = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await
    .expect_err("no ACTIVE revision left");
    assert_eq!(err.message, "Unable to describe task definition.");
    let err = call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await
    .expect_err("bare family");
    assert_eq!(err.name, "ClientException");
    let err = call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:9"}),
    )
    .await
    .expect_err("unknown");
    assert_eq!(err.name, "ClientException");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_needs_inactive_revisions_and_never_frees_the_number() {
    let app = app().await;
    register(&app, "job").await;
    register(&app, "job").await;
    call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "job:2"}),
    )
    .await
    .expect("deregister");
    let out = call(
        &app,
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["job:1", arn("job:2"), "job:5"]}),
    )
    .await
    .expect("delete");
    assert_eq!(out["taskDefinitions"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
    assert!(out["taskDefinitions"][0]["deleteRequestedAt"]
        .as_f64()
        .is_some());
    let failures = out["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["arn"], arn("job:1"));
    assert!(failures[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("ACTIVE status")));
    assert_eq!(failures[1]["arn"], arn("job:5"));
    assert_eq!(
        failures[1]["reason"],
        "The specified task definition does not exist."
    );
    let deleting = arns(&app, json!({"status": "DELETE_IN_PROGRESS"})).await;
    assert_eq!(deleting, vec![arn("job:2")]);
    assert_eq!(register(&app, "job").await["revision"], 3);

    let err = call(
        &app,
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["job"]}),
    )
    .await
    .expect_err("bare family");
    assert_eq!(err.name, "ClientException");
    let many: Vec<String> = (1..=11).map(|i| format!("job:{i}")).collect();
    let err = call(
        &app,
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": many}),
    )
    .await
    .expect_err("too many");
    assert_eq!(err.name, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_cover_every_revision_once_in_either_order() {
    let app = app().await;
    for family in ["b", "a", "a-b", "c"] {
        for _ in 0..3 {
            register(&app, family).await;
        }
    }
    let mut expected: Vec<String> = ["a", "a-b", "b", "c"]
        .iter()
        .flat_map(|f| (1..=3).map(move |r| arn(&format!("{f}:{r}"))))
        .collect();
    for sort in ["ASC", "DESC"] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"sort": sort, "maxResults": 5});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let out = call(&app, "ListTaskDefinitions", body).await.expect("page");
            let page = out["taskDefinitionArns"].as_array().expect("arns").clone();
            assert!(page.len() <= 5);
            seen.extend(page.iter().map(|a| a.as_str().expect("arn").to_string()));
            match out["nextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{sort}");
        expected.reverse();
    }
    let err = call(&app, "ListTaskDefinitions", json!({"maxResults": 101}))
        .await
        .expect_err("maxResults");
    assert_eq!(err.name, "InvalidParameterException");
    let err = call(&app, "ListTaskDefinitions", json!({"sort": "UP"}))
        .await
        .expect_err("sort");
    assert!(err.message.contains("ASC, DESC"));
}

#[tokio::test(flavor = "multi_thread")]
async fn families_are_listed_by_prefix_and_by_whether_they_have_an_active_revision() {
    let app = app().await;
    register(&app, "web").await;
    register(&app, "webapp").await;
    register(&app, "worker").await;
    call(
        &app,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "webapp:1"}),
    )
    .await
    .expect("deregister");
    let families = |out: Value| out["families"].clone();
    let all = call(
        &app,
        "ListTaskDefinitionFamilies",
        json!({"familyPrefix": "web"}),
    )
    .await
    .expect("list");
    assert_eq!(families(all), json!(["web", "webapp"]));
    let active = call(
        &app,
        "ListTaskDefinitionFamilies",
        json!({"status": "ACTIVE"}),
    )
    .await
    .expect("list");
    assert_eq!(families(active), json!(["web", "worker"]));
    let inactive = call(
        &app,
        "ListTaskDefinitionFamilies",
        json!({"status": "INACTIVE"}),
    )
    .await
    .expect("list");
    assert_eq!(families(inactive), json!(["webapp"]));
    let first = call(&app, "ListTaskDefinitionFamilies", json!({"maxResults": 2}))
        .await
        .expect("page");
    assert_eq!(families(first.clone()), json!(["web", "webapp"]));
    let rest = call(
        &app,
        "ListTaskDefinitionFamilies",
        json!({"maxResults": 2, "nextToken": first["nextToken"]}),
    )
    .await
    .expect("page");
    assert_eq!(families(rest.clone()), json!(["worker"]));
    assert!(rest.get("nextToken").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_appear_as_ecs_shows_them_on_register_and_describe() {
    let app = app().await;
    let body = |tags: Value| {
        json!({"family": "shapes", "tags": tags,
               "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 64}]})
    };
    let bare = call(&app, "RegisterTaskDefinition", body(json!([])))
        .await
        .expect("register");
    assert!(bare.get("tags").is_none(), "{bare}");
    let tagged = call(
        &app,
        "RegisterTaskDefinition",
        body(json!([{"key": "k", "value": "v"}])),
    )
    .await
    .expect("register");
    assert_eq!(tagged["tags"], json!([{"key": "k", "value": "v"}]));
    let describe = |reference: &str, include: Value| {
        call(
            &app,
            "DescribeTaskDefinition",
            json!({"taskDefinition": reference, "include": include}),
        )
    };
    let plain = describe("shapes:2", json!([])).await.expect("describe");
    assert_eq!(plain["tags"], json!([]));
    let with_tags = describe("shapes:2", json!(["TAGS"]))
        .await
        .expect("describe");
    assert_eq!(with_tags["tags"], json!([{"key": "k", "value": "v"}]));
    let untagged = describe("shapes:1", json!(["TAGS"]))
        .await
        .expect("describe");
    assert_eq!(untagged["tags"], json!([]));
}
