//! Tests of the fake runtime itself: scripted exits, stops, health, pulls, names, ports,
//! and the references between containers and volumes that Docker enforces.

use super::*;
use crate::runtime::{MountSpec, PortSpec};

fn spec(name: &str, image: &str) -> ContainerSpec {
    let mut labels = BTreeMap::new();
    labels.insert(CONTAINER_NAME_LABEL.to_string(), name.to_string());
    labels.insert("owner".to_string(), "me".to_string());
    ContainerSpec {
        name: format!("berth-{name}"),
        image: image.to_string(),
        network_mode: "bridge".into(),
        labels,
        ..ContainerSpec::default()
    }
}

fn owner() -> BTreeMap<String, String> {
    BTreeMap::from([("owner".to_string(), "me".to_string())])
}

#[tokio::test(start_paused = true)]
async fn a_scripted_container_exits_after_its_delay_and_emits_events() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    fake.set_behavior("app", Behavior::exits(Duration::from_secs(5), 3));
    let mut events = fake.events(&owner()).await.expect("events");
    let id = fake
        .create_container(&spec("app", "busybox"))
        .await
        .expect("create");
    fake.start_container(&id).await.expect("start");
    assert_eq!(
        events.recv().await,
        Some(RuntimeEvent::Started { id: id.clone() })
    );
    assert_eq!(
        events.recv().await,
        Some(RuntimeEvent::Died {
            id: id.clone(),
            exit_code: Some(3)
        })
    );
    let state = fake.inspect_container(&id).await.expect("inspect");
    assert!(!state.running && state.started);
    assert_eq!(state.exit_code, Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_container_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    fake.set_behavior("busybox", Behavior::running().ignoring_sigterm());
    let id = fake
        .create_container(&spec("app", "busybox"))
        .await
        .expect("create");
    fake.start_container(&id).await.expect("start");
    let before = tokio::time::Instant::now();
    fake.stop_container(&id, Duration::from_secs(7))
        .await
        .expect("stop");
    assert_eq!(before.elapsed(), Duration::from_secs(7));
    let state = fake.inspect_container(&id).await.expect("inspect");
    assert_eq!(state.exit_code, Some(SIGKILL_EXIT_CODE));
}

#[tokio::test]
async fn creating_needs_the_image_and_a_free_name() {
    let fake = FakeRuntime::new();
    let err = fake
        .create_container(&spec("app", "busybox"))
        .await
        .expect_err("no image");
    assert!(matches!(err, RuntimeError::Create(m) if m.contains("No such image")));
    fake.add_image("busybox");
    fake.create_container(&spec("app", "busybox"))
        .await
        .expect("create");
    let err = fake
        .create_container(&spec("app", "busybox"))
        .await
        .expect_err("conflict");
    assert!(matches!(err, RuntimeError::Create(m) if m.contains("already in use")));
}

#[tokio::test]
async fn pulls_fail_for_scripted_images_and_make_others_present() {
    let fake = FakeRuntime::new();
    fake.fail_pull("nope:latest", "manifest unknown");
    let err = fake
        .pull_image("nope:latest", None)
        .await
        .expect_err("fails");
    assert_eq!(
        err.to_string(),
        "CannotPullContainerError: pull image nope:latest: manifest unknown"
    );
    fake.pull_image("busybox", None).await.expect("pull");
    assert!(fake.image_present("busybox").await.expect("present"));
}

#[tokio::test]
async fn ephemeral_host_ports_are_assigned_at_start_and_listing_honours_labels() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let mut with_port = spec("web", "busybox");
    with_port.ports = vec![PortSpec {
        container_port: 80,
        host_port: None,
        protocol: "tcp".into(),
    }];
    let id = fake.create_container(&with_port).await.expect("create");
    fake.start_container(&id).await.expect("start");
    let state = fake.inspect_container(&id).await.expect("inspect");
    assert_eq!(state.ports.len(), 1);
    assert!(state.ports[0].host_port >= 32768);
    let mut other = spec("other", "busybox");
    other.labels.clear();
    fake.create_container(&other).await.expect("create");
    assert_eq!(fake.list_containers(&owner()).await.expect("list").len(), 1);
    assert_eq!(
        fake.list_containers(&BTreeMap::new())
            .await
            .expect("list")
            .len(),
        2
    );
    let err = fake.remove_container(&id).await.expect_err("running");
    assert!(matches!(err, RuntimeError::Other(_)));
}

