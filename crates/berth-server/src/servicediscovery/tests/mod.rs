//! Cloud Map on an in-memory server, through its JSON dispatcher: namespaces and services
//! here; instances, discovery, health, tags and the CBOR dispatcher in [`instances`].

mod instances;

use crate::app::App;
use serde_json::{json, Value};
use std::sync::Arc;

crate::json_service_calls!(super::dispatch_json);

/// The namespace id an operation created.
pub(super) async fn created_namespace(app: &Arc<App>, answer: &Value) -> String {
    let op = ok(
        app,
        "GetOperation",
        json!({"OperationId": answer["OperationId"]}),
    )
    .await;
    assert_eq!(op["Operation"]["Status"], "SUCCESS");
    op["Operation"]["Targets"]["NAMESPACE"]
        .as_str()
        .expect("a namespace target")
        .to_string()
}

pub(super) async fn dns_namespace(app: &Arc<App>, name: &str) -> String {
    let answer = ok(
        app,
        "CreatePrivateDnsNamespace",
        json!({"Name": name, "Vpc": "vpc-1"}),
    )
    .await;
    created_namespace(app, &answer).await
}

pub(super) async fn http_namespace(app: &Arc<App>, name: &str) -> String {
    let answer = ok(app, "CreateHttpNamespace", json!({"Name": name})).await;
    created_namespace(app, &answer).await
}

