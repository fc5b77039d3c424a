//! One container of a task as its runner sees it: how far it got, what the runtime last said
//! of it, and what the server has been told.

use super::deps::View;
use super::report::{binding, container_change, health_status};
use crate::runtime::{ContainerSpec, ContainerState, Health, PortBinding};
use crate::spec::{self, Prerequisite};
use berth_core::model::task::ContainerStateChange;
use berth_core::model::task_definition::{
    ContainerDefinition, ContainerDependency, TaskDefinition,
};
use berth_core::model::{HealthStatus, TaskStatus};
use std::time::{Duration, SystemTime};

/// How far a container got on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    NotCreated,
    Created,
    Running,
    /// Exited, or given up without ever running.
    Done,
}

/// One container of the task.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub name: String,
    pub def: ContainerDefinition,
    /// What it needs of the task's other containers besides `dependsOn` (links,
    /// volumesFrom, shared namespaces).
    pub prerequisites: Vec<Prerequisite>,
    pub spec: Option<ContainerSpec>,
    pub id: Option<String>,
    pub phase: Phase,
    /// It has been started at least once.
    pub started: bool,
    pub exit_code: Option<i64>,
    pub health: Health,
    pub ports: Vec<PortBinding>,
    pub image_id: Option<String>,
    pub reason: Option<String>,
    /// The container status the server has been told.
    pub reported: TaskStatus,
    /// The health the server has been told.
    pub reported_health: Option<HealthStatus>,
    /// The agent asked the runtime to stop it (so its exit is no surprise).
    pub stop_sent: bool,
    /// When the runtime last said it was running.
    pub seen_running_at: Option<tokio::time::Instant>,
    /// When it last started and when it exited, as the runtime says.
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// How often its restart policy restarted it.
    pub restarts: u32,
    /// The reason of a restart the server has not been told of.
    pub restart_note: Option<String>,
    /// Its last exit is not restarted (its restart policy said no, or the restart failed).
    pub restart_refused: bool,
    /// Credentials for its image's registry (`repositoryCredentials`), in memory only.
    pub registry_auth: Option<crate::registry::RegistryAuth>,
}

impl Slot {
    /// The slot of `def`, a container definition of `td`.
    pub fn new(td: &TaskDefinition, def: &ContainerDefinition) -> Slot {
        Slot {
            name: def.name.clone().unwrap_or_default(),
            def: def.clone(),
            prerequisites: spec::prerequisites(td, def),
            spec: None,
            id: None,
            phase: Phase::NotCreated,
            started: false,
            exit_code: None,
            health: Health::Unknown,
            ports: Vec::new(),
            image_id: None,
            reason: None,
            reported: TaskStatus::Pending,
            reported_health: None,
            stop_sent: false,
            seen_running_at: None,
            started_at: None,
            finished_at: None,
            restarts: 0,
            restart_note: None,
            restart_refused: false,
            registry_auth: None,
        }
    }

    pub fn essential(&self) -> bool {
        self.def.essential.unwrap_or(true)
    }

    /// What must be met before it starts: its `dependsOn`, plus START of every container it
    /// links to or whose namespaces it joins.
    pub fn start_dependencies(&self) -> Vec<ContainerDependency> {
        let mut out = self.def.depends_on.clone().unwrap_or_default();
        for prerequisite in self.prerequisites.iter().filter(|p| p.running) {
            out.push(ContainerDependency {
                container_name: prerequisite.container.clone(),
                condition: "START".to_string(),
            });
        }
        out
    }

    /// The containers it waits for before starting (and that stop after it).
    pub fn depends_on(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for dependency in self.start_dependencies() {
            if !names.contains(&dependency.container_name) {
                names.push(dependency.container_name);
            }
        }
        names
    }

    /// The containers that must exist before it is created.
    pub fn create_after(&self) -> Vec<String> {
        self.prerequisites
            .iter()
            .map(|p| p.container.clone())
            .collect()
    }

    pub fn stop_timeout(&self, default: Duration) -> Duration {
        self.def
            .stop_timeout
            .and_then(|s| u64::try_from(s).ok())
            .map_or(default, Duration::from_secs)
    }

    pub fn has_health_check(&self) -> bool {
        self.def.health_check.is_some()
    }

    pub fn view(&self) -> View {
        View {
            name: self.name.clone(),
            started: self.started,
            exited: self.phase == Phase::Done,
            exit_code: self.exit_code,
            health: self.health,
            has_health_check: self.has_health_check(),
        }
    }

    /// Takes in what the runtime says of the container. An exited container stays exited.
    pub fn observe(&mut self, state: &ContainerState) {
        if self.phase == Phase::Done {
            return;
        }
        self.id = Some(state.id.clone());
        if state.started_at.is_some() {
            self.started_at = state.started_at;
        }
        self.finished_at = state.finished_at;
        if state.image_id.is_some() {
            self.image_id = state.image_id.clone();
        }
        self.health = state.health;
        if state.running {
            self.phase = Phase::Running;
            self.started = true;
            self.ports = state.ports.clone();
        } else if state.started {
            self.phase = Phase::Done;
            self.started = true;
            self.exit_code = state.exit_code;
            if state.oom_killed {
                self.reason = Some("OutOfMemoryError: Container killed due to memory usage".into());
            } else if let Some(error) = state.error.as_ref().filter(|e| !e.is_empty()) {
                self.reason.get_or_insert_with(|| error.clone());
            }
        } else {
            self.phase = Phase::Created;
        }
    }

    /// Marks a container the runtime no longer has.
    pub fn vanished(&mut self) {
        if self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.reason.get_or_insert_with(|| {
                "CannotInspectContainerError: the container is no longer on the host".into()
            });
        }
    }

    /// What the server has not been told yet, as container changes; marks it told.
    pub fn take_changes(&mut self, out: &mut Vec<ContainerStateChange>) {
        let digest = self.image_id.clone();
        let health = (self.has_health_check() && self.phase == Phase::Running)
            .then(|| health_status(self.health))
            .filter(|h| self.reported_health != Some(*h));
        if self.started && self.reported < TaskStatus::Running {
            let mut change = container_change(&self.name, TaskStatus::Running, self.id.clone());
            change.network_bindings = Some(self.ports.iter().map(binding).collect());
            change.image_digest = digest.clone();
            change.health_status = health.map(|h| h.as_str().to_string());
            out.push(change);
            self.reported = TaskStatus::Running;
            if health.is_some() {
                self.reported_health = health;
            }
        } else if let Some(health) = health {
            let mut change = container_change(&self.name, self.reported, self.id.clone());
            change.health_status = Some(health.as_str().to_string());
            out.push(change);
            self.reported_health = Some(health);
        }
        if self.phase == Phase::Running && self.reported == TaskStatus::Running {
            if let Some(note) = self.restart_note.take() {
                let mut change = container_change(&self.name, TaskStatus::Running, self.id.clone());
                change.network_bindings = Some(self.ports.iter().map(binding).collect());
                change.exit_code = self.exit_code.and_then(|c| i32::try_from(c).ok());
                change.reason = Some(note);
                out.push(change);
            }
        }
        if self.phase == Phase::Done && self.reported < TaskStatus::Stopped {
            let mut change = container_change(&self.name, TaskStatus::Stopped, self.id.clone());
            change.exit_code = self.exit_code.and_then(|c| i32::try_from(c).ok());
            change.reason = self.reason.clone();
            if !self.started {
                change.image_digest = None;
            }
            out.push(change);
            self.reported = TaskStatus::Stopped;
        }
    }
}
