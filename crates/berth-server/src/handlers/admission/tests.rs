//! The admission matrix at the API, over signed HTTP: for every root-granting field, refused
//! at RegisterTaskDefinition while no cluster allows it (nothing stored), registered once a
//! cluster's tag allows it, refused by RunTask, StartTask, CreateService and UpdateService on
//! a cluster that allows everything else, and accepted on the cluster that allows it.

use crate::test_support::{agent_attributes, now, send_ecs, served, Answer, Served, Signing};
use serde_json::{json, Value};

/// One root-granting field: the task members and container members that ask for it, the
/// field path ECS names, and the cluster tag that allows it.
struct Case {
    name: &'static str,
    task: Value,
    container: Value,
    field: &'static str,
    tag: (&'static str, &'static str),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "privileged",
            task: json!({}),
            container: json!({"privileged": true}),
            field: "containerDefinitions[0].privileged",
            tag: ("berth:allow-privileged", "true"),
        },
        Case {
            name: "hostnet",
            task: json!({"networkMode": "host"}),
            container: json!({}),
            field: "networkMode",
            tag: ("berth:allow-host-network", "true"),
        },
        Case {
            name: "hostpid",
            task: json!({"pidMode": "host"}),
            container: json!({}),
            field: "pidMode",
            tag: ("berth:allow-host-pid", "true"),
        },
        Case {
            name: "hostipc",
            task: json!({"ipcMode": "host"}),
            container: json!({}),
            field: "ipcMode",
            tag: ("berth:allow-host-ipc", "true"),
        },
        Case {
            name: "bind",
            task: json!({"volumes": [{"name": "etc", "host": {"sourcePath": "/srv/../etc"}}]}),
            container: json!({"mountPoints": [{"sourceVolume": "etc", "containerPath": "/h"}]}),
            field: "volumes[0].host.sourcePath",
            tag: ("berth:allow-bind-mounts", "/srv /etc"),
        },
        Case {
            name: "volbind",
            task: json!({"volumes": [{"name": "b", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local",
                "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]}),
            container: json!({}),
            field: "volumes[0].dockerVolumeConfiguration.driverOpts",
            tag: ("berth:allow-docker-volume-binds", "true"),
        },
        Case {
            name: "devices",
            task: json!({}),
            container: json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            field: "containerDefinitions[0].linuxParameters.devices[0]",
            tag: ("berth:allow-devices", "true"),
        },
        Case {
            name: "caps",
            task: json!({}),
            container: json!({"linuxParameters": {"capabilities": {"add": ["CHOWN", "sys_admin"]}}}),
            field: "containerDefinitions[0].linuxParameters.capabilities.add[1]",
            tag: ("berth:allow-capabilities", "NET_ADMIN SYS_ADMIN"),
        },
        Case {
            name: "unconfined",
            task: json!({}),
            container: json!({"dockerSecurityOptions": ["no-new-privileges", "seccomp:unconfined"]}),
            field: "containerDefinitions[0].dockerSecurityOptions[1]",
            tag: ("berth:allow-unconfined", "true"),
        },
    ]
}

/// Tags that allow everything but what `except` allows.
fn all_tags_but(except: &str) -> Vec<Value> {
    cases()
        .iter()
        .filter(|c| c.tag.0 != except)
        .map(|c| json!({"key": c.tag.0, "value": c.tag.1}))
        .collect()
}

fn definition(family: &str, task: &Value, container: &Value) -> Value {
    let mut c = json!({"name": "app", "image": "busybox", "memory": 64});
    c.as_object_mut()
        .expect("object")
        .extend(container.as_object().cloned().unwrap_or_default());
    let mut td = json!({"family": family, "containerDefinitions": [c]});
    td.as_object_mut()
        .expect("object")
        .extend(task.as_object().cloned().unwrap_or_default());
    td
}

async fn ecs(s: &Served, op: &str, body: Value) -> Answer {
    send_ecs(s, op, &body, Signing::As(&s.credentials, now())).await
}

async fn ok(s: &Served, op: &str, body: Value) -> Value {
    let answer = ecs(s, op, body).await;
    assert_eq!(answer.status, 200, "{op}: {answer:?}");
    serde_json::from_str(&answer.body).expect("json")
}

/// Calls `op`, which must be refused with a ClientException; returns its message.
async fn refused(s: &Served, op: &str, body: Value) -> String {
    let answer = ecs(s, op, body).await;
    assert_eq!(answer.status, 400, "{op}: {answer:?}");
    assert_eq!(answer.error_type(), "ClientException", "{op}: {answer:?}");
    let body: Value = serde_json::from_str(&answer.body).expect("json");
    body["message"].as_str().expect("message").to_string()
}

async fn cluster_with_instance(s: &Served, name: &str, tags: Vec<Value>) -> String {
    let mut body = json!({"clusterName": name});
    if !tags.is_empty() {
        body["tags"] = json!(tags);
    }
    ok(s, "CreateCluster", body).await;
    let instance = ok(
        s,
        "RegisterContainerInstance",
        json!({"cluster": name, "attributes": agent_attributes(&[]), "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ]}),
    )
    .await;
    instance["containerInstance"]["containerInstanceArn"]
        .as_str()
        .expect("instance arn")
        .to_string()
}

async fn task_count(s: &Served, cluster: &str) -> usize {
    ok(s, "ListTasks", json!({"cluster": cluster})).await["taskArns"]
        .as_array()
        .expect("list")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_root_granting_field_is_admitted_only_where_a_cluster_tag_allows_it() {
    for case in cases() {
        // A server of its own, so that no other case's clusters allow anything here.
        let s = served().await;
        ok(
            &s,
            "RegisterTaskDefinition",
            definition("plain", &json!({}), &json!({})),
        )
        .await;
        let family = format!("risky-{}", case.name);
        let td = definition(&family, &case.task, &case.container);

        // No cluster allows it: not registered, and nothing stored.
        let message = refused(&s, "RegisterTaskDefinition", td.clone()).await;
        assert!(message.contains("No ACTIVE cluster allows"), "{message}");
        assert!(
            message.contains(&format!("{} is refused", case.field)),
            "{}: {message}",
            case.name
        );
        assert!(message.contains(case.tag.0), "{}: {message}", case.name);
        let listed = ok(
            &s,
            "ListTaskDefinitions",
            json!({"familyPrefix": family.clone()}),
        )
        .await;
        assert_eq!(listed["taskDefinitionArns"], json!([]), "{}", case.name);

        // A cluster that allows everything else does not make it registrable.
        let closed = format!("closed-{}", case.name);
        let closed_instance = cluster_with_instance(&s, &closed, all_tags_but(case.tag.0)).await;
        refused(&s, "RegisterTaskDefinition", td.clone()).await;

        // The cluster whose tag allows it does.
        let open = format!("open-{}", case.name);
        let tag = json!({"key": case.tag.0, "value": case.tag.1});
        cluster_with_instance(&s, &open, vec![tag]).await;
        let registered = ok(&s, "RegisterTaskDefinition", td.clone()).await;
        assert_eq!(registered["taskDefinition"]["revision"], 1, "{}", case.name);

        // Where it runs, the cluster's tags decide.
        let message = refused(
            &s,
            "RunTask",
            json!({"cluster": closed, "taskDefinition": family}),
        )
        .await;
        assert!(
            message.contains(&format!("Cluster '{closed}' does not allow")),
            "{message}"
        );
        assert!(
            message.contains(&format!("{} is refused", case.field)) && message.contains(case.tag.0),
            "{}: {message}",
            case.name
        );
        refused(
            &s,
            "StartTask",
            json!({"cluster": closed, "taskDefinition": family,
                   "containerInstances": [closed_instance]}),
        )
        .await;
        refused(
            &s,
            "CreateService",
            json!({"cluster": closed, "serviceName": "svc", "taskDefinition": family,
                   "desiredCount": 1}),
        )
        .await;
        ok(
            &s,
            "CreateService",
            json!({"cluster": closed, "serviceName": "plain", "taskDefinition": "plain",
                   "desiredCount": 0}),
        )
        .await;
        refused(
            &s,
            "UpdateService",
            json!({"cluster": closed, "service": "plain", "taskDefinition": family}),
        )
        .await;
        assert_eq!(task_count(&s, &closed).await, 0, "{}", case.name);
        let service = ok(
            &s,
            "DescribeServices",
            json!({"cluster": closed, "services": ["plain"]}),
        )
        .await;
        assert!(
            service["services"][0]["taskDefinition"]
                .as_str()
                .expect("task definition")
                .ends_with("/plain:1"),
            "{service}"
        );
        assert!(
            ok(&s, "ListServices", json!({"cluster": closed})).await["serviceArns"]
                .as_array()
                .expect("services")
                .len()
                == 1,
            "the refused CreateService left nothing"
        );

        let ran = ok(
            &s,
            "RunTask",
            json!({"cluster": open, "taskDefinition": family}),
        )
        .await;
        assert_eq!(ran["tasks"].as_array().map(Vec::len), Some(1), "{ran}");
        ok(
            &s,
            "CreateService",
            json!({"cluster": open, "serviceName": "svc", "taskDefinition": "plain",
                   "desiredCount": 0}),
        )
        .await;
        let updated = ok(
            &s,
            "UpdateService",
            json!({"cluster": open, "service": "svc", "taskDefinition": family}),
        )
        .await;
        assert!(
            updated["service"]["taskDefinition"]
                .as_str()
                .expect("task definition")
                .ends_with(&format!("/{family}:1")),
            "{updated}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_forbids_root_refuses_root_users_that_others_run() {
    let s = served().await;
    cluster_with_instance(
        &s,
        "strict",
        vec![json!({"key": "berth:forbid-root-user", "value": "true"})],
    )
    .await;
    cluster_with_instance(&s, "relaxed", Vec::new()).await;
    // Root is allowed by default, so registration does not depend on the clusters.
    for user in ["root", "0:0"] {
        let family = format!("as-{}", user.replace(':', "-"));
        ok(
            &s,
            "RegisterTaskDefinition",
            definition(&family, &json!({}), &json!({"user": user})),
        )
        .await;
        let message = refused(
            &s,
            "RunTask",
            json!({"cluster": "strict", "taskDefinition": family}),
        )
        .await;
        assert!(
            message.contains("containerDefinitions[0].user is refused")
                && message.contains("berth:forbid-root-user"),
            "{message}"
        );
        let ran = ok(
            &s,
            "RunTask",
            json!({"cluster": "relaxed", "taskDefinition": family}),
        )
        .await;
        assert_eq!(ran["tasks"].as_array().map(Vec::len), Some(1), "{ran}");
    }
    ok(
        &s,
        "RegisterTaskDefinition",
        definition("as-app", &json!({}), &json!({"user": "1000:0"})),
    )
    .await;
    let ran = ok(
        &s,
        "RunTask",
        json!({"cluster": "strict", "taskDefinition": "as-app"}),
    )
    .await;
    assert_eq!(ran["tasks"].as_array().map(Vec::len), Some(1), "{ran}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_one_active_cluster_that_allows_everything_the_definition_asks() {
    let s = served().await;
    let both = definition(
        "both",
        &json!({"networkMode": "host"}),
        &json!({"privileged": true}),
    );
    let tagged = |key: &str| json!({"clusterName": key.replace(':', "-"), "tags": [{"key": key, "value": "true"}]});
    ok(&s, "CreateCluster", tagged("berth:allow-privileged")).await;
    ok(&s, "CreateCluster", tagged("berth:allow-host-network")).await;
    let message = refused(&s, "RegisterTaskDefinition", both.clone()).await;
    assert!(
        message.contains("containerDefinitions[0].privileged is refused")
            && message.contains("networkMode is refused"),
        "every refusal is named: {message}"
    );

    // A cluster tagged later (TagResource) admits it; once deleted it no longer does.
    let all = ok(&s, "CreateCluster", json!({"clusterName": "all"})).await;
    let arn = all["cluster"]["clusterArn"]
        .as_str()
        .expect("arn")
        .to_string();
    ok(
        &s,
        "TagResource",
        json!({"resourceArn": arn, "tags": [
            {"key": "berth:allow-privileged", "value": "true"},
            {"key": "berth:allow-host-network", "value": "true"}]}),
    )
    .await;
    ok(&s, "RegisterTaskDefinition", both.clone()).await;
    ok(&s, "DeleteCluster", json!({"cluster": "all"})).await;
    refused(&s, "RegisterTaskDefinition", both).await;
    let families = ok(&s, "ListTaskDefinitions", json!({"familyPrefix": "both"})).await;
    assert_eq!(
        families["taskDefinitionArns"].as_array().map(Vec::len),
        Some(1),
        "only the admitted registration was stored: {families}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_that_grant_nothing_register_with_no_cluster_at_all() {
    let s = served().await;
    let td = definition(
        "quiet",
        &json!({"volumes": [{"name": "scratch", "host": {}}]}),
        &json!({"user": "root", "linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
                "dockerSecurityOptions": ["no-new-privileges"]}),
    );
    let registered = ok(&s, "RegisterTaskDefinition", td).await;
    assert_eq!(registered["taskDefinition"]["family"], "quiet");
}
