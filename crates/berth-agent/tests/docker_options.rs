//! Docker tests of `DockerRuntime` against the real daemon. They fail (never skip) when no
//! Docker daemon answers; `scripts/ensure-docker` starts one. The busybox test image is built
//! by `scripts/build-test-image` on first use (`support`).
//! This file: what container specs ask of the daemon (every create option, networks,
//! namespaces, devices, volumes).

mod support;

use berth_agent::runtime::{ContainerRuntime, DeviceSpec, MountSpec, PortSpec, RuntimeError};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

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
