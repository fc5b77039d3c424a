//! The agent end to end against a pretend server (hand-written HTTP/1.1 on a loopback port)
//! and the fake runtime: registration, identity, heartbeats, the desired-state stream,
//! reports, shutdown with containers left running, and re-registration on restart.

use super::*;
use crate::runtime::fake::{Call, FakeRuntime};
use berth_core::gateway::{AssignedTask, DesiredState, DesiredUpdate, SubmitTaskStateChange};
use berth_core::model::task::TaskOverride;
use berth_core::model::task_definition::TaskDefinition;
use berth_core::task_state::{self, NewTask};
use serde_json::{json, Value};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

const INSTANCE_ARN: &str =
    "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/0123456789abcdef0123456789abcdef";

#[derive(Default)]
struct Seen {
    registrations: Vec<Value>,
    heartbeats: Vec<Value>,
    reports: Vec<SubmitTaskStateChange>,
    desired_queries: Vec<String>,
}

struct PretendServer {
    url: String,
    seen: Arc<Mutex<Seen>>,
    desired: watch::Sender<DesiredState>,
    /// The accept loop, which owns the listener and every connection.
    accept: tokio::task::JoinHandle<()>,
}

impl PretendServer {
    async fn start() -> PretendServer {
        let (desired, _) = watch::channel(DesiredState {
            revision: 1,
            tasks: Vec::new(),
        });
        PretendServer::serving(desired).await
    }

    /// Another replica of this server: its own port and record of what it saw, the same
    /// desired state.
    async fn replica(&self) -> PretendServer {
        PretendServer::serving(self.desired.clone()).await
    }

    async fn serving(desired: watch::Sender<DesiredState>) -> PretendServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, d) = (seen.clone(), desired.clone());
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(stream, s.clone(), d.subscribe()));
            }
        });
        PretendServer {
            url,
            seen,
            desired,
            accept,
        }
    }

    /// Dies: the listener closes and so does every connection (the stream included).
    fn kill(&self) {
        self.accept.abort();
    }

    fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.seen.lock().expect("lock"))
    }

    /// Waits (real time, at most 10 s) until `ready` holds.
    async fn wait(&self, what: &str, ready: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.seen(&ready) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Serves one keep-alive connection.
async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    mut desired: watch::Receiver<DesiredState>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some((head, body)) = next_request(&mut stream, &mut buffer).await else {
            return;
        };
        let first = head.lines().next().unwrap_or_default().to_string();
        if first.starts_with("GET /v1/agent/desired") {
            seen.lock()
                .expect("lock")
                .desired_queries
                .push(first.clone());
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                let line = format!(
                    "{}\n",
                    serde_json::to_string(&DesiredUpdate::full(&desired.borrow_and_update()))
                        .expect("json")
                );
                if stream.write_all(line.as_bytes()).await.is_err()
                    || desired.changed().await.is_err()
                {
                    return;
                }
            }
        }
        let target = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-amz-target:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = {
            let mut seen = seen.lock().expect("lock");
            if first.starts_with("POST /v1/agent/heartbeat") {
                seen.heartbeats.push(value);
                "{}".to_string()
            } else if target.ends_with(".registercontainerinstance") {
                seen.registrations.push(value);
                json!({"containerInstance": {"containerInstanceArn": INSTANCE_ARN, "status": "ACTIVE"}}).to_string()
            } else if target.ends_with(".submittaskstatechange") {
                seen.reports
                    .push(serde_json::from_value(value).expect("report"));
                json!({"acknowledgment": "ok"}).to_string()
            } else {
                "{}".to_string()
            }
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn next_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0usize);
            if buffer.len() >= end + 4 + length {
                let body = buffer[end + 4..end + 4 + length].to_vec();
                buffer.drain(..end + 4 + length);
                return Some((head, body));
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn assigned_task() -> AssignedTask {
    let td: TaskDefinition = serde_json::from_value(json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "family": "web",
        "revision": 1,
        "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}],
    }))
    .expect("td");
    let task = task_state::new_task(NewTask {
        task_arn: "arn:aws:ecs:us-east-1:000000000000:task/demo/feedfacefeedfacefeedfacefeedface"
            .into(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/demo".into(),
        container_instance_arn: INSTANCE_ARN.into(),
        task_definition: &td,
        container_arns: vec!["c1".into()],
        overrides: TaskOverride::default(),
        started_by: None,
        group: "family:web".into(),
        launch_type: "EC2".into(),
        tags: Vec::new(),
        enable_execute_command: false,
        now: 1.0,
    });
    AssignedTask {
        task: task.into(),
        task_definition: td.into(),
    }
}