pub(super) async fn a_service(app: &Arc<App>, namespace: &str, name: &str, extra: Value) -> String {
    let mut body = json!({"Name": name, "NamespaceId": namespace,
        "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}]}});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let answer = ok(app, "CreateService", body).await;
    answer["Service"]["Id"].as_str().expect("id").to_string()
}

pub(super) async fn register(app: &Arc<App>, service: &str, id: &str, attributes: Value) -> Value {
    ok(
        app,
        "RegisterInstance",
        json!({"ServiceId": service, "InstanceId": id, "Attributes": attributes}),
    )
    .await
}

pub(super) fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 16
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

#[tokio::test]
async fn a_private_dns_namespace_is_created_read_updated_and_deleted_with_operations() {
    let app = crate::test_support::app().await;
    let answer = ok(
        &app,
        "CreatePrivateDnsNamespace",
        json!({"Name": "corp.local.", "Vpc": "vpc-1",
        "CreatorRequestId": "req-1", "Properties": {"DnsProperties": {"SOA": {"TTL": 60}}}}),
    )
    .await;
    let id = created_namespace(&app, &answer).await;
    assert!(well_formed(&id, "ns-"), "{id}");
    let ns = ok(&app, "GetNamespace", json!({"Id": id})).await["Namespace"].clone();
    assert_eq!(ns["Name"], "corp.local");
    assert_eq!(ns["Type"], "DNS_PRIVATE");
    assert_eq!(
        ns["Arn"],
        format!("arn:aws:servicediscovery:us-east-1:000000000000:namespace/{id}")
    );
    assert_eq!(ns["Properties"]["DnsProperties"]["SOA"]["TTL"], 60);
    assert!(ns["Properties"]["DnsProperties"]["HostedZoneId"]
        .as_str()
        .is_some_and(|z| z.starts_with('Z')));
    assert_eq!(ns["ServiceCount"], 0);
    // The same CreatorRequestId is a retry: the same operation, no second namespace.
    let again = ok(
        &app,
        "CreatePrivateDnsNamespace",
        json!({"Name": "corp.local", "Vpc": "vpc-1", "CreatorRequestId": "req-1"}),
    )
    .await;
    assert_eq!(again["OperationId"], answer["OperationId"]);
    let e = err(&app, "CreateHttpNamespace", json!({"Name": "CORP.local"})).await;
    assert_eq!(e.name, "NamespaceAlreadyExists");

    let update = ok(
        &app,
        "UpdatePrivateDnsNamespace",
        json!({"Id": ns["Arn"], "Namespace": {
        "Description": "corp", "Properties": {"DnsProperties": {"SOA": {"TTL": 30}}}}}),
    )
    .await;
    let op = ok(
        &app,
        "GetOperation",
        json!({"OperationId": update["OperationId"]}),
    )
    .await;
    assert_eq!(op["Operation"]["Type"], "UPDATE_NAMESPACE");
    let ns = ok(&app, "GetNamespace", json!({"Id": id})).await["Namespace"].clone();
    assert_eq!(
        (
            ns["Description"].clone(),
            ns["Properties"]["DnsProperties"]["SOA"]["TTL"].clone()
        ),
        (json!("corp"), json!(30))
    );
    let e = err(
        &app,
        "UpdateHttpNamespace",
        json!({"Id": id, "Namespace": {"Description": "x"}}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");

    let deleted = ok(&app, "DeleteNamespace", json!({"Id": id})).await;
    let op = ok(
        &app,
        "GetOperation",
        json!({"OperationId": deleted["OperationId"]}),
    )
    .await;
    assert_eq!(op["Operation"]["Type"], "DELETE_NAMESPACE");
    assert_eq!(
        err(&app, "GetNamespace", json!({"Id": id})).await.name,
        "NamespaceNotFound"
    );
    // The name is free again.
    dns_namespace(&app, "corp.local").await;
}

#[tokio::test]
async fn bad_namespaces_are_refused_with_invalid_input() {
    let app = crate::test_support::app().await;
    for name in ["-bad.local", "a..b", "sp ace.local", ""] {
        let e = err(
            &app,
            "CreatePrivateDnsNamespace",
            json!({"Name": name, "Vpc": "v"}),
        )
        .await;
        assert_eq!(e.name, "InvalidInput", "{name}");
    }
    let e = err(
        &app,
        "CreatePublicDnsNamespace",
        json!({"Name": "example.com"}),
    )
    .await;
    assert!(
        e.name == "InvalidInput" && e.message.contains("public DNS"),
        "{e}"
    );
    assert_eq!(
        err(&app, "CreateHttpNamespace", json!({})).await.name,
        "InvalidInput"
    );
    assert_eq!(
        err(&app, "CreateHttpNamespace", json!({"Name": "arn:x"}))
            .await
            .name,
        "InvalidInput"
    );
    assert_eq!(
        err(&app, "GetNamespace", json!({"Id": "ns-aaaaaaaaaaaaaaaa"}))
            .await
            .name,
        "NamespaceNotFound"
    );
    assert_eq!(
        err(&app, "GetNamespace", json!({"Id": "nope"})).await.name,
        "InvalidInput"
    );
    assert_eq!(
        err(&app, "CreateHttpNamespace", json!({"Name": 5}))
            .await
            .name,
        "SerializationException"
    );
    assert_eq!(
        err(&app, "Frobnicate", json!({})).await.name,
        "UnknownOperationException"
    );
    let tags: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let e = err(
        &app,
        "CreateHttpNamespace",
        json!({"Name": "many", "Tags": tags}),
    )
    .await;
    assert_eq!(e.name, "TooManyTagsException");
    // Nothing was left behind by the refusals.
    assert_eq!(
        ok(&app, "ListNamespaces", json!({})).await["Namespaces"],
        json!([])
    );
}

#[tokio::test]
async fn namespaces_are_listed_by_filter_and_page() {
    let app = crate::test_support::app().await;
    let dns = dns_namespace(&app, "a.local").await;
    let http = http_namespace(&app, "apps").await;
    http_namespace(&app, "billing").await;
    let ids = |v: &Value| -> Vec<String> {
        v["Namespaces"]
            .as_array()
            .expect("list")
            .iter()
            .map(|n| n["Id"].as_str().expect("id").to_string())
            .collect()
    };
    let typed = ok(
        &app,
        "ListNamespaces",
        json!({"Filters": [{"Name": "TYPE", "Values": ["DNS_PRIVATE"]}]}),
    )
    .await;
    assert_eq!(ids(&typed), vec![dns.clone()]);
    let named = ok(
        &app,
        "ListNamespaces",
        json!({"Filters": [{"Name": "NAME", "Values": ["ap"], "Condition": "BEGINS_WITH"}]}),
    )
    .await;
    assert_eq!(ids(&named), vec![http]);
    let e = err(
        &app,
        "ListNamespaces",
        json!({"Filters": [{"Name": "COLOUR", "Values": ["x"]}]}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 1});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = ok(&app, "ListNamespaces", body).await;
        seen.extend(ids(&page));
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(
        err(&app, "ListNamespaces", json!({"MaxResults": 0}))
            .await
            .name,
        "InvalidInput"
    );
    assert_eq!(
        err(&app, "ListNamespaces", json!({"NextToken": "zz"}))
            .await
            .name,
        "InvalidInput"
    );
}

#[tokio::test]
async fn services_are_checked_against_their_namespace_and_block_its_deletion() {
    let app = crate::test_support::app().await;
    let dns = dns_namespace(&app, "corp.local").await;
    let http = http_namespace(&app, "apps").await;
    let web = a_service(&app, &dns, "web", json!({})).await;
    assert!(well_formed(&web, "srv-"), "{web}");
    let service = ok(&app, "GetService", json!({"Id": web})).await["Service"].clone();
    assert_eq!(
        (
            service["Type"].clone(),
            service["DnsConfig"]["RoutingPolicy"].clone()
        ),
        (json!("DNS_HTTP"), json!("MULTIVALUE"))
    );
    // The namespace may be named inside DnsConfig, as older clients do.
    let legacy = ok(
        &app,
        "CreateService",
        json!({"Name": "api", "DnsConfig": {"NamespaceId": dns,
        "RoutingPolicy": "WEIGHTED", "DnsRecords": [{"Type": "SRV", "TTL": 5}]}}),
    )
    .await;
    assert_eq!(legacy["Service"]["NamespaceId"], dns);

    let cases = [
        (
            json!({"Name": "web", "NamespaceId": dns, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 1}]}}),
            "ServiceAlreadyExists",
        ),
        (
            json!({"Name": "two.labels", "NamespaceId": dns, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 1}]}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": http, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 1}]}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": dns, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 1}, {"Type": "SRV", "TTL": 1}]}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": dns, "DnsConfig": {"DnsRecords": [{"Type": "CNAME", "TTL": 1}]}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": dns, "DnsConfig": {"NamespaceId": http, "DnsRecords": [{"Type": "A", "TTL": 1}]}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": dns, "HealthCheckConfig": {"Type": "HTTP"}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "x", "NamespaceId": "ns-aaaaaaaaaaaaaaaa"}),
            "NamespaceNotFound",
        ),
        (json!({"Name": "x"}), "InvalidInput"),
    ];
    for (body, expected) in cases {
        let e = err(&app, "CreateService", body.clone()).await;
        assert_eq!(e.name, expected, "{body}: {e}");
    }
    let http_service = ok(
        &app,
        "CreateService",
        json!({"Name": "jobs.v1", "NamespaceId": http}),
    )
    .await;
    assert_eq!(http_service["Service"]["Type"], "HTTP");

    let listed = ok(
        &app,
        "ListServices",
        json!({"Filters": [{"Name": "NAMESPACE_ID", "Values": [dns]}]}),
    )
    .await;
    assert_eq!(listed["Services"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ok(&app, "GetNamespace", json!({"Id": dns})).await["Namespace"]["ServiceCount"],
        2
    );
    assert_eq!(
        err(&app, "DeleteNamespace", json!({"Id": dns})).await.name,
        "ResourceInUse"
    );

    let updated = ok(
        &app,
        "UpdateService",
        json!({"Id": web, "Service": {"Description": "front",
        "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 99}]}}}),
    )
    .await;
    let op = ok(
        &app,
        "GetOperation",
        json!({"OperationId": updated["OperationId"]}),
    )
    .await;
    assert_eq!(
        (
            op["Operation"]["Type"].clone(),
            op["Operation"]["Targets"]["SERVICE"].clone()
        ),
        (json!("UPDATE_SERVICE"), json!(web))
    );
    let service = ok(&app, "GetService", json!({"Id": web})).await["Service"].clone();
    assert_eq!(
        (
            service["Description"].clone(),
            service["DnsConfig"]["DnsRecords"][0]["TTL"].clone()
        ),
        (json!("front"), json!(99))
    );
    let e = err(
        &app,
        "UpdateService",
        json!({"Id": web, "Service": {"DnsConfig": {"DnsRecords": [{"Type": "AAAA", "TTL": 1}]}}}),
    )
    .await;
    assert_eq!(e.name, "InvalidInput");

    ok(
        &app,
        "UpdateServiceAttributes",
        json!({"ServiceId": web, "Attributes": {"team": "a", "tier": "1"}}),
    )
    .await;
    ok(
        &app,
        "DeleteServiceAttributes",
        json!({"ServiceId": web, "Attributes": ["tier"]}),
    )
    .await;
    let attrs = ok(&app, "GetServiceAttributes", json!({"ServiceId": web})).await;
    assert_eq!(
        attrs["ServiceAttributes"]["Attributes"],
        json!({"team": "a"})
    );

    for id in [&web, legacy["Service"]["Id"].as_str().expect("id")] {
        ok(&app, "DeleteService", json!({"Id": id})).await;
    }
    assert_eq!(
        err(&app, "GetService", json!({"Id": web})).await.name,
        "ServiceNotFound"
    );
    ok(&app, "DeleteNamespace", json!({"Id": dns})).await;
}