#[tokio::test(start_paused = true)]
async fn a_health_sequence_plays_out_after_start() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    fake.set_behavior(
        "db",
        Behavior::running().with_health(&[
            (Duration::from_secs(2), Health::Healthy),
            (Duration::from_secs(9), Health::Unhealthy),
        ]),
    );
    let mut events = fake.events(&owner()).await.expect("events");
    let id = fake
        .create_container(&spec("db", "busybox"))
        .await
        .expect("create");
    fake.start_container(&id).await.expect("start");
    assert!(matches!(
        events.recv().await,
        Some(RuntimeEvent::Started { .. })
    ));
    assert_eq!(
        events.recv().await,
        Some(RuntimeEvent::HealthChanged {
            id: id.clone(),
            health: Health::Healthy
        })
    );
    assert_eq!(
        events.recv().await,
        Some(RuntimeEvent::HealthChanged {
            id: id.clone(),
            health: Health::Unhealthy
        })
    );
}

fn volume(name: &str, path: &str) -> MountSpec {
    MountSpec::Volume {
        name: name.into(),
        container_path: path.into(),
        read_only: false,
        driver: Some("local".into()),
        driver_opts: BTreeMap::from([("type".to_string(), "tmpfs".to_string())]),
        labels: BTreeMap::new(),
    }
}

#[tokio::test]
async fn volumes_from_and_links_need_their_containers_to_exist_at_create() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let mut app = spec("app", "busybox");
    app.volumes_from = vec!["berth-data:ro".into()];
    let err = fake.create_container(&app).await.expect_err("no source");
    assert_eq!(
        err,
        RuntimeError::Create("No such container: berth-data".into())
    );
    let mut data = spec("data", "busybox");
    data.mounts = vec![volume("v1", "/v")];
    fake.create_container(&data).await.expect("create data");
    app.links = vec!["berth-db:database".into()];
    let err = fake
        .create_container(&app)
        .await
        .expect_err("no link target");
    assert!(matches!(err, RuntimeError::Create(m) if m.contains("berth-db")));
    fake.create_container(&spec("db", "busybox"))
        .await
        .expect("create db");
    let id = fake.create_container(&app).await.expect("create app");
    let state = fake.inspect_container(&id).await.expect("inspect");
    assert_eq!(state.volumes, vec!["v1".to_string()], "inherited volume");
}

#[tokio::test]
async fn links_and_joined_namespaces_need_their_containers_running_at_start() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let db = fake
        .create_container(&spec("db", "busybox"))
        .await
        .expect("create db");
    let mut app = spec("app", "busybox");
    app.links = vec!["berth-db:database".into()];
    app.pid_mode = Some("container:berth-db".into());
    let id = fake.create_container(&app).await.expect("create app");
    let err = fake.start_container(&id).await.expect_err("db not running");
    assert!(
        matches!(&err, RuntimeError::Start(m) if m.contains("Cannot link to a non running container")),
        "{err:?}"
    );
    app.links.clear();
    app.name = "berth-app2".into();
    let id2 = fake.create_container(&app).await.expect("create app2");
    let err = fake
        .start_container(&id2)
        .await
        .expect_err("db not running");
    assert!(
        matches!(&err, RuntimeError::Start(m) if m.contains("cannot join PID")),
        "{err:?}"
    );
    fake.start_container(&db).await.expect("start db");
    fake.start_container(&id).await.expect("start app");
    fake.start_container(&id2).await.expect("start app2");
}

#[tokio::test]
async fn a_volume_is_created_with_its_options_and_removed_only_when_unused() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let mut data = spec("data", "busybox");
    data.mounts = vec![volume("v1", "/v")];
    let id = fake.create_container(&data).await.expect("create");
    let volumes = fake.volumes();
    assert_eq!(volumes["v1"].driver.as_deref(), Some("local"));
    assert_eq!(volumes["v1"].driver_opts["type"], "tmpfs");
    let err = fake.remove_volume("v1").await.expect_err("in use");
    assert!(
        matches!(&err, RuntimeError::Other(m) if m.contains("in use")),
        "{err:?}"
    );
    fake.remove_container(&id).await.expect("remove container");
    fake.remove_volume("v1").await.expect("remove volume");
    assert!(fake.volumes().is_empty());
    assert_eq!(
        fake.remove_volume("v1").await,
        Err(RuntimeError::NotFound("v1".into()))
    );
    assert!(fake.calls().contains(&Call::RemoveVolume("v1".into())));
}
