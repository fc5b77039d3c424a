//! An agent given several server URLs (`berth agent --server URL1,URL2`) against real servers
//! on the fake runtime: it registers through the first that answers; and, with feature
//! `etcd`, an agent following one of two replicas over one etcd store moves to the other
//! when its replica shuts down — the same container instance (no second registration), its
//! task left running, heartbeats and the desired-state stream on the other replica.

use berth_agent::client::ServerClient;
use berth_agent::runtime::fake::FakeRuntime;
use berth_agent::runtime::ContainerRuntime;
use berth_agent::AgentConfig;
use berth_core::sigv4::Credentials;
use berth_server::{serve, Server, ServerConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// `ServerConfig` for a test server on a free loopback port keeping its keys in `data_dir`.
fn server_config(data_dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: Some(data_dir.to_path_buf()),
        // Nothing here is about an instance going silent.
        agent_grace: Duration::from_secs(600),
        ..ServerConfig::default()
    }
}

/// The admin keys `server` wrote to its data dir.
fn admin_keys(server: &Server) -> Credentials {
    let file = server.app().credentials_file().expect("credentials file");
    let text = std::fs::read_to_string(file).expect("the server wrote its credentials");
    Credentials::from_profile(&text, "berth").expect("profile berth")
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

/// An agent of cluster `cluster` on `fake`, given the servers `urls`; stops when the sender
/// is used or dropped.
struct Agent {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), berth_agent::AgentError>>,
    dir: tempfile::TempDir,
}

fn start_agent(
    urls: &[&str],
    cluster: &str,
    credentials: Credentials,
    fake: &FakeRuntime,
) -> Agent {
    let dir = tempfile::tempdir().expect("agent dir");
    let mut config = AgentConfig::new(urls[0], cluster, dir.path().to_path_buf(), credentials);
    config.servers = urls.iter().map(|u| u.to_string()).collect();
    config.heartbeat_interval = Duration::from_millis(100);
    config.metrics_listen = None;
    config.metadata_endpoint = false;
    config.usage_reports = false;
    let (stop, stopped) = oneshot::channel::<()>();
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(fake.clone());
    let task = tokio::spawn(berth_agent::run(config, runtime, async move {
        let _ = stopped.await;
    }));
    Agent { stop, task, dir }
}

impl Agent {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("agent task")
            .expect("the agent ran without error");
    }

    /// The container instance ARN kept in the agent's data dir.
    fn kept_arn(&self) -> Option<String> {
        berth_agent::identity::load(self.dir.path())
            .expect("identity readable")
            .map(|i| i.container_instance_arn)
    }
}

async fn ok(client: &ServerClient, op: &str, body: Value) -> Value {
    match client.call::<Value, Value>(op, &body).await {
        Ok(answer) => answer,
        Err(err) => panic!("{op} on {} failed: {err}", client.base_url()),
    }
}

