//! What the service controller observes, reduced to the facts its decisions need: each task
//! of the service (its deployment, phase and health) and each container instance (usable,
//! draining or lost).

use super::events::{REASON_FAILED_ELB_HEALTH_CHECKS, REASON_FAILED_HEALTH_CHECKS};
use crate::arn::id_of;
use crate::model::container_instance::ContainerInstance;
use crate::model::status::{ContainerInstanceStatus, HealthStatus};
use crate::model::task::Task;
use crate::task_state::{stop_code, TaskStatus};

/// One task of a service as the controller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFact {
    /// The task id (last part of its ARN).
    pub id: String,
    /// The deployment that started it (`startedBy`).
    pub deployment_id: Option<String>,
    pub status: TaskStatus,
    /// Whether it has been asked to stop (desiredStatus STOPPED).
    pub stop_requested: bool,
    /// Whether its essential containers have health checks.
    pub has_health_checks: bool,
    /// The task's healthStatus.
    pub health: HealthStatus,
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// The id of the container instance it was placed on.
    pub instance_id: Option<String>,
    pub created_at: Option<f64>,
    /// Until when it is protected from scale-in (UpdateTaskProtection), if it was protected.
    pub protection_expires_at: Option<f64>,
    /// Where its load balancer targets stand (`Targets::None` for a service without load
    /// balancers).
    pub targets: Targets,
}

/// Where the load balancer targets of a task stand, all of its target groups together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Targets {
    /// The task is behind no load balancer.
    #[default]
    None,
    /// Not yet registered everywhere, or still `initial`.
    Pending,
    /// Registered and healthy in every target group.
    Healthy,
    /// Failing the health checks of a target group.
    Unhealthy(UnhealthyTarget),
}

/// A target of a task that failed its target group's health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnhealthyTarget {
    pub target_group_arn: String,
    /// The target's id (the instance id of a bridge or host task).
    pub id: String,
    pub port: u16,
    /// What the health checks found (`Health checks failed with these codes: [404]`).
    pub reason: String,
}

impl TaskFact {
    /// The facts of `task`; `has_health_checks` comes from its task definition.
    pub fn of(task: &Task, has_health_checks: bool) -> TaskFact {
        TaskFact {
            id: task
                .task_arn
                .as_deref()
                .and_then(|a| id_of(a, "task"))
                .unwrap_or_default(),
            deployment_id: task.started_by.clone(),
            status: TaskStatus::of(task),
            stop_requested: task.desired_status == Some(TaskStatus::Stopped),
            has_health_checks,
            health: task.health_status.unwrap_or(HealthStatus::Unknown),
            started_at: task.started_at,
            stopped_at: task.stopped_at,
            stop_code: task.stop_code.clone(),
            stopped_reason: task.stopped_reason.clone(),
            instance_id: task
                .container_instance_arn
                .as_deref()
                .and_then(|a| id_of(a, "container-instance")),
            created_at: task.created_at,
            protection_expires_at: task.protection_expires_at,
            targets: Targets::None,
        }
    }

    /// Whether its scale-in protection holds at `now`.
    pub fn is_protected(&self, now: f64) -> bool {
        crate::task_protection::holds(self.protection_expires_at, now)
    }

    /// Not yet STOPPED: it holds a place on its instance.
    pub fn is_live(&self) -> bool {
        self.status != TaskStatus::Stopped
    }

    /// Live and not asked to stop.
    pub fn is_wanted(&self) -> bool {
        self.is_live() && !self.stop_requested
    }

    /// RUNNING, not asked to stop, HEALTHY when it has health checks, and with healthy
    /// targets when it is behind load balancers.
    pub fn is_healthy(&self) -> bool {
        self.is_wanted()
            && self.status == TaskStatus::Running
            && (!self.has_health_checks || self.health == HealthStatus::Healthy)
            && matches!(self.targets, Targets::None | Targets::Healthy)
    }

    /// RUNNING and reported UNHEALTHY, or failing a load balancer's health checks.
    pub fn is_unhealthy(&self) -> bool {
        self.is_wanted()
            && self.status == TaskStatus::Running
            && (self.health == HealthStatus::Unhealthy
                || matches!(self.targets, Targets::Unhealthy(_)))
    }

    /// STOPPED because it failed: it never started, an essential container exited, or the
    /// scheduler stopped it for failing its health checks. Tasks that started and then exited
    /// count too (aws/containers-roadmap#1206).
    pub fn has_failed(&self) -> bool {
        if self.status != TaskStatus::Stopped {
            return false;
        }
        match self.stop_code.as_deref() {
            Some(stop_code::TASK_FAILED_TO_START) | Some(stop_code::ESSENTIAL_CONTAINER_EXITED) => {
                true
            }
            Some(stop_code::SERVICE_SCHEDULER_INITIATED) => {
                self.stopped_reason.as_deref().is_some_and(|reason| {
                    reason == REASON_FAILED_HEALTH_CHECKS
                        || reason.starts_with(REASON_FAILED_ELB_HEALTH_CHECKS)
                })
            }
            _ => false,
        }
    }

