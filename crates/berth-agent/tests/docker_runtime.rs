//! Docker tests of `DockerRuntime` against the real daemon. They fail (never skip) when no
//! Docker daemon answers; `scripts/ensure-docker` starts one. The busybox test image is built
//! by `scripts/build-test-image` on first use. Every container carries a label unique to the
//! test run and is removed at the end, even when a test fails; so is every volume labelled
//! with it.

use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, DeviceSpec, Health, HealthCheckSpec,
    MountSpec, PortSpec, RuntimeError, RuntimeEvent,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const IMAGE: &str = "berth-test/busybox:latest";
const RUN_LABEL: &str = "com.berth.test-run";

/// Builds the test image once per test binary; panics with the script's output on failure.
fn ensure_test_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-image");
        let output = Command::new(&script)
            .output()
            .expect("scripts/build-test-image runs");
        assert!(
            output.status.success(),
            "scripts/build-test-image failed (is Docker running? try scripts/ensure-docker):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// A connected runtime and a label unique to one test; removes the test's containers on drop.
struct Fixture {
    runtime: DockerRuntime,
    run_id: String,
}

impl Fixture {
    async fn new() -> Self {
        ensure_test_image();
        let runtime = DockerRuntime::connect()
            .await
            .expect("a Docker daemon must answer for the Docker tests (see scripts/ensure-docker)");
        Fixture {
            runtime,
            run_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(RUN_LABEL.to_string(), self.run_id.clone())])
    }

    /// A busybox container spec named after the test run, running `script` with `sh -c`.
    fn spec(&self, suffix: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: format!("berth-test-{}-{suffix}", &self.run_id[..12]),
            image: IMAGE.to_string(),
            command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
            network_mode: "bridge".into(),
            labels: self.labels(),
            memory_mib: Some(32),
            ..ContainerSpec::default()
        }
    }

    /// Creates and starts `spec`, then waits (up to 20 s) for it to exit.
    async fn run_to_exit(&self, spec: &ContainerSpec) -> (String, ContainerState) {
        let id = self.runtime.create_container(spec).await.expect("created");
        self.runtime.start_container(&id).await.expect("started");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.runtime.inspect_container(&id).await.expect("inspect");
            if !state.running || Instant::now() > deadline {
                return (id, state);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A named volume mount labelled with the test run (so that it is removed at the end).
    fn volume(&self, suffix: &str, path: &str) -> (String, MountSpec) {
        let name = format!("berth-test-{}-{suffix}", &self.run_id[..12]);
        let mount = MountSpec::Volume {
            name: name.clone(),
            container_path: path.into(),
            read_only: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: self.labels(),
        };
        (name, mount)
    }

    async fn events(&self) -> mpsc::Receiver<RuntimeEvent> {
        self.runtime
            .events(&self.labels())
            .await
            .expect("event stream opens")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let filter = format!("label={RUN_LABEL}={}", self.run_id);
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
        let Ok(out) = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &filter])
            .output()
        else {
            return;
        };
        let names = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = names.split_whitespace().collect();
        if !names.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&names)
                .output();
        }
    }
}

/// The next event matching `pick` within `limit`; panics naming `what` otherwise.
async fn wait_for<T>(
    events: &mut mpsc::Receiver<RuntimeEvent>,
    limit: Duration,
    what: &str,
    mut pick: impl FnMut(&RuntimeEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            Ok(None) => panic!("event stream closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {limit:?}"),
        }
    }
}

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
        .pull_image(&image)
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

