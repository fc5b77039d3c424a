//! Cloud Map instances on an in-memory server: the attributes their service's records need,
//! discovery by attributes and health, operations, tags, and the CBOR dispatcher.

use super::{a_service, created_namespace, dns_namespace, http_namespace, register};
use serde_json::{json, Value};

crate::json_service_calls!(super::super::dispatch_json);

#[tokio::test]
async fn instances_need_the_attributes_their_records_need_and_are_discovered() {
    let app = crate::test_support::app().await;
    let ns = dns_namespace(&app, "corp.local").await;
    let web = a_service(&app, &ns, "web", json!({})).await;
    let srv = ok(
        &app,
        "CreateService",
        json!({"Name": "db", "NamespaceId": ns,
        "DnsConfig": {"DnsRecords": [{"Type": "SRV", "TTL": 5}]}}),
    )
    .await["Service"]["Id"]
        .as_str()
        .expect("id")
        .to_string();
    let refused = [
        (&web, json!({"AWS_INSTANCE_PORT": "80"})),
        (&web, json!({"AWS_INSTANCE_IPV4": "10.0.0.300"})),
        (&srv, json!({"AWS_INSTANCE_IPV4": "10.0.0.1"})),
        (&srv, json!({"AWS_INSTANCE_PORT": "5432"})),
        (
            &srv,
            json!({"AWS_INSTANCE_PORT": "70000", "AWS_INSTANCE_IPV4": "10.0.0.1"}),
        ),
    ];
    for (service, attributes) in refused {
        let e = err(
            &app,
            "RegisterInstance",
            json!({"ServiceId": service, "InstanceId": "i-1", "Attributes": attributes.clone()}),
        )
        .await;
        assert_eq!(e.name, "InvalidInput", "{attributes}");
    }
    let e = err(
        &app,
        "RegisterInstance",
        json!({"ServiceId": web, "InstanceId": "bad id", "Attributes": {}}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");
    let e = err(
        &app,
        "RegisterInstance",
        json!({"ServiceId": "srv-aaaaaaaaaaaaaaaa", "InstanceId": "i", "Attributes": {}}),
    )
    .await;
    assert_eq!(e.name, "ServiceNotFound");
    register(
        &app,
        &srv,
        "db-1",
        json!({"AWS_INSTANCE_PORT": "5432", "AWS_INSTANCE_IPV4": "10.0.0.9"}),
    )
    .await;

    let discover = |body: Value| {
        let app = app.clone();
        async move { ok(&app, "DiscoverInstances", body).await }
    };
    let before = discover(json!({"NamespaceName": "corp.local", "ServiceName": "web"})).await
        ["InstancesRevision"]
        .clone();
    let op = register(
        &app,
        &web,
        "i-1",
        json!({"AWS_INSTANCE_IPV4": "10.0.0.1", "zone": "a", "stage": "blue"}),
    )
    .await;
    let op = ok(
        &app,
        "GetOperation",
        json!({"OperationId": op["OperationId"]}),
    )
    .await["Operation"]
        .clone();
    assert_eq!(
        (op["Type"].clone(), op["Targets"]["INSTANCE"].clone()),
        (json!("REGISTER_INSTANCE"), json!("i-1"))
    );
    register(
        &app,
        &web,
        "i-2",
        json!({"AWS_INSTANCE_IPV4": "10.0.0.2", "zone": "b", "stage": "blue"}),
    )
    .await;
    register(
        &app,
        &web,
        "i-3",
        json!({"AWS_INSTANCE_IPV4": "10.0.0.3", "zone": "b", "stage": "green"}),
    )
    .await;

    let ids = |v: &Value| -> Vec<String> {
        v["Instances"]
            .as_array()
            .expect("list")
            .iter()
            .map(|i| i["InstanceId"].as_str().expect("id").to_string())
            .collect()
    };
    let all = discover(json!({"NamespaceName": "CORP.local.", "ServiceName": "WEB"})).await;
    assert_eq!(ids(&all), ["i-1", "i-2", "i-3"]);
    assert_eq!(all["Instances"][0]["HealthStatus"], "UNKNOWN");
    assert!(all["InstancesRevision"].as_i64() > before.as_i64());
    let zone_b = discover(json!({"NamespaceName": "corp.local", "ServiceName": "web", "QueryParameters": {"zone": "b"}})).await;
    assert_eq!(ids(&zone_b), ["i-2", "i-3"]);
    let preferred = discover(json!({"NamespaceName": "corp.local", "ServiceName": "web",
        "QueryParameters": {"zone": "b"}, "OptionalParameters": {"stage": "green"}}))
    .await;
    assert_eq!(ids(&preferred), ["i-3"]);
    let ignored = discover(json!({"NamespaceName": "corp.local", "ServiceName": "web",
        "QueryParameters": {"zone": "b"}, "OptionalParameters": {"stage": "red"}}))
    .await;
    assert_eq!(ids(&ignored), ["i-2", "i-3"]);
    let one =
        discover(json!({"NamespaceName": "corp.local", "ServiceName": "web", "MaxResults": 1}))
            .await;
    assert_eq!(ids(&one), ["i-1"]);
    let missing = err(
        &app,
        "DiscoverInstances",
        json!({"NamespaceName": "nope.local", "ServiceName": "web"}),
    )
    .await;
    assert_eq!(missing.name, "NamespaceNotFound");
    let missing = err(
        &app,
        "DiscoverInstances",
        json!({"NamespaceName": "corp.local", "ServiceName": "nope"}),
    )
    .await;
    assert_eq!(missing.name, "ServiceNotFound");

    let got = ok(
        &app,
        "GetInstance",
        json!({"ServiceId": web, "InstanceId": "i-1"}),
    )
    .await;
    assert_eq!(
        got["Instance"]["Attributes"]["AWS_INSTANCE_IPV4"],
        "10.0.0.1"
    );
    let listed = ok(
        &app,
        "ListInstances",
        json!({"ServiceId": web, "MaxResults": 2}),
    )
    .await;
    assert_eq!(listed["Instances"].as_array().map(Vec::len), Some(2));
    assert!(listed["NextToken"].is_string());
    assert_eq!(
        err(&app, "DeleteService", json!({"Id": web})).await.name,
        "ResourceInUse"
    );

    let revision = ok(
        &app,
        "DiscoverInstancesRevision",
        json!({"NamespaceName": "corp.local", "ServiceName": "web"}),
    )
    .await;
    let gone = ok(
        &app,
        "DeregisterInstance",
        json!({"ServiceId": web, "InstanceId": "i-3"}),
    )
    .await;
    let op = ok(
        &app,
        "GetOperation",
        json!({"OperationId": gone["OperationId"]}),
    )
    .await;
    assert_eq!(op["Operation"]["Type"], "DEREGISTER_INSTANCE");
    let after = ok(
        &app,
        "DiscoverInstancesRevision",
        json!({"NamespaceName": "corp.local", "ServiceName": "web"}),
    )
    .await;
    assert!(after["InstancesRevision"].as_i64() > revision["InstancesRevision"].as_i64());
    let again = err(
        &app,
        "DeregisterInstance",
        json!({"ServiceId": web, "InstanceId": "i-3"}),
    )
    .await;
    assert_eq!(again.name, "InstanceNotFound");
    assert_eq!(
        err(
            &app,
            "GetInstance",
            json!({"ServiceId": web, "InstanceId": "i-3"})
        )
        .await
        .name,
        "InstanceNotFound"
    );

    let ops = ok(
        &app,
        "ListOperations",
        json!({"Filters": [{"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"]}]}),
    )
    .await;
    assert_eq!(ops["Operations"].as_array().map(Vec::len), Some(1));
    let ops = ok(&app, "ListOperations", json!({"Filters": [{"Name": "SERVICE_ID", "Values": [web]}, {"Name": "STATUS", "Values": ["SUCCESS"]}]})).await;
    assert_eq!(ops["Operations"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        err(&app, "GetOperation", json!({"OperationId": "nope"}))
            .await
            .name,
        "OperationNotFound"
    );
}

#[tokio::test]
async fn custom_health_filters_discovery_and_is_only_for_services_that_have_it() {
    let app = crate::test_support::app().await;
    let ns = http_namespace(&app, "apps").await;
    let plain = ok(
        &app,
        "CreateService",
        json!({"Name": "plain", "NamespaceId": ns}),
    )
    .await["Service"]["Id"]
        .as_str()
        .expect("id")
        .to_string();
    let checked = ok(
        &app,
        "CreateService",
        json!({"Name": "checked", "NamespaceId": ns,
        "HealthCheckCustomConfig": {"FailureThreshold": 1}}),
    )
    .await["Service"]["Id"]
        .as_str()
        .expect("id")
        .to_string();
    register(&app, &plain, "p-1", json!({"url": "http://p"})).await;
    register(&app, &checked, "c-1", json!({"url": "http://c1"})).await;
    register(
        &app,
        &checked,
        "c-2",
        json!({"url": "http://c2", "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"}),
    )
    .await;

    let e = err(
        &app,
        "UpdateInstanceCustomHealthStatus",
        json!({"ServiceId": plain, "InstanceId": "p-1", "Status": "UNHEALTHY"}),
    )
    .await;
    assert_eq!(e.name, "CustomHealthNotFound");
    let e = err(
        &app,
        "UpdateInstanceCustomHealthStatus",
        json!({"ServiceId": checked, "InstanceId": "c-9", "Status": "HEALTHY"}),
    )
    .await;
    assert_eq!(e.name, "InstanceNotFound");
    let e = err(
        &app,
        "UpdateInstanceCustomHealthStatus",
        json!({"ServiceId": checked, "InstanceId": "c-1", "Status": "MEH"}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");

    let found = |health: &'static str| {
        let app = app.clone();
        async move {
            let v = ok(
                &app,
                "DiscoverInstances",
                json!({"NamespaceName": "apps", "ServiceName": "checked", "HealthStatus": health}),
            )
            .await;
            v["Instances"]
                .as_array()
                .expect("list")
                .iter()
                .map(|i| i["InstanceId"].as_str().expect("id").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("HEALTHY").await, ["c-1"]);
    assert_eq!(found("UNHEALTHY").await, ["c-2"]);
    assert_eq!(found("ALL").await, ["c-1", "c-2"]);
    ok(
        &app,
        "UpdateInstanceCustomHealthStatus",
        json!({"ServiceId": checked, "InstanceId": "c-1", "Status": "UNHEALTHY"}),
    )
    .await;
    assert!(found("HEALTHY").await.is_empty());
    assert_eq!(found("HEALTHY_OR_ELSE_ALL").await, ["c-1", "c-2"]);
    let status = ok(
        &app,
        "GetInstancesHealthStatus",
        json!({"ServiceId": checked}),
    )
    .await;
    assert_eq!(
        status["Status"],
        json!({"c-1": "UNHEALTHY", "c-2": "UNHEALTHY"})
    );
    // A service without health checks returns every instance, whatever the filter.
    let plain_found = ok(
        &app,
        "DiscoverInstances",
        json!({"NamespaceName": "apps", "ServiceName": "plain", "HealthStatus": "UNHEALTHY"}),
    )
    .await;
    assert_eq!(plain_found["Instances"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn tags_are_kept_on_namespaces_and_services_by_arn() {
    let app = crate::test_support::app().await;
    let answer = ok(
        &app,
        "CreateHttpNamespace",
        json!({"Name": "apps", "Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .await;
    let ns = created_namespace(&app, &answer).await;
    let ns_arn = format!("arn:aws:servicediscovery:us-east-1:000000000000:namespace/{ns}");
    let service = ok(
        &app,
        "CreateService",
        json!({"Name": "jobs", "NamespaceId": ns}),
    )
    .await["Service"]
        .clone();
    let tags = |arn: String| {
        let app = app.clone();
        async move { ok(&app, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"].clone() }
    };
    assert_eq!(
        tags(ns_arn.clone()).await,
        json!([{"Key": "team", "Value": "a"}])
    );
    ok(&app, "TagResource", json!({"ResourceARN": ns_arn, "Tags": [{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "dev"}]})).await;
    ok(
        &app,
        "UntagResource",
        json!({"ResourceARN": ns_arn, "TagKeys": ["env"]}),
    )
    .await;
    assert_eq!(
        tags(ns_arn.clone()).await,
        json!([{"Key": "team", "Value": "b"}])
    );
    let service_arn = service["Arn"].as_str().expect("arn").to_string();
    ok(
        &app,
        "TagResource",
        json!({"ResourceARN": service_arn, "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .await;
    assert_eq!(tags(service_arn).await, json!([{"Key": "k", "Value": "v"}]));

    let e = err(&app, "ListTagsForResource", json!({"ResourceARN": "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-aaaaaaaaaaaaaaaa"})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
    assert_eq!(
        err(
            &app,
            "TagResource",
            json!({"ResourceARN": "nope", "Tags": []})
        )
        .await
        .name,
        "InvalidInput"
    );
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        err(
            &app,
            "TagResource",
            json!({"ResourceARN": ns_arn, "Tags": many})
        )
        .await
        .name,
        "TooManyTagsException"
    );
    let e = err(
        &app,
        "TagResource",
        json!({"ResourceARN": ns_arn, "Tags": [{"Key": "aws:x", "Value": "v"}]}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");
}

#[tokio::test]
async fn the_cbor_dispatcher_answers_in_cbor_with_tagged_times() {
    let app = crate::test_support::app().await;
    let ctx = crate::dispatch::Ctx {
        app: app.clone(),
        caller: crate::auth::root_principal(&app).expect("root principal"),
    };
    let body = crate::protocol::cbor::encode(&json!({"Name": "apps"}), &[]);
    let answer = super::super::dispatch_cbor(ctx.clone(), "CreateHttpNamespace", &body)
        .await
        .expect("created");
    let answer = crate::protocol::cbor::decode(&answer).expect("cbor");
    let id = created_namespace(&app, &answer).await;
    let body = crate::protocol::cbor::encode(&json!({"Id": id}), &[]);
    let raw = super::super::dispatch_cbor(ctx, "GetNamespace", &body)
        .await
        .expect("read");
    // 0xc1 is tag 1 (epoch time), which CreateDate must carry.
    assert!(
        raw.windows(1).any(|b| b[0] == 0xc1),
        "no tagged time in {raw:?}"
    );
    let got = crate::protocol::cbor::decode(&raw).expect("cbor");
    assert_eq!(got["Namespace"]["Name"], "apps");
}

#[test]
fn errors_carry_the_statuses_of_the_model() {
    use axum::http::StatusCode;
    let status =
        |name: &'static str| super::super::status_of(&crate::error::ApiError::new(name, ""));
    assert_eq!(status("ServiceNotFound"), StatusCode::NOT_FOUND);
    assert_eq!(status("ResourceInUse"), StatusCode::CONFLICT);
    assert_eq!(status("InvalidInput"), StatusCode::BAD_REQUEST);
}