type Running = (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), AgentError>>,
);

fn start_agent(server: &PretendServer, fake: &FakeRuntime, data_dir: &std::path::Path) -> Running {
    start_agent_on(&[server.url.as_str()], fake, data_dir)
}

/// Starts an agent of cluster demo given the servers `urls`, heartbeating every 50 ms.
fn start_agent_on(urls: &[&str], fake: &FakeRuntime, data_dir: &std::path::Path) -> Running {
    let mut config = AgentConfig::new(
        urls[0],
        "demo",
        data_dir.to_path_buf(),
        crate::credentials::for_fake_servers(),
    );
    config.servers = urls.iter().map(|u| u.to_string()).collect();
    config.heartbeat_interval = Duration::from_millis(50);
    config.attributes = vec![("stack".into(), Some("test".into()))];
    config.availability_zone = Some("lab-1a".into());
    let (stop, stopped) = oneshot::channel::<()>();
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(fake.clone());
    let handle = tokio::spawn(run(config, runtime, async move {
        let _ = stopped.await;
    }));
    (stop, handle)
}

#[tokio::test]
async fn the_agent_registers_runs_its_tasks_and_comes_back_as_the_same_instance() {
    let server = PretendServer::start().await;
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let data_dir = tempfile::tempdir().expect("temp dir");

    let (stop, agent) = start_agent(&server, &fake, data_dir.path());
    server
        .wait("registration", |s| !s.registrations.is_empty())
        .await;
    let registration = server.seen(|s| s.registrations[0].clone());
    assert_eq!(registration["cluster"], "demo");
    assert!(registration.get("containerInstanceArn").is_none());
    let attributes = registration["attributes"]
        .as_array()
        .expect("attributes")
        .clone();
    assert!(attributes
        .iter()
        .any(|a| a["name"] == "ecs.availability-zone" && a["value"] == "lab-1a"));
    assert!(attributes
        .iter()
        .any(|a| a["name"] == "stack" && a["value"] == "test"));

    server
        .wait("a heartbeat", |s| !s.heartbeats.is_empty())
        .await;
    let heartbeat = server.seen(|s| s.heartbeats[0].clone());
    assert_eq!(
        heartbeat,
        json!({"cluster": "demo", "containerInstance": "0123456789abcdef0123456789abcdef"})
    );

    server.desired.send_replace(DesiredState {
        revision: 2,
        tasks: vec![assigned_task()],
    });
    server
        .wait("RUNNING", |s| {
            s.reports
                .iter()
                .any(|r| r.status.as_deref() == Some("RUNNING"))
        })
        .await;
    let statuses: Vec<String> =
        server.seen(|s| s.reports.iter().filter_map(|r| r.status.clone()).collect());
    // Reports that queue up behind one in flight go out merged, so the path may be shorter.
    assert!(statuses
        .iter()
        .all(|s| ["PENDING", "ACTIVATING", "RUNNING"].contains(&s.as_str())));
    let web_running = server.seen(|s| {
        s.reports
            .iter()
            .flat_map(|r| r.containers.iter().flatten())
            .any(|c| {
                c.container_name.as_deref() == Some("web")
                    && c.status.as_deref() == Some("RUNNING")
                    && c.runtime_id.is_some()
            })
    });
    assert!(web_running, "the container's start was reported");
    assert!(server.seen(|s| s.reports.iter().any(|r| r.pull_started_at.is_some())));
    let query = server.seen(|s| s.desired_queries[0].clone());
    assert!(
        query.contains("cluster=demo&containerInstance=0123456789abcdef0123456789abcdef"),
        "{query}"
    );

    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
    assert!(
        fake.containers().iter().all(|c| c.running),
        "containers outlive the agent"
    );
    let kept = crate::identity::load(data_dir.path())
        .expect("load")
        .expect("identity kept");
    assert_eq!(kept.container_instance_arn, INSTANCE_ARN);

    let (stop, agent) = start_agent(&server, &fake, data_dir.path());
    server
        .wait("second registration", |s| s.registrations.len() == 2)
        .await;
    assert_eq!(
        server.seen(|s| s.registrations[1]["containerInstanceArn"].clone()),
        INSTANCE_ARN
    );
    server
        .wait("second stream", |s| s.desired_queries.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::Create(_)))
            .count(),
        1,
        "adopted, not copied"
    );
    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
}