#[tokio::test]
async fn the_create_body_is_accepted_by_the_daemon_with_every_option_set() {
    use berth_agent::runtime::{MountSpec, UlimitSpec};
    let fx = Fixture::new().await;
    let volume = format!("berth-test-{}", &fx.run_id[..12]);
    let mut spec = fx.spec("full", "cat /proc/self/limits >/dev/null; echo ok");
    spec.entrypoint = None;
    spec.env = vec![("A".into(), "1".into())];
    spec.working_dir = Some("/tmp".into());
    spec.user = Some("nobody".into());
    spec.hostname = Some("box".into());
    spec.cpu_shares = 256;
    spec.memory_reservation_mib = Some(16);
    spec.ports = vec![PortSpec {
        container_port: 53,
        host_port: Some(0),
        protocol: "udp".into(),
    }];
    spec.mounts = vec![
        MountSpec::Volume {
            name: volume.clone(),
            container_path: "/data".into(),
            read_only: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        },
        MountSpec::Tmpfs {
            container_path: "/scratch".into(),
            size_mib: 8,
            options: vec!["noexec".into()],
        },
    ];
    spec.ulimits = vec![UlimitSpec {
        name: "nofile".into(),
        soft: 1024,
        hard: 2048,
    }];
    spec.readonly_rootfs = true;
    spec.init = true;
    spec.cap_drop = vec!["MKNOD".into()];
    spec.dns_servers = vec!["10.0.0.53".into()];
    spec.dns_search = vec!["example.com".into()];
    spec.extra_hosts = vec!["db:10.0.0.2".into()];
    spec.log_driver = Some("json-file".into());
    spec.log_options = BTreeMap::from([("max-size".into(), "1m".into())]);
    spec.stop_timeout = Some(Duration::from_secs(5));
    spec.memory_swap_mib = Some(48);
    spec.memory_swappiness = Some(60);
    spec.security_opt = vec!["no-new-privileges".into()];

    let id = fx.runtime.create_container(&spec).await.expect("created");
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.Config.StopTimeout}} {{.HostConfig.LogConfig.Type}} {{.HostConfig.MemorySwap}} {{.HostConfig.SecurityOpt}}", &id])
        .output()
        .expect("docker inspect runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "{} {} 256 true nobody 5 json-file {} [no-new-privileges]",
            32 * 1024 * 1024,
            16 * 1024 * 1024,
            48 * 1024 * 1024
        )
    );
    fx.runtime.start_container(&id).await.expect("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let state = fx.runtime.inspect_container(&id).await.expect("inspect");
        if !state.running || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state.exit_code, Some(0), "{state:?}");
    fx.runtime.remove_container(&id).await.expect("removed");
    let _ = Command::new("docker")
        .args(["volume", "rm", &volume])
        .output();
}

#[tokio::test]
async fn a_container_whose_entrypoint_does_not_exist_fails_to_start() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("noexec", "true");
    spec.entrypoint = Some(vec!["/no/such/binary".into()]);
    let id = fx.runtime.create_container(&spec).await.expect("created");
    let err = fx
        .runtime
        .start_container(&id)
        .await
        .expect_err("start fails");
    match &err {
        RuntimeError::Start(message) => assert!(message.contains("/no/such/binary"), "{message}"),
        other => panic!("expected Start, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("CannotStartContainerError: "),
        "{err}"
    );
    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(!state.running && !state.started, "{state:?}");
}

#[tokio::test]
async fn a_host_network_container_reports_its_ports_on_the_host() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("hostnet", "sleep 300");
    spec.network_mode = "host".into();
    spec.ports = vec![PortSpec {
        container_port: 18080,
        host_port: Some(18080),
        protocol: "tcp".into(),
    }];
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");
    let state = fx.runtime.inspect_container(&id).await.expect("inspect");
    assert!(state.running);
    let ports: Vec<(u16, u16)> = state
        .ports
        .iter()
        .map(|p| (p.container_port, p.host_port))
        .collect();
    assert_eq!(ports, vec![(18080, 18080)]);
}

#[tokio::test]
async fn volumes_from_mounts_the_source_containers_volumes_read_only() {
    let fx = Fixture::new().await;
    let (_, mount) = fx.volume("shared", "/data");
    let mut data = fx.spec("data", "echo hello > /data/greeting");
    data.mounts = vec![mount];
    let (_, state) = fx.run_to_exit(&data).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
    let mut reader = fx.spec(
        "reader",
        "test \"$(cat /data/greeting)\" = hello && ! touch /data/other 2>/dev/null",
    );
    reader.volumes_from = vec![format!("{}:ro", data.name)];
    let (_, state) = fx.run_to_exit(&reader).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
    assert_eq!(
        state.volumes,
        vec![format!("berth-test-{}-shared", &fx.run_id[..12])]
    );
}

#[tokio::test]
async fn shared_memory_size_sets_the_size_of_dev_shm() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec(
        "shm",
        "test \"$(df -k /dev/shm | awk 'NR==2 {print $2}')\" = 98304",
    );
    spec.shm_size_mib = Some(96);
    let (_, state) = fx.run_to_exit(&spec).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
}

#[tokio::test]
async fn system_controls_set_namespaced_kernel_parameters() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec(
        "sysctl",
        "test \"$(cat /proc/sys/net/core/somaxconn)\" = 1234",
    );
    spec.sysctls = BTreeMap::from([("net.core.somaxconn".into(), "1234".into())]);
    let (_, state) = fx.run_to_exit(&spec).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
}

#[tokio::test]
async fn a_host_device_appears_at_its_container_path() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec(
        "device",
        "test -c /dev/berth-null && echo x > /dev/berth-null",
    );
    spec.devices = vec![DeviceSpec {
        host_path: "/dev/null".into(),
        container_path: "/dev/berth-null".into(),
        permissions: "rw".into(),
    }];
    let (_, state) = fx.run_to_exit(&spec).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
}

