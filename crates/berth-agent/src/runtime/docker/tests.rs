//! Unit tests of the pure parts of the Docker runtime: the create body, the inspect and event
//! mappings and image references. The daemon itself is exercised in `tests/docker_runtime.rs`.

use super::*;
use crate::runtime::{DeviceSpec, HealthCheckSpec, MountSpec, PortSpec, UlimitSpec};
use serde_json::json;

fn full_spec() -> ContainerSpec {
    ContainerSpec {
        name: "berth-web-1-app-0123456789ab".into(),
        image: "busybox".into(),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        command: Some(vec!["sleep 60".into()]),
        env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
        working_dir: Some("/tmp".into()),
        user: Some("nobody".into()),
        hostname: Some("box".into()),
        cpu_shares: 512,
        nano_cpus: Some(250_000_000),
        memory_mib: Some(64),
        memory_reservation_mib: Some(32),
        network_mode: "bridge".into(),
        ports: vec![
            PortSpec {
                container_port: 80,
                host_port: None,
                protocol: "tcp".into(),
            },
            PortSpec {
                container_port: 80,
                host_port: Some(8080),
                protocol: "tcp".into(),
            },
            PortSpec {
                container_port: 53,
                host_port: Some(0),
                protocol: "udp".into(),
            },
        ],
        mounts: vec![
            MountSpec::Bind {
                host_path: "/srv".into(),
                container_path: "/srv".into(),
                read_only: true,
            },
            MountSpec::Volume {
                name: "data".into(),
                container_path: "/data".into(),
                read_only: false,
                driver: Some("local".into()),
                driver_opts: BTreeMap::from([("type".to_string(), "tmpfs".to_string())]),
                labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
            },
            MountSpec::Tmpfs {
                container_path: "/run".into(),
                size_mib: 16,
                options: vec!["noexec".into()],
            },
        ],
        labels: BTreeMap::from([("com.berth.cluster".to_string(), "default".to_string())]),
        health_check: Some(HealthCheckSpec {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries: 3,
            start_period: Duration::from_millis(1500),
        }),
        ulimits: vec![UlimitSpec {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }],
        readonly_rootfs: true,
        privileged: false,
        init: true,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["MKNOD".into()],
        dns_servers: vec!["1.1.1.1".into()],
        dns_search: vec!["example.com".into()],
        extra_hosts: vec!["db:10.0.0.2".into()],
        log_driver: Some("json-file".into()),
        log_options: BTreeMap::from([("max-size".to_string(), "1m".to_string())]),
        stop_timeout: Some(Duration::from_secs(10)),
        interactive: true,
        tty: false,
        disable_networking: false,
        volumes_from: vec!["berth-web-1-data-0123456789ab:ro".into()],
        links: vec!["berth-web-1-db-0123456789ab:database".into()],
        devices: vec![DeviceSpec {
            host_path: "/dev/fuse".into(),
            container_path: "/dev/fuse".into(),
            permissions: "rw".into(),
        }],
        shm_size_mib: Some(128),
        memory_swap_mib: Some(96),
        memory_swappiness: Some(10),
        sysctls: BTreeMap::from([("net.core.somaxconn".to_string(), "1024".to_string())]),
        security_opt: vec!["no-new-privileges".into()],
        cgroup_parent: Some("/berth/task1".into()),
        pid_mode: Some("container:berth-web-1-db-0123456789ab".into()),
        ipc_mode: Some("shareable".into()),
    }
}

