//! Engine tests on the fake runtime: a harness that plays the server (it applies every report
//! with `berth_core::task_state` and can send desired states back), then one file per subject.

mod admission;
mod adoption;
mod dependencies;
mod failures;
mod faults;
mod lifecycle;
mod restarts;
mod siblings;
mod stopping;
mod volumes;

use super::{Engine, EngineConfig};
use crate::runtime::fake::{Call, FakeRuntime};
use crate::runtime::ContainerRuntime;
use berth_core::gateway::{AssignedTask, DesiredState, SubmitTaskStateChange};
use berth_core::model::task::{Container, Task, TaskOverride};
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::{HealthStatus, TaskStatus};
use berth_core::task_state::{self, NewTask};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const CLUSTER: &str = "demo";
const INSTANCE: &str = "0123456789abcdef0123456789abcdef";

/// A task definition of family `web` revision 1 with these container definitions (JSON).
fn task_definition(containers: Value) -> TaskDefinition {
    serde_json::from_value(json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "family": "web",
        "revision": 1,
        "containerDefinitions": containers,
    }))
    .expect("task definition")
}

/// A new task (PROVISIONING, desired RUNNING) of `td` with task id `id`.
fn new_task(td: &TaskDefinition, id: &str) -> AssignedTask {
    let count = td.container_definitions.as_ref().map_or(0, Vec::len);
    let task = task_state::new_task(NewTask {
        task_arn: task_arn(id),
        cluster_arn: format!("arn:aws:ecs:us-east-1:000000000000:cluster/{CLUSTER}"),
        container_instance_arn: format!(
            "arn:aws:ecs:us-east-1:000000000000:container-instance/{CLUSTER}/{INSTANCE}"
        ),
        task_definition: td,
        container_arns: (0..count).map(|i| format!("container-{id}-{i}")).collect(),
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
        task_definition: td.clone().into(),
    }
}

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task/{CLUSTER}/{id}")
}

/// A report as the harness received it, with when.
#[derive(Debug, Clone)]
struct Received {
    at: Duration,
    report: SubmitTaskStateChange,
}

/// The engine on a fake runtime, with a pretend server.
struct Harness {
    fake: FakeRuntime,
    engine: Engine,
    reports: mpsc::UnboundedReceiver<SubmitTaskStateChange>,
    /// Every report received, in order.
    received: Vec<Received>,
    /// The tasks as the server sees them after applying the reports.
    tasks: HashMap<String, AssignedTask>,
    revision: u64,
    began: Instant,
}

fn config() -> EngineConfig {
    let mut config = EngineConfig::new(CLUSTER, INSTANCE);
    config.cleanup_delay = Duration::from_secs(600);
    config
}

impl Harness {
    /// A harness whose fake has `busybox` locally.
    async fn new() -> Harness {
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        Harness::on(fake, config()).await
    }

    async fn on(fake: FakeRuntime, config: EngineConfig) -> Harness {
        let (sender, reports) = mpsc::unbounded_channel();
        let runtime: Arc<dyn ContainerRuntime> = Arc::new(fake.clone());
        let engine = Engine::start(runtime, config, sender)
            .await
            .expect("engine starts");
        Harness {
            fake,
            engine,
            reports,
            received: Vec::new(),
            tasks: HashMap::new(),
            revision: 0,
            began: Instant::now(),
        }
    }

    /// A second engine on the same fake, as after an agent restart; the server's tasks carry
    /// over.
    async fn restart(self) -> Harness {
        let Harness {
            fake,
            engine,
            tasks,
            ..
        } = self;
        drop(engine);
        let mut next = Harness::on(fake, config()).await;
        next.tasks = tasks;
        next
    }

    /// Assigns `tasks` (the server's view of them when it has one) and sends the desired state.
    fn assign(&mut self, tasks: &[AssignedTask]) {
        for task in tasks {
            let arn = task.task.task_arn.clone().expect("arn");
            self.tasks.entry(arn).or_insert_with(|| task.clone());
        }
        let current: Vec<AssignedTask> = tasks
            .iter()
            .map(|t| self.tasks[t.task.task_arn.as_deref().expect("arn")].clone())
            .collect();
        self.send_desired(current);
    }