#[tokio::test]
async fn links_and_a_joined_pid_namespace_reach_the_other_container() {
    let fx = Fixture::new().await;
    let mut db = fx.spec("db", "exec sleep 300");
    db.ipc_mode = Some("shareable".into());
    let db_id = fx.runtime.create_container(&db).await.expect("created");
    fx.runtime.start_container(&db_id).await.expect("started");
    let mut app = fx.spec(
        "app",
        "grep -q database /etc/hosts && ps | grep -v grep | grep -q 'sleep 300'",
    );
    app.links = vec![format!("{}:database", db.name)];
    app.pid_mode = Some(format!("container:{}", db.name));
    app.ipc_mode = Some(format!("container:{}", db.name));
    let (_, state) = fx.run_to_exit(&app).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
}

#[tokio::test]
async fn a_volume_is_made_with_its_options_and_removed_once_unused() {
    let fx = Fixture::new().await;
    let (name, mut mount) = fx.volume("opts", "/v");
    if let MountSpec::Volume { driver_opts, .. } = &mut mount {
        *driver_opts = BTreeMap::from([
            ("type".into(), "tmpfs".into()),
            ("device".into(), "tmpfs".into()),
        ]);
    }
    let mut spec = fx.spec("vol", "grep -q ' /v tmpfs ' /proc/mounts");
    spec.mounts = vec![mount];
    let (id, state) = fx.run_to_exit(&spec).await;
    assert_eq!(state.exit_code, Some(0), "{state:?}");
    let label = Command::new("docker")
        .args([
            "volume",
            "inspect",
            "--format",
            "{{index .Labels \"com.berth.test-run\"}}",
            &name,
        ])
        .output()
        .expect("docker volume inspect runs");
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), fx.run_id);
    let err = fx.runtime.remove_volume(&name).await.expect_err("in use");
    assert!(
        matches!(&err, RuntimeError::Other(m) if m.contains("in use")),
        "{err:?}"
    );
    fx.runtime.remove_container(&id).await.expect("removed");
    fx.runtime
        .remove_volume(&name)
        .await
        .expect("volume removed");
    assert_eq!(
        fx.runtime.remove_volume(&name).await,
        Err(RuntimeError::NotFound(name.clone()))
    );
}

/// Reads an exec's output to its end (at most 20 s).
async fn exec_output(process: &mut berth_agent::runtime::ExecProcess) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let read = async {
        while let Some(chunk) = process.output.next().await {
            out.extend_from_slice(&chunk.expect("output"));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the command's output ends");
    out
}

/// The exit code of an exec whose output ended (the daemon may take a moment to record it).
async fn exec_exit(fx: &Fixture, exec_id: &str) -> i64 {
    for _ in 0..100 {
        if let Some(code) = fx
            .runtime
            .exec_exit_code(exec_id)
            .await
            .expect("inspect exec")
        {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("exec {exec_id} has no exit code");
}

#[tokio::test]
async fn exec_runs_commands_in_a_running_container_with_and_without_a_terminal() {
    use berth_agent::runtime::ExecSpec;
    use tokio::io::AsyncWriteExt;
    let fx = Fixture::new().await;
    let spec = fx.spec("exec", "trap 'exit 0' TERM; sleep 300 & wait");
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    // Without a terminal: stdout and stderr as written, the exit code kept.
    let plain = ExecSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; exit 7".into(),
        ],
        tty: false,
    };
    let mut process = fx.runtime.exec_start(&id, &plain).await.expect("exec");
    let out = String::from_utf8(exec_output(&mut process).await).expect("text");
    // Two streams: their order between each other is the daemon's.
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "out"], "{out:?}");
    assert_eq!(exec_exit(&fx, &process.id).await, 7);

    // With a terminal: input typed in, the size set, output with the terminal's line ends.
    let shell = ExecSpec {
        command: vec!["sh".into()],
        tty: true,
    };
    let mut process = fx.runtime.exec_start(&id, &shell).await.expect("exec");
    fx.runtime
        .exec_resize(&process.id, 101, 33)
        .await
        .expect("resize");
    process
        .input
        .write_all(b"stty size; exit 4\n")
        .await
        .expect("typed");
    process.input.flush().await.expect("flushed");
    let out = String::from_utf8_lossy(&exec_output(&mut process).await).into_owned();
    assert!(out.contains("33 101\r\n"), "{out:?}");
    assert_eq!(exec_exit(&fx, &process.id).await, 4);

    // A container that is gone is NotFound.
    fx.runtime.kill_container(&id).await.expect("killed");
    fx.runtime.remove_container(&id).await.expect("removed");
    assert!(matches!(
        fx.runtime.exec_start(&id, &plain).await,
        Err(RuntimeError::NotFound(_))
    ));
}