#[test]
fn the_create_body_carries_every_spec_field_in_docker_units() {
    let body = serde_json::to_value(create_body(&full_spec())).expect("serializes");
    assert_eq!(body["Image"], "busybox");
    assert_eq!(body["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(body["Cmd"], json!(["sleep 60"]));
    assert_eq!(body["Env"], json!(["A=1", "B=x=y"]));
    assert_eq!(body["WorkingDir"], "/tmp");
    assert_eq!(body["User"], "nobody");
    assert_eq!(body["Hostname"], "box");
    assert_eq!(body["Labels"], json!({"com.berth.cluster": "default"}));
    assert_eq!(body["StopTimeout"], 10);
    assert_eq!(body["OpenStdin"], true);
    assert!(body.get("Tty").is_none());
    assert_eq!(
        body["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000_i64,
               "Timeout": 2_000_000_000_i64, "Retries": 3, "StartPeriod": 1_500_000_000_i64})
    );
    assert_eq!(body["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));

    let host = &body["HostConfig"];
    assert_eq!(host["CpuShares"], 512);
    assert_eq!(host["NanoCpus"], 250_000_000);
    assert_eq!(host["Memory"], 64 * 1024 * 1024);
    assert_eq!(host["MemoryReservation"], 32 * 1024 * 1024);
    assert_eq!(host["NetworkMode"], "bridge");
    let bindings = &host["PortBindings"]["80/tcp"];
    assert_eq!(bindings.as_array().map(Vec::len), Some(2));
    assert!(bindings[0]
        .get("HostPort")
        .is_none_or(|p| p.is_null() || p == ""));
    assert_eq!(bindings[1]["HostPort"], "8080");
    assert!(host["PortBindings"]["53/udp"][0]
        .get("HostPort")
        .is_none_or(|p| p.is_null() || p == ""));
    assert_eq!(host["Binds"], json!(["/srv:/srv:ro"]));
    assert_eq!(host["Mounts"][0]["Type"], "volume");
    assert_eq!(host["Mounts"][0]["Source"], "data");
    assert_eq!(host["Mounts"][0]["Target"], "/data");
    assert_eq!(
        host["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Name"],
        "local"
    );
    assert_eq!(host["Tmpfs"], json!({"/run": "noexec,size=16m"}));
    assert_eq!(
        host["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(host["ReadonlyRootfs"], true);
    assert!(host.get("Privileged").is_none());
    assert_eq!(host["Init"], true);
    assert_eq!(host["CapAdd"], json!(["NET_ADMIN"]));
    assert_eq!(host["CapDrop"], json!(["MKNOD"]));
    assert_eq!(host["Dns"], json!(["1.1.1.1"]));
    assert_eq!(host["DnsSearch"], json!(["example.com"]));
    assert_eq!(host["ExtraHosts"], json!(["db:10.0.0.2"]));
    assert_eq!(
        host["LogConfig"],
        json!({"Type": "json-file", "Config": {"max-size": "1m"}})
    );
}

#[test]
fn the_create_body_carries_references_devices_kernel_and_volume_settings() {
    let body = serde_json::to_value(create_body(&full_spec())).expect("serializes");
    let host = &body["HostConfig"];
    assert_eq!(
        host["VolumesFrom"],
        json!(["berth-web-1-data-0123456789ab:ro"])
    );
    assert_eq!(
        host["Links"],
        json!(["berth-web-1-db-0123456789ab:database"])
    );
    assert_eq!(
        host["Devices"],
        json!([{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                "CgroupPermissions": "rw"}])
    );
    assert_eq!(host["ShmSize"], 128 * 1024 * 1024);
    assert_eq!(host["MemorySwap"], 96 * 1024 * 1024);
    assert_eq!(host["MemorySwappiness"], 10);
    assert_eq!(host["Sysctls"], json!({"net.core.somaxconn": "1024"}));
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(host["CgroupParent"], "/berth/task1");
    assert_eq!(host["PidMode"], "container:berth-web-1-db-0123456789ab");
    assert_eq!(host["IpcMode"], "shareable");
    assert_eq!(
        host["Mounts"][0]["VolumeOptions"],
        json!({"Labels": {"team": "a"},
               "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}})
    );
}

#[test]
fn host_mode_exposes_ports_without_publishing_them() {
    let spec = ContainerSpec {
        network_mode: "host".into(),
        ports: vec![PortSpec {
            container_port: 8080,
            host_port: Some(8080),
            protocol: "tcp".into(),
        }],
        ..ContainerSpec::default()
    };
    let body = serde_json::to_value(create_body(&spec)).expect("serializes");
    assert_eq!(body["HostConfig"]["NetworkMode"], "host");
    assert!(body["HostConfig"].get("PortBindings").is_none());
    assert_eq!(body["ExposedPorts"], json!({"8080/tcp": {}}));
}

#[test]
fn network_mode_none_neither_exposes_nor_publishes() {
    let spec = ContainerSpec {
        network_mode: "none".into(),
        ports: vec![PortSpec {
            container_port: 80,
            host_port: None,
            protocol: "tcp".into(),
        }],
        ..ContainerSpec::default()
    };
    let body = serde_json::to_value(create_body(&spec)).expect("serializes");
    assert_eq!(body["HostConfig"]["NetworkMode"], "none");
    assert!(body.get("ExposedPorts").is_none());
    assert!(body["HostConfig"].get("PortBindings").is_none());
}

#[test]
fn unset_options_are_left_to_docker() {
    let body = serde_json::to_value(create_body(&ContainerSpec {
        image: "busybox".into(),
        ..ContainerSpec::default()
    }))
    .expect("serializes");
    assert_eq!(body["HostConfig"]["NetworkMode"], "bridge");
    for key in [
        "Cmd",
        "Entrypoint",
        "Env",
        "Labels",
        "Healthcheck",
        "ExposedPorts",
        "StopTimeout",
    ] {
        assert!(body.get(key).is_none(), "{key} should be absent");
    }
    for key in [
        "CpuShares",
        "Memory",
        "Binds",
        "Mounts",
        "Tmpfs",
        "LogConfig",
        "Init",
        "CapAdd",
        "VolumesFrom",
        "Links",
        "Devices",
        "ShmSize",
        "MemorySwap",
        "MemorySwappiness",
        "Sysctls",
        "SecurityOpt",
        "CgroupParent",
        "PidMode",
        "IpcMode",
    ] {
        assert!(
            body["HostConfig"].get(key).is_none(),
            "HostConfig.{key} should be absent"
        );
    }
}

fn inspect(value: serde_json::Value) -> ContainerState {
    container_state(serde_json::from_value(value).expect("inspect parses"))
}

#[test]
fn a_running_container_reports_ports_labels_and_health() {
    let state = inspect(json!({
        "Id": "abc", "Name": "/berth-web-1-app-0123", "Image": "sha256:1234", "RestartCount": 2,
        "State": {"Status": "running", "Running": true, "ExitCode": 0, "OOMKilled": false,
                  "Error": "", "StartedAt": "2024-01-01T00:00:00.5Z",
                  "FinishedAt": "0001-01-01T00:00:00Z",
                  "Health": {"Status": "healthy", "FailingStreak": 0}},
        "Config": {"Image": "busybox", "Labels": {"a": "b"}},
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": {"Ports": {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}, {"HostIp": "::", "HostPort": "49153"}],
            "53/udp": null
        }}
    }));
    assert_eq!(state.id, "abc");
    assert_eq!(state.name, "berth-web-1-app-0123");
    assert_eq!(state.image, "busybox");
    assert_eq!(state.image_id.as_deref(), Some("sha256:1234"));
    assert!(state.running && state.started);
    assert_eq!(state.exit_code, None);
    assert_eq!(state.error, None);
    assert_eq!(state.health, Health::Healthy);
    assert_eq!(state.restart_count, 2);
    assert_eq!(state.labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(
        state.ports,
        vec![
            PortBinding {
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "0.0.0.0".into(),
                host_port: 49153
            },
            PortBinding {
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "::".into(),
                host_port: 49153
            },
        ]
    );
}

#[test]
fn an_exited_container_reports_its_code_and_oom() {
    let state = inspect(json!({
        "Id": "abc",
        "State": {"Status": "exited", "Running": false, "ExitCode": 137, "OOMKilled": true,
                  "StartedAt": "2024-01-01T00:00:00Z", "FinishedAt": "2024-01-01T00:00:01Z"},
        "Config": {"Image": "busybox"}
    }));
    assert!(!state.running && state.started && state.oom_killed);
    assert_eq!(state.exit_code, Some(137));
    assert_eq!(state.health, Health::Unknown);
    assert_eq!(
        state.started_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
    );
    assert_eq!(
        state.finished_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_704_067_201))
    );
}

#[test]
fn docker_timestamps_read_as_epoch_seconds() {
    assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(
        epoch_seconds("2026-11-26T17:35:50.25Z"),
        Some(1_795_714_550.25)
    );
    assert_eq!(epoch_seconds("2000-02-29T12:00:00Z"), Some(951_825_600.0));
    assert_eq!(epoch_seconds("0001-01-01T00:00:00Z"), None);
    assert_eq!(epoch_seconds("yesterday"), None);
}

#[test]
fn a_created_container_has_not_started_and_has_no_exit_code() {
    let state = inspect(json!({
        "Id": "abc",
        "State": {"Status": "created", "Running": false, "ExitCode": 0,
                  "StartedAt": "0001-01-01T00:00:00Z", "Error": "starting failed"},
        "Config": {"Image": "busybox"}
    }));
    assert!(!state.running && !state.started);
    assert_eq!(state.exit_code, None);
    assert_eq!(state.error.as_deref(), Some("starting failed"));
}

#[test]
fn health_states_map_and_none_is_unknown() {
    for (docker, health) in [
        ("starting", Health::Starting),
        ("healthy", Health::Healthy),
        ("unhealthy", Health::Unhealthy),
        ("none", Health::Unknown),
    ] {
        let state = inspect(json!({"State": {"Running": true, "Health": {"Status": docker}}}));
        assert_eq!(state.health, health, "{docker}");
    }
}

#[test]
fn a_host_mode_container_binds_its_exposed_ports_on_the_host() {
    let state = inspect(json!({
        "State": {"Running": true, "StartedAt": "2024-01-01T00:00:00Z"},
        "Config": {"Image": "busybox", "ExposedPorts": {"8080/tcp": {}}},
        "HostConfig": {"NetworkMode": "host"},
        "NetworkSettings": {"Ports": {}}
    }));
    assert_eq!(
        state.ports,
        vec![PortBinding {
            container_port: 8080,
            protocol: "tcp".into(),
            host_ip: "0.0.0.0".into(),
            host_port: 8080
        }]
    );
}

fn event(value: serde_json::Value) -> Option<RuntimeEvent> {
    runtime_event(&serde_json::from_value(value).expect("event parses"))
}

#[test]
fn container_events_map_to_runtime_events() {
    assert_eq!(
        event(
            json!({"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {}}})
        ),
        Some(RuntimeEvent::Started { id: "c1".into() })
    );
    assert_eq!(
        event(json!({"Type": "container", "Action": "die",
                     "Actor": {"ID": "c1", "Attributes": {"exitCode": "3", "name": "x"}}})),
        Some(RuntimeEvent::Died {
            id: "c1".into(),
            exit_code: Some(3)
        })
    );
    assert_eq!(
        event(
            json!({"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "c1"}})
        ),
        Some(RuntimeEvent::HealthChanged {
            id: "c1".into(),
            health: Health::Healthy
        })
    );
    assert_eq!(
        event(
            json!({"Type": "container", "Action": "health_status: unhealthy", "Actor": {"ID": "c1"}})
        ),
        Some(RuntimeEvent::HealthChanged {
            id: "c1".into(),
            health: Health::Unhealthy
        })
    );
}

#[test]
fn other_events_are_ignored() {
    assert_eq!(
        event(json!({"Type": "container", "Action": "create", "Actor": {"ID": "c1"}})),
        None
    );
    assert_eq!(
        event(json!({"Type": "container", "Action": "exec_start: sh", "Actor": {"ID": "c1"}})),
        None
    );
    assert_eq!(
        event(json!({"Type": "image", "Action": "pull", "Actor": {"ID": "busybox"}})),
        None
    );
    assert_eq!(event(json!({"Type": "container", "Action": "start"})), None);
}

#[test]
fn image_references_default_to_latest_and_keep_registry_ports() {
    let split = |r: &str| split_image_reference(r);
    assert_eq!(split("busybox"), ("busybox".into(), Some("latest".into())));
    assert_eq!(
        split("busybox:1.36"),
        ("busybox".into(), Some("1.36".into()))
    );
    assert_eq!(
        split("localhost:5000/app"),
        ("localhost:5000/app".into(), Some("latest".into()))
    );
    assert_eq!(
        split("localhost:5000/app:v2"),
        ("localhost:5000/app".into(), Some("v2".into()))
    );
    assert_eq!(split("app@sha256:abcd"), ("app@sha256:abcd".into(), None));
}

#[test]
fn docker_timestamps_have_nanosecond_precision() {
    assert_eq!(
        docker_timestamp(1_700_000_000_000_000_005),
        "1700000000.000000005"
    );
}

#[test]
fn jitter_keeps_the_delay_between_half_and_all_of_it() {
    let d = with_jitter(Duration::from_secs(2));
    assert!(
        d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
        "{d:?}"
    );
}

#[test]
fn daemon_errors_keep_their_message_and_404_is_not_found() {
    let not_found = DockerError::DockerResponseServerError {
        status_code: 404,
        message: "No such container: x".into(),
    };
    assert_eq!(
        container_error("x", &not_found, RuntimeError::Other),
        RuntimeError::NotFound("x".into())
    );
    let conflict = DockerError::DockerResponseServerError {
        status_code: 409,
        message: "conflict\n".into(),
    };
    assert_eq!(
        container_error("x", &conflict, RuntimeError::Start),
        RuntimeError::Start("conflict".into())
    );
    let away = DockerError::SocketNotFoundError("/var/run/docker.sock".into());
    assert!(matches!(
        container_error("x", &away, RuntimeError::Other),
        RuntimeError::Unavailable(_)
    ));
}

/// A scripted stand-in for the Docker daemon on a TCP port: answers `/version` with API 1.41,
/// and each `/events` request with the next script entry (events as JSON lines; `true` to end
/// the stream afterwards, `false` to keep it open). Returns its address and the `/events`
/// request lines it received.
async fn fake_daemon(
    script: Vec<(Vec<serde_json::Value>, bool)>,
) -> (String, mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = format!("tcp://{}", listener.local_addr().expect("has an address"));
    let (requests_tx, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        let mut open = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match socket.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let request_line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            if request_line.contains("/version") {
                let body = r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                continue;
            }
            let _ = requests_tx.send(request_line);
            let Some((events, end)) = script.next() else {
                continue;
            };
            let mut response = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            for event in events {
                let line = format!("{event}\n");
                response.push_str(&format!("{:x}\r\n{line}\r\n", line.len()));
            }
            if end {
                response.push_str("0\r\n\r\n");
            }
            let _ = socket.write_all(response.as_bytes()).await;
            if !end {
                open.push(socket);
            }
        }
    });
    (address, requests)
}

async fn next(events: &mut mpsc::Receiver<RuntimeEvent>) -> Option<RuntimeEvent> {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event in time")
}

fn docker_event(action: &str, id: &str, time_nano: i64) -> serde_json::Value {
    json!({"Type": "container", "Action": action, "time": time_nano / 1_000_000_000,
           "timeNano": time_nano, "Actor": {"ID": id, "Attributes": {"exitCode": "0"}}})
}

#[tokio::test]
async fn a_broken_event_stream_reconnects_from_the_last_event_and_asks_for_a_resync() {
    // Event times after the subscription time, as the daemon stamps them.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    let t1 = i64::try_from(now).expect("fits") + 1_000_000_000;
    let (address, mut requests) = fake_daemon(vec![
        (vec![docker_event("start", "c1", t1)], true),
        (vec![docker_event("die", "c1", t1 + 5)], false),
    ])
    .await;
    let client =
        Docker::connect_with_http(&address, 5, bollard::API_DEFAULT_VERSION).expect("client");
    let runtime = DockerRuntime::with_client(client)
        .await
        .expect("negotiates");
    let labels = BTreeMap::from([("com.berth.cluster".to_string(), "default".to_string())]);
    let mut events = runtime.events(&labels).await.expect("stream");

    assert_eq!(
        next(&mut events).await,
        Some(RuntimeEvent::Started { id: "c1".into() })
    );
    assert_eq!(next(&mut events).await, Some(RuntimeEvent::Resync));
    assert_eq!(
        next(&mut events).await,
        Some(RuntimeEvent::Died {
            id: "c1".into(),
            exit_code: Some(0)
        })
    );

    let first = requests.recv().await.expect("first request");
    assert!(first.starts_with("GET /events?"), "{first}");
    assert!(first.contains("container"), "filters by type: {first}");
    assert!(
        first.contains("com.berth.cluster%3Ddefault"),
        "filters by label: {first}"
    );
    let second = requests.recv().await.expect("second request");
    let resume = docker_timestamp(u128::try_from(t1 + 1).expect("positive"));
    assert!(
        second.contains(&format!("since={resume}")),
        "resumes after the last event: {second}"
    );
}

#[tokio::test]
async fn an_unreachable_daemon_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = format!("tcp://{}", listener.local_addr().expect("address"));
    drop(listener);
    let client =
        Docker::connect_with_http(&address, 5, bollard::API_DEFAULT_VERSION).expect("client");
    let err = DockerRuntime::with_client(client)
        .await
        .expect_err("nobody answers");
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
}
