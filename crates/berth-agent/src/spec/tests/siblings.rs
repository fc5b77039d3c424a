//! Containers of one task referring to each other: volumesFrom, links, shared PID and IPC
//! namespaces, and what each container needs of the others first.

use super::*;

/// A container named `name` with `extra` members.
fn named(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut value = container(extra);
    value["name"] = json!(name);
    value
}

#[test]
fn volumes_from_name_the_source_containers_runtime_name_and_read_only() {
    let specs = specs_of(json!({"containerDefinitions": [
        named("data", json!({})),
        named("log", json!({})),
        named("app", json!({"volumesFrom": [
            {"sourceContainer": "data", "readOnly": true},
            {"sourceContainer": "log", "readOnly": false},
        ]})),
    ]}))
    .expect("specs");
    assert_eq!(
        specs[2].volumes_from,
        vec![
            "berth-web-3-data-0123456789ab:ro".to_string(),
            "berth-web-3-log-0123456789ab".to_string(),
        ]
    );
    assert!(specs[0].volumes_from.is_empty());
}

#[test]
fn volumes_from_an_unknown_or_the_same_container_is_refused() {
    for source in ["ghost", "app"] {
        let err = spec_of(json!({"containerDefinitions": [container(json!({
            "volumesFrom": [{"sourceContainer": source}]
        }))]}))
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "container app: volumesFrom: sourceContainer '{source}' is not another \
                 container of the task"
            )
        );
    }
}

#[test]
fn links_point_at_runtime_names_with_the_alias_defaulting_to_the_name() {
    let specs = specs_of(json!({"containerDefinitions": [
        named("app", json!({"links": ["db:database", "cache"]})),
        named("db", json!({})),
        named("cache", json!({})),
    ]}))
    .expect("specs");
    assert_eq!(
        specs[0].links,
        vec![
            "berth-web-3-db-0123456789ab:database".to_string(),
            "berth-web-3-cache-0123456789ab:cache".to_string(),
        ]
    );
}

#[test]
fn links_need_bridge_mode_and_another_container_of_the_task() {
    let err = spec_of(json!({"networkMode": "host", "containerDefinitions": [
        named("app", json!({"links": ["db"]})),
        named("db", json!({})),
    ]}))
    .expect_err("host mode");
    assert_eq!(
        err.to_string(),
        "container app: links: links only work in bridge network mode, and the task uses host"
    );
    let err = spec_of(json!({"containerDefinitions": [
        named("app", json!({"links": ["ghost:db"]})),
    ]}))
    .expect_err("unknown");
    assert!(err.to_string().contains("'ghost:db'"), "{err}");
}

#[test]
fn host_pid_and_ipc_modes_apply_to_every_container() {
    let specs = specs_of(
        json!({"pidMode": "host", "ipcMode": "host", "containerDefinitions": [
            named("a", json!({})),
            named("b", json!({})),
        ]}),
    )
    .expect("specs");
    for spec in &specs {
        assert_eq!(spec.pid_mode.as_deref(), Some("host"));
        assert_eq!(spec.ipc_mode.as_deref(), Some("host"));
    }
    let none = spec_of(json!({"ipcMode": "none", "containerDefinitions": [container(json!({}))]}))
        .expect("spec");
    assert_eq!(none.ipc_mode.as_deref(), Some("none"));
    assert_eq!(none.pid_mode, None);
}

#[test]
fn task_pid_and_ipc_modes_join_the_first_container_that_waits_for_nothing() {
    let specs = specs_of(
        json!({"pidMode": "task", "ipcMode": "task", "containerDefinitions": [
            named("init", json!({"essential": false})),
            named("app", json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})),
            named("db", json!({})),
        ]}),
    )
    .expect("specs");
    let joined = Some("container:berth-web-3-db-0123456789ab");
    assert_eq!(specs[0].pid_mode.as_deref(), joined);
    assert_eq!(specs[0].ipc_mode.as_deref(), joined);
    assert_eq!(specs[1].pid_mode.as_deref(), joined);
    assert_eq!(
        specs[2].pid_mode, None,
        "the holder keeps its own namespace"
    );
    assert_eq!(specs[2].ipc_mode.as_deref(), Some("shareable"));
}

#[test]
fn the_namespace_holder_falls_back_to_the_first_essential_then_first_container() {
    let td = task_definition(json!({"pidMode": "task", "containerDefinitions": [
        named("side", json!({"essential": false})),
        named("app", json!({"links": ["side"]})),
    ]}));
    assert_eq!(namespace_holder(&td), Some("app"));
    let td = task_definition(json!({"ipcMode": "task", "containerDefinitions": [
        named("a", json!({"essential": false})),
        named("b", json!({"essential": false})),
    ]}));
    assert_eq!(namespace_holder(&td), Some("a"));
    let td = task_definition(json!({"ipcMode": "host", "containerDefinitions": [
        named("a", json!({})),
    ]}));
    assert_eq!(namespace_holder(&td), None);
}

#[test]
fn an_unknown_pid_mode_is_refused() {
    let err =
        spec_of(json!({"pidMode": "private", "containerDefinitions": [container(json!({}))]}))
            .expect_err("refused");
    assert!(err.to_string().contains("pidMode"), "{err}");
}

#[test]
fn prerequisites_say_what_must_exist_and_what_must_run_first() {
    let td = task_definition(json!({"pidMode": "task", "containerDefinitions": [
        named("holder", json!({})),
        named("data", json!({})),
        named("app", json!({
            "volumesFrom": [{"sourceContainer": "data"}, {"sourceContainer": "ghost"}],
            "links": ["data:d"],
        })),
    ]}));
    let defs = td.container_definitions.clone().unwrap_or_default();
    let need = |container: &str, running: bool| Prerequisite {
        container: container.to_string(),
        running,
    };
    assert_eq!(prerequisites(&td, &defs[0]), vec![]);
    assert_eq!(prerequisites(&td, &defs[1]), vec![need("holder", true)]);
    assert_eq!(
        prerequisites(&td, &defs[2]),
        vec![need("data", true), need("holder", true)]
    );
}