/// The container instances of `cluster` once there is one (at most 20 s).
async fn instances_once_registered(client: &ServerClient, cluster: &str) -> Vec<String> {
    for _ in 0..1000 {
        let listed = ok(
            client,
            "ListContainerInstances",
            json!({"cluster": cluster}),
        )
        .await;
        let arns: Vec<String> = listed["containerInstanceArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        if !arns.is_empty() {
            return arns;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no instance registered in {cluster}");
}

#[tokio::test]
async fn an_agent_given_a_dead_url_first_registers_through_the_live_server() {
    let data = tempfile::tempdir().expect("data dir");
    let server = serve(server_config(data.path()))
        .await
        .expect("server starts");
    let keys = admin_keys(&server);
    let client = ServerClient::new(&server.endpoint(), "us-east-1", keys.clone()).expect("client");
    ok(&client, "CreateCluster", json!({"clusterName": "default"})).await;
    let dead = dead_url().await;
    let fake = FakeRuntime::new();

    let agent = start_agent(&[&dead, &server.endpoint()], "default", keys, &fake);
    let arns = instances_once_registered(&client, "default").await;
    assert_eq!(arns.len(), 1);
    for _ in 0..500 {
        if server.app().agents.last_seen(&arns[0]).is_some() && agent.kept_arn().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.app().agents.last_seen(&arns[0]).is_some(),
        "the live server hears the agent"
    );
    assert_eq!(agent.kept_arn().as_ref(), Some(&arns[0]));

    agent.stop().await;
    server.shutdown().await.expect("server stops");
}

#[cfg(feature = "etcd")]
mod over_etcd {
    use super::*;
    use berth_agent::runtime::fake::Call;
    use berth_store::etcd::local::LocalEtcd;
    use berth_store::location::EtcdConfig;
    use std::time::Instant;

    /// A replica of the server over `etcd`, keeping its keys in `data_dir`.
    async fn replica(etcd: &LocalEtcd, data_dir: &std::path::Path) -> Server {
        let mut config = server_config(data_dir);
        config.etcd = Some(EtcdConfig::from_url(&etcd.url("replicas")).expect("etcd URL"));
        serve(config).await.expect("replica starts")
    }

    /// Copies directory `from` into `to` (subdirectories too) but for the SQLite databases
    /// a running server may be writing (its logs): a second replica must hold the first
    /// one's keys (master.key, vault.key, metrics.token, credentials).
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if [".db", "-wal", "-shm", "-journal"]
                .iter()
                .any(|end| name.ends_with(end))
            {
                continue;
            }
            let target = to.join(&name);
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }

    /// Task `arn` of cluster demo as `client`'s server describes it, once its lastStatus is
    /// `status` (at most 20 s).
    async fn task_once(client: &ServerClient, arn: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..1000 {
            let described = ok(
                client,
                "DescribeTasks",
                json!({"cluster": "demo", "tasks": [arn]}),
            )
            .await;
            last = described["tasks"][0].clone();
            if last["lastStatus"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task never reached {status}: {last}");
    }

    async fn start_task(client: &ServerClient, instance: &str) -> String {
        let started = ok(
            client,
            "StartTask",
            json!({"cluster": "demo", "taskDefinition": "web", "containerInstances": [instance]}),
        )
        .await;
        started["tasks"][0]["taskArn"]
            .as_str()
            .unwrap_or_else(|| panic!("no task started: {started}"))
            .to_string()
    }

    /// Waits (at most 20 s) until `server` has heard from the agent of `instance` after `t`.
    async fn heard_after(server: &Server, instance: &str, t: Instant) -> Instant {
        for _ in 0..1000 {
            if let Some(seen) = server.app().agents.last_seen(instance) {
                if seen > t {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} never heard from the agent", server.endpoint());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_moves_to_the_other_replica_when_its_own_shuts_down_as_the_same_instance_with_its_task_running(
    ) {
        let etcd = LocalEtcd::start(1).expect("a local etcd (Debian etcd-server)");
        let dir_a = tempfile::tempdir().expect("data dir a");
        let a = replica(&etcd, dir_a.path()).await;
        let dir_b = tempfile::tempdir().expect("data dir b");
        copy_dir(dir_a.path(), dir_b.path());
        let b = replica(&etcd, dir_b.path()).await;
        let keys = admin_keys(&a);
        assert_eq!(admin_keys(&b), keys, "the replicas share their keys");
        let on_a = ServerClient::new(&a.endpoint(), "us-east-1", keys.clone()).expect("client");
        let on_b = ServerClient::new(&b.endpoint(), "us-east-1", keys.clone()).expect("client");

        ok(&on_b, "CreateCluster", json!({"clusterName": "demo"})).await;
        ok(
            &on_b,
            "RegisterTaskDefinition",
            json!({"family": "web",
                   "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]}),
        )
        .await;
        // The agent registers through a: wait until a's cache holds the cluster.
        for _ in 0..500 {
            let described = ok(&on_a, "DescribeClusters", json!({"clusters": ["demo"]})).await;
            if described["clusters"][0]["status"] == "ACTIVE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let agent = start_agent(&[&a.endpoint(), &b.endpoint()], "demo", keys, &fake);
        let instance = instances_once_registered(&on_b, "demo").await;
        assert_eq!(instance.len(), 1);
        let instance = instance[0].clone();
        heard_after(&a, &instance, Instant::now()).await;
        let first = start_task(&on_b, &instance).await;
        task_once(&on_b, &first, "RUNNING").await;

        a.shutdown().await.expect("replica a stops");
        let gone = Instant::now();
        let mut heard = heard_after(&b, &instance, gone).await;
        // Not once (the stream opening, or word from a passed on by b), but again and again:
        // heartbeats.
        for _ in 0..3 {
            heard = heard_after(&b, &instance, heard + Duration::from_millis(300)).await;
        }

        // The stream from b delivers new work.
        let second = start_task(&on_b, &instance).await;
        task_once(&on_b, &second, "RUNNING").await;

        let listed = ok(&on_b, "ListContainerInstances", json!({"cluster": "demo"})).await;
        assert_eq!(
            listed["containerInstanceArns"],
            json!([instance]),
            "one instance: the agent did not register again"
        );
        assert_eq!(agent.kept_arn().as_ref(), Some(&instance));
        task_once(&on_b, &first, "RUNNING").await;
        let creates = fake
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Create(_)))
            .count();
        assert_eq!(
            creates, 2,
            "one container per task: the first was not restarted"
        );
        let of_first: Vec<_> = fake
            .containers()
            .into_iter()
            .filter(|c| c.labels.values().any(|v| *v == first))
            .collect();
        assert_eq!(of_first.len(), 1);
        assert!(of_first[0].running, "the first task's container still runs");

        agent.stop().await;
        b.shutdown().await.expect("replica b stops");
        drop(etcd);
    }
}
