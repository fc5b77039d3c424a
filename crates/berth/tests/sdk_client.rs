//! Client conformance with the AWS SDK for Rust: `aws-sdk-ecs` drives an in-process Berth
//! server over plain HTTP, signing with the root user's keys the server wrote to
//! `DATA_DIR/credentials`, as any Rust program pointed at Berth would.

use aws_credential_types::Credentials;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Region};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::types::{
    ClusterField, ContainerDefinition, ContainerInstanceStatus, Resource, Tag, TaskDefinitionField,
    TaskDefinitionStatus, VersionInfo,
};
use aws_sdk_ecs::Client;
use berth_server::{serve, Server, ServerConfig};
use std::net::SocketAddr;
use tempfile::TempDir;

const ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:000000000000";

/// A server on a fresh data dir and an SDK client pointed at it.
struct Harness {
    server: Server,
    client: Client,
    _data: TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let data = tempfile::tempdir().expect("temp dir for the data");
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: Some(data.path().to_path_buf()),
            ..ServerConfig::default()
        };
        let server = serve(config).await.expect("server starts");
        let file = server.app().credentials_file().expect("credentials file");
        let text = std::fs::read_to_string(file).expect("the server wrote its credentials");
        let keys = berth_core::sigv4::Credentials::from_profile(&text, "berth").expect("profile");
        let client = client(&server, &keys.access_key_id, &keys.secret_access_key);
        Harness {
            server,
            client,
            _data: data,
        }
    }

    async fn stop(self) {
        self.server.shutdown().await.expect("server stops cleanly");
    }
}