    fn send_desired(&mut self, tasks: Vec<AssignedTask>) {
        self.revision += 1;
        self.engine.apply(&DesiredState {
            revision: self.revision,
            tasks,
        });
    }

    /// The server's view of task `id`.
    fn task(&self, id: &str) -> &Task {
        &self.tasks[&task_arn(id)].task
    }

    fn container(&self, id: &str, name: &str) -> Container {
        self.task(id)
            .containers
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
            .cloned()
            .expect("container")
    }

    /// StopTask: the server asks for the stop and sends the new desired state of `ids`.
    fn stop_task(&mut self, id: &str, all: &[&str]) {
        let arn = task_arn(id);
        let assigned = self.tasks.get_mut(&arn).expect("task");
        task_state::request_stop(
            Arc::make_mut(&mut assigned.task),
            task_state::stop_code::USER_INITIATED,
            None,
            2.0,
        );
        let tasks = all
            .iter()
            .map(|id| self.tasks[&task_arn(id)].clone())
            .collect();
        self.send_desired(tasks);
    }

    /// Receives the next report and applies it like the server; `None` when none comes
    /// within an hour (of paused time).
    async fn next(&mut self) -> Option<SubmitTaskStateChange> {
        let report = tokio::time::timeout(Duration::from_secs(3600), self.reports.recv())
            .await
            .ok()
            .flatten()?;
        let arn = report.task.clone().expect("task in report");
        assert_eq!(report.cluster.as_deref(), Some(CLUSTER));
        let assigned = self.tasks.get_mut(&arn).expect("report of a known task");
        let definitions = assigned
            .task_definition
            .container_definitions
            .clone()
            .unwrap_or_default();
        task_state::apply_report(
            Arc::make_mut(&mut assigned.task),
            &report,
            &definitions,
            3.0,
        )
        .expect("report applies");
        self.received.push(Received {
            at: self.began.elapsed(),
            report: report.clone(),
        });
        Some(report)
    }

    /// Receives reports until task `id` reaches `status`; panics when it never does.
    async fn until(&mut self, id: &str, status: TaskStatus) -> Duration {
        loop {
            if self.task(id).last_status == Some(status) {
                return self.began.elapsed();
            }
            if self.next().await.is_none() {
                panic!(
                    "task {id} never reached {status}; it is {:?}; reports: {:#?}",
                    self.task(id).last_status,
                    self.received
                );
            }
        }
    }

    /// Receives reports until none comes for an hour of paused time.
    async fn drain(&mut self) {
        while self.next().await.is_some() {}
    }

    /// The task statuses reported for task `id`, without repeats.
    fn statuses(&self, id: &str) -> Vec<String> {
        let arn = task_arn(id);
        let mut out: Vec<String> = Vec::new();
        for r in self
            .received
            .iter()
            .filter(|r| r.report.task.as_deref() == Some(arn.as_str()))
        {
            if let Some(status) = &r.report.status {
                if out.last() != Some(status) {
                    out.push(status.clone());
                }
            }
        }
        out
    }

    /// The runtime id of the container `name` of task `id`, as reported.
    fn runtime_id(&self, id: &str, name: &str) -> String {
        self.container(id, name)
            .runtime_id
            .expect("runtime id reported")
    }

    fn count(&self, wanted: impl Fn(&Call) -> bool) -> usize {
        self.fake.calls().iter().filter(|c| wanted(c)).count()
    }

    /// Position of the first call matching `wanted`.
    fn position(&self, wanted: impl Fn(&Call) -> bool) -> usize {
        self.fake
            .calls()
            .iter()
            .position(wanted)
            .expect("call made")
    }
}

/// A running container of `image`.
fn container(name: &str, extra: Value) -> Value {
    let mut base = json!({"name": name, "image": "busybox", "memory": 64});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    base
}

const STOPPED_PATH: [&str; 4] = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"];

fn path(head: &[&str]) -> Vec<String> {
    head.iter()
        .chain(STOPPED_PATH.iter())
        .map(|s| s.to_string())
        .collect()
}
