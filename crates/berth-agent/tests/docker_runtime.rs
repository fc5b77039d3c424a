//! Docker tests of `DockerRuntime` against the real daemon. They fail (never skip) when no
//! Docker daemon answers; `scripts/ensure-docker` starts one. The busybox test image is built
//! by `scripts/build-test-image` on first use (`support`).
//! This file: a container's life (start, stop, kill, exit, health, pulls, removal).

mod support;

use berth_agent::runtime::{
    ContainerRuntime, Health, HealthCheckSpec, PortSpec, RuntimeError, RuntimeEvent,
};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test]
async fn a_started_container_is_running_with_an_ephemeral_port_and_found_by_label() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("web", "exec httpd -f -p 80");
    spec.ports = vec![PortSpec {
        container_port: 80,
        host_port: None,
        protocol: "tcp".into(),
    }];
    spec.labels
        .insert("com.berth.container-name".into(), "web".into());
    spec.env = vec![("GREETING".into(), "hello".into())];

    let id = fx.runtime.create_container(&spec).await.expect("created");
    let created = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(!created.running && !created.started);
    assert_eq!(created.exit_code, None);

    fx.runtime.start_container(&id).await.expect("started");
    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(state.running && state.started, "{state:?}");
    assert_eq!(state.id, id);
    assert_eq!(state.name, spec.name);
    assert_eq!(state.image, IMAGE);
    assert!(state
        .image_id
        .as_deref()
        .is_some_and(|i| i.starts_with("sha256:")));
    assert_eq!(
        state
            .labels
            .get("com.berth.container-name")
            .map(String::as_str),
        Some("web")
    );
    let binding = state
        .ports
        .iter()
        .find(|p| p.container_port == 80)
        .expect("a binding of port 80");
    assert_eq!(binding.protocol, "tcp");
    assert!(binding.host_port > 0);

    // The binding is the one Docker itself reports.
    let out = Command::new("docker")
        .args(["port", &id, "80/tcp"])
        .output()
        .expect("docker port runs");
    let docker_port = String::from_utf8_lossy(&out.stdout);
    assert!(
        docker_port.contains(&format!(":{}", binding.host_port)),
        "docker port says {docker_port}"
    );

    let listed = fx
        .runtime
        .list_containers(&fx.labels())
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert!(listed[0].running);
    let other = BTreeMap::from([(RUN_LABEL.to_string(), "another-run".to_string())]);
    assert!(fx
        .runtime
        .list_containers(&other)
        .await
        .expect("list")
        .is_empty());

    assert!(fx
        .runtime
        .image_present(IMAGE)
        .await
        .expect("image inspect"));
    assert!(!fx
        .runtime
        .image_present("berth-test/never-built:none")
        .await
        .expect("image inspect"));
    let info = fx.runtime.ping().await.expect("ping");
    assert!(!info.version.is_empty());
    // What the agent advertises as capabilities comes from the daemon itself.
    assert!(info
        .api_version
        .as_deref()
        .is_some_and(|v| v.starts_with("1.")));
    assert!(
        info.log_drivers.iter().any(|d| d == "json-file"),
        "{info:?}"
    );
    assert!(info.volume_drivers.iter().any(|d| d == "local"), "{info:?}");
}

#[tokio::test]
async fn stop_ends_a_container_that_ignores_sigterm_within_the_timeout() {
    let fx = Fixture::new().await;
    // A shell as PID 1 ignores SIGTERM, so only the SIGKILL after the timeout ends it.
    let id = fx
        .runtime
        .create_container(&fx.spec("stubborn", "sleep 300"))
        .await
        .expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    let timeout = Duration::from_secs(2);
    let began = Instant::now();
    fx.runtime
        .stop_container(&id, timeout)
        .await
        .expect("stopped");
    let took = began.elapsed();
    assert!(
        took < timeout + Duration::from_secs(8),
        "stop took {took:?}"
    );

    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(!state.running && state.started);
    assert!(matches!(state.exit_code, Some(143 | 137)), "{state:?}");

    // Stopping a stopped container is not an error.
    fx.runtime
        .stop_container(&id, timeout)
        .await
        .expect("stopped again");
}