/// An SDK client of `server` signing with the given keys.
fn client(server: &Server, access_key_id: &str, secret: &str) -> Client {
    let sdk_config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.addr()))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "berth-tests",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(sdk_config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_with_a_wrong_secret_or_an_unknown_key_is_refused_in_aws_words() {
    let h = Harness::start().await;
    let text = std::fs::read_to_string(h.server.app().credentials_file().expect("file"))
        .expect("credentials");
    let keys = berth_core::sigv4::Credentials::from_profile(&text, "berth").expect("profile");
    let wrong = client(&h.server, &keys.access_key_id, "not-the-secret");
    let err = wrong.list_clusters().send().await.expect_err("refused");
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let unknown = client(&h.server, "AKIAUNKNOWNUNKNOWN00", &keys.secret_access_key);
    let err = unknown.list_clusters().send().await.expect_err("refused");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    assert!(h.client.list_clusters().send().await.is_ok());
    h.stop().await;
}

fn web_container() -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("web")
        .image("busybox")
        .memory(64)
        .essential(true)
        .build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tags_of(tags: &[Tag]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = tags
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_created_described_listed_and_deleted_through_the_sdk() {
    let h = Harness::start().await;
    let ecs = &h.client;

    let created = ecs
        .create_cluster()
        .cluster_name("rs-demo")
        .tags(tag("team", "rust"))
        .send()
        .await
        .expect("create-cluster");
    let cluster = created.cluster().expect("a cluster");
    assert_eq!(cluster.cluster_name(), Some("rs-demo"));
    assert_eq!(
        cluster.cluster_arn(),
        Some(format!("{ARN_PREFIX}:cluster/rs-demo").as_str())
    );
    assert_eq!(cluster.status(), Some("ACTIVE"));

    let described = ecs
        .describe_clusters()
        .clusters("rs-demo")
        .clusters("nope")
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .include(ClusterField::Statistics)
        .send()
        .await
        .expect("describe-clusters");
    assert_eq!(described.clusters().len(), 1);
    let cluster = &described.clusters()[0];
    assert_eq!(
        tags_of(cluster.tags()),
        vec![("team".to_string(), "rust".to_string())]
    );
    assert!(cluster
        .settings()
        .iter()
        .any(|s| s.name().map(|n| n.as_str()) == Some("containerInsights")));
    assert!(!cluster.statistics().is_empty());
    assert_eq!(cluster.registered_container_instances_count(), 0);
    assert_eq!(described.failures().len(), 1);
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));
    assert_eq!(
        described.failures()[0].arn(),
        Some(format!("{ARN_PREFIX}:cluster/nope").as_str())
    );

    for i in 0..5 {
        ecs.create_cluster()
            .cluster_name(format!("rs-page-{i}"))
            .send()
            .await
            .expect("create-cluster");
    }
    let arns: Vec<String> = ecs
        .list_clusters()
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list-clusters pages");
    assert_eq!(arns.len(), 6, "{arns:?}");
    assert!(arns.contains(&format!("{ARN_PREFIX}:cluster/rs-demo")));

    let deleted = ecs
        .delete_cluster()
        .cluster("rs-demo")
        .send()
        .await
        .expect("delete-cluster");
    assert_eq!(deleted.cluster().and_then(|c| c.status()), Some("INACTIVE"));
    let listed = ecs.list_clusters().send().await.expect("list-clusters");
    assert!(!listed
        .cluster_arns()
        .contains(&format!("{ARN_PREFIX}:cluster/rs-demo")));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_surfaces_as_the_typed_cluster_not_found_error() {
    let h = Harness::start().await;
    let err = h
        .client
        .delete_cluster()
        .cluster("ghost")
        .send()
        .await
        .expect_err("deleting an unknown cluster fails");
    let service_error = err.into_service_error();
    assert_eq!(service_error.code(), Some("ClusterNotFoundException"));
    assert!(service_error.message().is_some_and(|m| !m.is_empty()));
    assert!(
        matches!(
            service_error,
            DeleteClusterError::ClusterNotFoundException(_)
        ),
        "{service_error:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_definitions_are_registered_described_listed_and_deregistered_through_the_sdk() {
    let h = Harness::start().await;
    let ecs = &h.client;

    for expected in 1..=2 {
        let out = ecs
            .register_task_definition()
            .family("web")
            .container_definitions(web_container())
            .tags(tag("app", "web"))
            .send()
            .await
            .expect("register-task-definition");
        let td = out.task_definition().expect("a task definition");
        assert_eq!(td.revision(), expected);
        assert_eq!(td.family(), Some("web"));
        assert_eq!(td.status(), Some(&TaskDefinitionStatus::Active));
        assert_eq!(
            td.task_definition_arn(),
            Some(format!("{ARN_PREFIX}:task-definition/web:{expected}").as_str())
        );
        assert!(td.registered_at().is_some());
        let container = &td.container_definitions()[0];
        assert_eq!(
            (container.name(), container.image(), container.memory()),
            (Some("web"), Some("busybox"), Some(64))
        );
    }

    let described = ecs
        .describe_task_definition()
        .task_definition("web")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe-task-definition");
    assert_eq!(described.task_definition().map(|t| t.revision()), Some(2));
    assert_eq!(
        tags_of(described.tags()),
        vec![("app".to_string(), "web".to_string())]
    );

    let deregistered = ecs
        .deregister_task_definition()
        .task_definition("web:1")
        .send()
        .await
        .expect("deregister-task-definition");
    assert_eq!(
        deregistered.task_definition().and_then(|t| t.status()),
        Some(&TaskDefinitionStatus::Inactive)
    );

    let active = ecs
        .list_task_definitions()
        .family_prefix("web")
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("list-task-definitions");
    assert_eq!(
        active.task_definition_arns(),
        [format!("{ARN_PREFIX}:task-definition/web:2")]
    );

    let families = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("list-task-definition-families");
    assert_eq!(families.families(), ["web".to_string()]);

    let err = ecs
        .describe_task_definition()
        .task_definition("nothing-here")
        .send()
        .await
        .expect_err("an unknown family is an error");
    assert!(
        matches!(
            err.into_service_error(),
            DescribeTaskDefinitionError::ClientException(_)
        ),
        "an unknown family is a ClientException"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_instances_register_describe_drain_and_carry_tags_through_the_sdk() {
    let h = Harness::start().await;
    let ecs = &h.client;
    ecs.create_cluster()
        .cluster_name("fleet")
        .send()
        .await
        .expect("create-cluster");

    let registered = ecs
        .register_container_instance()
        .cluster("fleet")
        .total_resources(
            Resource::builder()
                .name("CPU")
                .r#type("INTEGER")
                .integer_value(2048)
                .build(),
        )
        .total_resources(
            Resource::builder()
                .name("MEMORY")
                .r#type("INTEGER")
                .integer_value(4096)
                .build(),
        )
        .version_info(VersionInfo::builder().agent_version("1.80.0").build())
        .tags(tag("rack", "r1"))
        .send()
        .await
        .expect("register-container-instance");
    let instance = registered.container_instance().expect("an instance");
    let arn = instance
        .container_instance_arn()
        .expect("an instance ARN")
        .to_string();
    assert!(
        arn.starts_with(&format!("{ARN_PREFIX}:container-instance/fleet/")),
        "{arn}"
    );
    assert_eq!(instance.status(), Some("ACTIVE"));

    let described = ecs
        .describe_container_instances()
        .cluster("fleet")
        .container_instances(&arn)
        .container_instances("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .expect("describe-container-instances");
    assert_eq!(described.container_instances().len(), 1);
    let cpu = described.container_instances()[0]
        .registered_resources()
        .iter()
        .find(|r| r.name() == Some("CPU"))
        .map(|r| r.integer_value());
    assert_eq!(cpu, Some(2048));
    assert_eq!(described.failures().len(), 1);
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));

    let drained = ecs
        .update_container_instances_state()
        .cluster("fleet")
        .container_instances(&arn)
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("update-container-instances-state");
    assert_eq!(drained.container_instances()[0].status(), Some("DRAINING"));
    let listed = ecs
        .list_container_instances()
        .cluster("fleet")
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("list-container-instances");
    assert_eq!(listed.container_instance_arns(), std::slice::from_ref(&arn));

    ecs.tag_resource()
        .resource_arn(&arn)
        .tags(tag("zone", "a"))
        .send()
        .await
        .expect("tag-resource");
    ecs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("rack")
        .send()
        .await
        .expect("untag-resource");
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list-tags-for-resource");
    assert_eq!(
        tags_of(tags.tags()),
        vec![("zone".to_string(), "a".to_string())]
    );

    let err = ecs
        .delete_cluster()
        .cluster("fleet")
        .send()
        .await
        .expect_err("a cluster with an instance cannot be deleted");
    assert!(matches!(
        err.into_service_error(),
        DeleteClusterError::ClusterContainsContainerInstancesException(_)
    ));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_tags_are_added_listed_and_removed_through_the_sdk() {
    let h = Harness::start().await;
    let ecs = &h.client;
    let arn = ecs
        .create_cluster()
        .cluster_name("tagged")
        .send()
        .await
        .expect("create-cluster")
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("a cluster ARN")
        .to_string();
    ecs.tag_resource()
        .resource_arn(&arn)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .send()
        .await
        .expect("tag-resource");
    ecs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("a")
        .send()
        .await
        .expect("untag-resource");
    let listed = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list-tags-for-resource");
    assert_eq!(
        tags_of(listed.tags()),
        vec![("b".to_string(), "2".to_string())]
    );
    h.stop().await;
}
