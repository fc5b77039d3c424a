//! The admission policy end to end: a real server on a temp data dir, real agents (each with
//! the fake runtime, so no Docker is needed) and signed ECS calls with the keys the server
//! wrote to `DATA_DIR/credentials`. For every root-granting field: refused at
//! RegisterTaskDefinition while no cluster allows it, registered once one does, refused by
//! RunTask on a cluster that does not allow it, and — on a cluster that allows it — refused
//! by an agent without the flag (STOPPED, TaskFailedToStart, a reason naming the field and the
//! flag, no container created) and run by an agent with it.

use berth_agent::client::{ClientError, ServerClient};
use berth_agent::runtime::fake::{Call, FakeRuntime};
use berth_agent::AgentConfig;
use berth_core::sigv4::Credentials;
use berth_core::task_definition::admission::Allowances;
use berth_server::{serve, Server, ServerConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::watch;

/// One root-granting field: task members, container members, the ECS field path and the
/// agent flag named in refusals.
struct Case {
    name: &'static str,
    task: Value,
    container: Value,
    field: &'static str,
    flag: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "privileged",
            task: json!({}),
            container: json!({"privileged": true}),
            field: "containerDefinitions[0].privileged",
            flag: "--allow-privileged",
        },
        Case {
            name: "hostnet",
            task: json!({"networkMode": "host"}),
            container: json!({}),
            field: "networkMode",
            flag: "--allow-host-network",
        },
        Case {
            name: "hostpid",
            task: json!({"pidMode": "host"}),
            container: json!({}),
            field: "pidMode",
            flag: "--allow-host-pid",
        },
        Case {
            name: "hostipc",
            task: json!({"ipcMode": "host"}),
            container: json!({}),
            field: "ipcMode",
            flag: "--allow-host-ipc",
        },
        Case {
            name: "bind",
            task: json!({"volumes": [{"name": "etc", "host": {"sourcePath": "/srv/../etc"}}]}),
            container: json!({"mountPoints": [{"sourceVolume": "etc", "containerPath": "/h"}]}),
            field: "volumes[0].host.sourcePath",
            flag: "--allow-bind-mount /etc",
        },
        Case {
            name: "volbind",
            task: json!({"volumes": [{"name": "b", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local",
                "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]}),
            container: json!({"mountPoints": [{"sourceVolume": "b", "containerPath": "/b"}]}),
            field: "volumes[0].dockerVolumeConfiguration.driverOpts",
            flag: "--allow-docker-volume-binds",
        },
        Case {
            name: "devices",
            task: json!({}),
            container: json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            field: "containerDefinitions[0].linuxParameters.devices[0]",
            flag: "--allow-devices",
        },
        Case {
            name: "caps",
            task: json!({}),
            container: json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}),
            field: "containerDefinitions[0].linuxParameters.capabilities.add[0]",
            flag: "--allow-capability NET_ADMIN",
        },
        Case {
            name: "unconfined",
            task: json!({}),
            container: json!({"dockerSecurityOptions": ["seccomp=unconfined"]}),
            field: "containerDefinitions[0].dockerSecurityOptions[0]",
            flag: "--allow-unconfined",
        },
    ]
}

/// What the cluster `open` and the agent `all` allow: every case above.
fn allow_all() -> Allowances {
    Allowances {
        privileged: true,
        host_network: true,
        host_pid: true,
        host_ipc: true,
        bind_mount_prefixes: vec!["/etc".into()],
        docker_volume_binds: true,
        devices: true,
        capabilities: vec!["NET_ADMIN".into()],
        unconfined: true,
        forbid_root_user: false,
    }
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

/// An agent of cluster `open` on its own fake runtime, known by its `agent` attribute.
struct Agent {
    fake: FakeRuntime,
    instance: String,
    _dir: TempDir,
}

struct World {
    server: Server,
    ecs: ServerClient,
    credentials: Credentials,
    stop: watch::Sender<bool>,
    agents: Vec<tokio::task::JoinHandle<()>>,
    _data: TempDir,
}

impl World {
    async fn start() -> World {
        let data = tempfile::tempdir().expect("temp dir");
        let server = serve(ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: Some(data.path().to_path_buf()),
            ..ServerConfig::default()
        })
        .await
        .expect("server starts");
        let file = server.app().credentials_file().expect("credentials file");
        let text = std::fs::read_to_string(file).expect("the server wrote its credentials");
        let credentials = Credentials::from_profile(&text, "berth").expect("profile berth");
        let ecs = ServerClient::new(
            &format!("http://{}", server.addr()),
            "us-east-1",
            credentials.clone(),
        )
        .expect("client");
        let (stop, _) = watch::channel(false);
        World {
            server,
            ecs,
            credentials,
            stop,
            agents: Vec::new(),
            _data: data,
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, ClientError> {
        self.ecs.call::<Value, Value>(op, &body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(answer) => answer,
            Err(err) => panic!("{op} failed: {err}"),
        }
    }

    /// Calls `op`, which must be refused with a ClientException; returns its message.
    async fn refused(&self, op: &str, body: Value) -> String {
        match self.call(op, body).await {
            Err(ClientError::Api { kind, message, .. }) if kind == "ClientException" => message,
            other => panic!("{op} was not refused: {other:?}"),
        }
    }

    /// Starts an agent on cluster `cluster` with `allowances`; waits until it registered.
    async fn agent(&mut self, cluster: &str, name: &str, allowances: Allowances) -> Agent {
        let dir = tempfile::tempdir().expect("agent dir");
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let mut config = AgentConfig::new(
            &format!("http://{}", self.server.addr()),
            cluster,
            dir.path().to_path_buf(),
            self.credentials.clone(),
        );
        config.attributes = vec![("agent".into(), Some(name.into()))];
        config.allowances = allowances;
        let mut stop = self.stop.subscribe();
        let runtime = Arc::new(fake.clone());
        self.agents.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            berth_agent::run(config, runtime, shutdown)
                .await
                .expect("agent runs");
        }));
        let filter = format!("attribute:agent == {name}");
        for _ in 0..500 {
            let listed = self
                .ok(
                    "ListContainerInstances",
                    json!({"cluster": cluster, "filter": filter}),
                )
                .await;
            if let Some(arn) = listed["containerInstanceArns"][0].as_str() {
                return Agent {
                    fake,
                    instance: arn.to_string(),
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("agent {name} never registered");
    }

    /// StartTask of `family` on `agent`; the task's ARN.
    async fn start_on(&self, agent: &Agent, family: &str) -> String {
        let started = self
            .ok(
                "StartTask",
                json!({"cluster": "open", "taskDefinition": family,
                       "containerInstances": [agent.instance]}),
            )
            .await;
        started["tasks"][0]["taskArn"]
            .as_str()
            .unwrap_or_else(|| panic!("no task started: {started}"))
            .to_string()
    }

    /// Waits (at most 20 s) until task `arn` reaches `status`; the task.
    async fn until(&self, arn: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..1000 {
            let described = self
                .ok("DescribeTasks", json!({"cluster": "open", "tasks": [arn]}))
                .await;
            last = described["tasks"][0].clone();
            if last["lastStatus"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task never reached {status}: {last}");
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        for agent in self.agents {
            agent.await.expect("agent task");
        }
        self.server.shutdown().await.expect("server stops");
    }
}

/// Whether `fake` was asked to create a container of task `arn`.
fn created_for(fake: &FakeRuntime, arn: &str) -> bool {
    let id = arn.rsplit('/').next().expect("task id");
    let short = &id[..12];
    fake.calls()
        .iter()
        .any(|c| matches!(c, Call::Create(name) if name.contains(short)))
        || fake
            .containers()
            .iter()
            .any(|c| c.labels.values().any(|v| v == arn))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_and_each_agent_admit_only_what_they_allow() {
    let mut world = World::start().await;
    world
        .ok("CreateCluster", json!({"clusterName": "closed"}))
        .await;
    let mut open = json!({"clusterName": "open"});
    let tags: Vec<Value> = allow_all()
        .to_cluster_tags()
        .iter()
        .map(|t| json!({"key": t.key, "value": t.value}))
        .collect();

    // Before any cluster allows them, none of the definitions registers.
    for case in cases() {
        let family = format!("risky-{}", case.name);
        let message = world
            .refused(
                "RegisterTaskDefinition",
                definition(&family, &case.task, &case.container),
            )
            .await;
        assert!(
            message.contains("No ACTIVE cluster allows")
                && message.contains(&format!("{} is refused", case.field))
                && message.contains(case.flag),
            "{}: {message}",
            case.name
        );
    }

    open["tags"] = json!(tags);
    world.ok("CreateCluster", open).await;
    let bare = world.agent("open", "bare", Allowances::default()).await;
    let all = world.agent("open", "all", allow_all()).await;

    for case in cases() {
        let family = format!("risky-{}", case.name);
        world
            .ok(
                "RegisterTaskDefinition",
                definition(&family, &case.task, &case.container),
            )
            .await;

        let message = world
            .refused(
                "RunTask",
                json!({"cluster": "closed", "taskDefinition": family}),
            )
            .await;
        assert!(
            message.contains(&format!("{} is refused", case.field)),
            "{}: {message}",
            case.name
        );

        // On a cluster that allows it, the agent without the flag refuses it.
        let refused = world.start_on(&bare, &family).await;
        let task = world.until(&refused, "STOPPED").await;
        assert_eq!(task["stopCode"], "TaskFailedToStart", "{task}");
        let reason = task["stoppedReason"].as_str().expect("reason");
        assert!(
            reason.contains(&format!("{} is refused by this agent", case.field))
                && reason.contains(&format!("Start the agent with {} to allow it.", case.flag)),
            "{}: {reason}",
            case.name
        );
        assert!(task["startedAt"].is_null(), "{task}");
        assert!(!created_for(&bare.fake, &refused), "{}", case.name);

        // The agent with it runs it.
        let ran = world.start_on(&all, &family).await;
        let task = world.until(&ran, "RUNNING").await;
        assert!(task["stoppedReason"].is_null(), "{task}");
        assert!(created_for(&all.fake, &ran), "{}", case.name);
    }
    assert!(
        !bare
            .fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Create(_))),
        "the bare agent never created a container"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_forbids_root_refuses_root_users_that_others_run() {
    let mut world = World::start().await;
    world
        .ok("CreateCluster", json!({"clusterName": "open"}))
        .await;
    let strict = world
        .agent(
            "open",
            "strict",
            Allowances {
                forbid_root_user: true,
                ..Allowances::default()
            },
        )
        .await;
    let bare = world.agent("open", "bare", Allowances::default()).await;
    world
        .ok(
            "RegisterTaskDefinition",
            definition("as-root", &json!({}), &json!({"user": "0:0"})),
        )
        .await;
    let refused = world.start_on(&strict, "as-root").await;
    let task = world.until(&refused, "STOPPED").await;
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task}");
    let reason = task["stoppedReason"].as_str().expect("reason");
    assert!(
        reason.contains("containerDefinitions[0].user is refused by this agent")
            && reason.contains("without --forbid-root-user"),
        "{reason}"
    );
    assert!(!created_for(&strict.fake, &refused));
    let ran = world.start_on(&bare, "as-root").await;
    world.until(&ran, "RUNNING").await;
    assert!(created_for(&bare.fake, &ran));
    world.stop().await;
}