#[tokio::test]
async fn kill_ends_a_container_at_once_with_137_and_a_finish_time() {
    let fx = Fixture::new().await;
    let id = fx
        .runtime
        .create_container(&fx.spec("killed", "sleep 300"))
        .await
        .expect("created");
    fx.runtime.start_container(&id).await.expect("started");
    let before = std::time::SystemTime::now() - Duration::from_secs(2);
    fx.runtime.kill_container(&id).await.expect("killed");
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = fx.runtime.inspect_container(&id).await.expect("inspect");
        if !state.running || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state.exit_code, Some(137), "{state:?}");
    let finished = state.finished_at.expect("a finish time");
    assert!(finished >= before, "{finished:?}");
    // Killing a container that is not running is not an error; one that is gone is NotFound.
    fx.runtime.kill_container(&id).await.expect("killed again");
    fx.runtime.remove_container(&id).await.expect("removed");
    assert!(matches!(
        fx.runtime.kill_container(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn stop_of_a_container_that_handles_sigterm_returns_at_once_with_143() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("polite", "sleep 300");
    spec.init = true; // docker-init forwards SIGTERM to the shell, which dies of it.
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    let began = Instant::now();
    fx.runtime
        .stop_container(&id, Duration::from_secs(30))
        .await
        .expect("stopped");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        began.elapsed()
    );
    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(matches!(state.exit_code, Some(143 | 137)), "{state:?}");
}

#[tokio::test]
async fn a_container_that_exits_3_reports_code_3_and_a_died_event() {
    let fx = Fixture::new().await;
    let mut events = fx.events().await;
    let id = fx
        .runtime
        .create_container(&fx.spec("exit3", "sleep 0.2; exit 3"))
        .await
        .expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    let started = wait_for(
        &mut events,
        Duration::from_secs(20),
        "Started event",
        |e| match e {
            RuntimeEvent::Started { id: got } if *got == id => Some(()),
            _ => None,
        },
    )
    .await;
    assert_eq!(started, ());
    let code = wait_for(
        &mut events,
        Duration::from_secs(20),
        "Died event",
        |e| match e {
            RuntimeEvent::Died { id: got, exit_code } if *got == id => Some(*exit_code),
            _ => None,
        },
    )
    .await;
    assert_eq!(code, Some(3));

    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(!state.running && state.started);
    assert_eq!(state.exit_code, Some(3));
    assert!(!state.oom_killed);
}

#[tokio::test]
async fn a_passing_health_check_reports_healthy() {
    let fx = Fixture::new().await;
    let mut events = fx.events().await;
    let mut spec = fx.spec("healthy", "touch /tmp/ready; sleep 300");
    spec.health_check = Some(HealthCheckSpec {
        test: vec!["CMD-SHELL".into(), "test -f /tmp/ready".into()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::ZERO,
    });
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    let health = wait_for(
        &mut events,
        Duration::from_secs(30),
        "HealthChanged event",
        |e| match e {
            RuntimeEvent::HealthChanged { id: got, health } if *got == id => Some(*health),
            _ => None,
        },
    )
    .await;
    assert_eq!(health, Health::Healthy);
    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert_eq!(state.health, Health::Healthy);
    fx.runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .expect("stopped");
}

#[tokio::test]
async fn a_failing_health_check_reports_unhealthy() {
    let fx = Fixture::new().await;
    let mut events = fx.events().await;
    let mut spec = fx.spec("unhealthy", "sleep 300");
    spec.health_check = Some(HealthCheckSpec {
        test: vec!["CMD".into(), "/bin/false".into()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        retries: 1,
        start_period: Duration::ZERO,
    });
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");
    let health = wait_for(
        &mut events,
        Duration::from_secs(30),
        "HealthChanged event",
        |e| match e {
            RuntimeEvent::HealthChanged { id: got, health } if *got == id => Some(*health),
            _ => None,
        },
    )
    .await;
    assert_eq!(health, Health::Unhealthy);
}

#[tokio::test]
async fn pulling_an_image_that_does_not_exist_names_it_in_the_error() {
    let fx = Fixture::new().await;
    let image = format!("localhost:1/berth-no-such-image-{}", &fx.run_id[..8]);
    let err = fx
        .runtime
        .pull_image(&image, None)
        .await
        .expect_err("the pull fails");
    match &err {
        RuntimeError::ImagePull {
            image: named,
            message,
        } => {
            assert_eq!(*named, format!("{image}:latest"));
            assert!(!message.is_empty());
        }
        other => panic!("expected ImagePull, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("CannotPullContainerError: pull image "),
        "{err}"
    );
    assert!(err.to_string().contains(&image), "{err}");
}

#[tokio::test]
async fn creating_from_a_missing_image_is_a_create_error() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("noimage", "true");
    spec.image = "berth-test/never-built:none".into();
    let err = fx
        .runtime
        .create_container(&spec)
        .await
        .expect_err("create fails");
    assert!(matches!(err, RuntimeError::Create(_)), "{err:?}");
}

#[tokio::test]
async fn a_removed_container_is_not_found_afterwards() {
    let fx = Fixture::new().await;
    let id = fx
        .runtime
        .create_container(&fx.spec("gone", "sleep 300"))
        .await
        .expect("created");
    fx.runtime.start_container(&id).await.expect("started");
    // Removing forces a running container out, as a cleanup must.
    fx.runtime.remove_container(&id).await.expect("removed");

    assert_eq!(
        fx.runtime.inspect_container(&id).await,
        Err(RuntimeError::NotFound(id.clone()))
    );
    assert_eq!(
        fx.runtime.remove_container(&id).await,
        Err(RuntimeError::NotFound(id.clone()))
    );
    assert_eq!(
        fx.runtime.stop_container(&id, Duration::from_secs(1)).await,
        Err(RuntimeError::NotFound(id.clone()))
    );
    assert_eq!(
        fx.runtime.start_container(&id).await,
        Err(RuntimeError::NotFound(id.clone()))
    );
    assert!(fx
        .runtime
        .list_containers(&fx.labels())
        .await
        .expect("list")
        .is_empty());
}