    /// How long it ran before stopping (None when it never reached RUNNING).
    pub fn ran_for(&self) -> Option<f64> {
        let started = self.started_at?;
        Some((self.stopped_at.unwrap_or(started) - started).max(0.0))
    }
}

/// Where a container instance stands for service tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// ACTIVE with a connected agent: tasks may run and be placed here.
    Active,
    /// DRAINING: its service tasks move elsewhere.
    Draining,
    /// Deregistered, or its agent is gone: its tasks are lost.
    Lost,
}

/// One container instance of the cluster as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFact {
    /// The instance id (last part of its ARN).
    pub id: String,
    pub state: InstanceState,
    /// For DAEMON services: ACTIVE and meeting the service's placement constraints.
    pub eligible: bool,
}

impl InstanceFact {
    /// The facts of `instance`; `meets_constraints` is the scheduler's verdict on the
    /// service's placement constraints.
    pub fn of(instance: &ContainerInstance, meets_constraints: bool) -> InstanceFact {
        let id = instance
            .container_instance_arn
            .as_deref()
            .and_then(|a| id_of(a, "container-instance"))
            .unwrap_or_default();
        let state = match (instance.status, instance.agent_connected == Some(true)) {
            (Some(ContainerInstanceStatus::Active), true) => InstanceState::Active,
            (Some(ContainerInstanceStatus::Draining), true) => InstanceState::Draining,
            (Some(ContainerInstanceStatus::Draining), false) => InstanceState::Lost,
            (
                Some(ContainerInstanceStatus::Inactive | ContainerInstanceStatus::Deregistering),
                _,
            ) => InstanceState::Lost,
            (_, false) => InstanceState::Lost,
            (_, true) => InstanceState::Draining,
        };
        InstanceFact {
            id,
            eligible: state == InstanceState::Active && meets_constraints,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: TaskStatus, desired: TaskStatus) -> Task {
        Task {
            task_arn: Some("arn:aws:ecs:us-east-1:0:task/demo/abc".into()),
            last_status: Some(status),
            desired_status: Some(desired),
            health_status: Some(HealthStatus::Unknown),
            started_by: Some("ecs-svc/1".into()),
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:0:container-instance/demo/i1".into(),
            ),
            ..Task::default()
        }
    }

    #[test]
    fn a_running_task_is_healthy_only_when_its_health_checks_pass() {
        let fact = TaskFact::of(&task(TaskStatus::Running, TaskStatus::Running), false);
        assert_eq!(fact.id, "abc");
        assert_eq!(fact.instance_id.as_deref(), Some("i1"));
        assert!(fact.is_healthy());
        let checked = TaskFact::of(&task(TaskStatus::Running, TaskStatus::Running), true);
        assert!(!checked.is_healthy());
        let mut healthy = task(TaskStatus::Running, TaskStatus::Running);
        healthy.health_status = Some(HealthStatus::Healthy);
        assert!(TaskFact::of(&healthy, true).is_healthy());
        assert!(!TaskFact::of(&task(TaskStatus::Running, TaskStatus::Stopped), false).is_healthy());
        assert!(!TaskFact::of(&task(TaskStatus::Pending, TaskStatus::Running), false).is_healthy());
    }

    #[test]
    fn failures_are_failed_starts_exits_and_health_check_stops() {
        let stopped = |code: &str, reason: &str| {
            let mut t = task(TaskStatus::Stopped, TaskStatus::Stopped);
            t.stop_code = Some(code.into());
            t.stopped_reason = Some(reason.into());
            TaskFact::of(&t, false)
        };
        assert!(stopped("TaskFailedToStart", "CannotPullContainerError").has_failed());
        assert!(stopped("EssentialContainerExited", "x").has_failed());
        assert!(stopped("ServiceSchedulerInitiated", REASON_FAILED_HEALTH_CHECKS).has_failed());
        assert!(!stopped("ServiceSchedulerInitiated", "Scaling activity").has_failed());
        assert!(!stopped("UserInitiated", "bye").has_failed());
    }

    #[test]
    fn instances_are_active_draining_or_lost() {
        let instance = |status: ContainerInstanceStatus, connected: bool| ContainerInstance {
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:0:container-instance/demo/i1".into(),
            ),
            status: Some(status),
            agent_connected: Some(connected),
            ..ContainerInstance::default()
        };
        let active = InstanceFact::of(&instance(ContainerInstanceStatus::Active, true), true);
        assert_eq!(
            (active.state, active.eligible),
            (InstanceState::Active, true)
        );
        assert!(
            !InstanceFact::of(&instance(ContainerInstanceStatus::Active, true), false).eligible
        );
        assert_eq!(
            InstanceFact::of(&instance(ContainerInstanceStatus::Draining, true), true).state,
            InstanceState::Draining
        );
        assert_eq!(
            InstanceFact::of(&instance(ContainerInstanceStatus::Active, false), true).state,
            InstanceState::Lost
        );
        assert_eq!(
            InstanceFact::of(&instance(ContainerInstanceStatus::Inactive, false), true).state,
            InstanceState::Lost
        );
    }
}