#[tokio::test]
async fn an_agent_without_a_container_runtime_says_so() {
    let server = PretendServer::start().await;
    let fake = FakeRuntime::new();
    fake.set_unavailable(Some("connect /var/run/docker.sock: no such file"));
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (_stop, agent) = start_agent(&server, &fake, data_dir.path());
    let err = agent.await.expect("joined").expect_err("no runtime");
    assert!(matches!(err, AgentError::RuntimeUnavailable(_)), "{err}");
    assert!(server.seen(|s| s.registrations.is_empty()));
}

#[tokio::test]
async fn a_shutdown_while_the_server_is_away_ends_the_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let fake = FakeRuntime::new();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = AgentConfig::new(
        &url,
        "demo",
        data_dir.path().to_path_buf(),
        crate::credentials::for_fake_servers(),
    );
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(fake);
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        run(
            config,
            runtime,
            tokio::time::sleep(Duration::from_millis(300)),
        ),
    )
    .await
    .expect("ends at shutdown");
    assert!(result.is_ok());
}

#[tokio::test]
async fn an_agent_that_lost_both_identity_files_comes_back_as_the_instance_its_containers_name() {
    let server = PretendServer::start().await;
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (stop, agent) = start_agent(&server, &fake, data_dir.path());
    server.desired.send_replace(DesiredState {
        revision: 2,
        tasks: vec![assigned_task()],
    });
    server
        .wait("RUNNING", |s| {
            s.reports
                .iter()
                .any(|r| r.status.as_deref() == Some("RUNNING"))
        })
        .await;
    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
    let home = crate::identity::home_id(data_dir.path()).expect("home");
    assert_eq!(
        fake.containers()[0]
            .labels
            .get(crate::spec::LABEL_AGENT_HOME),
        Some(&home),
        "containers carry the agent's home"
    );

    std::fs::write(data_dir.path().join(crate::identity::IDENTITY_FILE), "").expect("truncate");
    std::fs::remove_file(data_dir.path().join(crate::identity::BACKUP_FILE)).expect("delete");
    let (stop, agent) = start_agent(&server, &fake, data_dir.path());
    server
        .wait("second registration", |s| s.registrations.len() == 2)
        .await;
    assert_eq!(
        server.seen(|s| s.registrations[1]["containerInstanceArn"].clone()),
        "0123456789abcdef0123456789abcdef",
        "registered again as the instance the labels name"
    );
    server
        .wait("second stream", |s| s.desired_queries.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::Create(_)))
            .count(),
        1,
        "adopted, not copied"
    );
    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
    let kept = crate::identity::load(data_dir.path())
        .expect("load")
        .expect("identity written again");
    assert_eq!(kept.container_instance_arn, INSTANCE_ARN);
}

#[tokio::test]
async fn an_agent_with_unreadable_identity_files_and_no_containers_refuses_to_register() {
    let server = PretendServer::start().await;
    let fake = FakeRuntime::new();
    let data_dir = tempfile::tempdir().expect("temp dir");
    for file in [crate::identity::IDENTITY_FILE, crate::identity::BACKUP_FILE] {
        std::fs::write(data_dir.path().join(file), "\u{0}\u{0}garbage").expect("corrupt");
    }
    let (_stop, agent) = start_agent(&server, &fake, data_dir.path());
    let err = tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .expect("ends")
        .expect("joined")
        .expect_err("refused");
    assert!(matches!(err, AgentError::IdentityLost(_)), "{err}");
    assert!(err.to_string().starts_with("refusing to start"), "{err}");
    assert!(server.seen(|s| s.registrations.is_empty()));
}

mod failover;
