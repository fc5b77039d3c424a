use super::*;
use crate::model::task::ContainerOverride;
use crate::model::task_definition::HealthCheck;

fn definitions() -> Vec<ContainerDefinition> {
    vec![
        ContainerDefinition {
            name: Some("web".into()),
            image: Some("busybox".into()),
            memory: Some(64),
            essential: Some(true),
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                ..HealthCheck::default()
            }),
            ..ContainerDefinition::default()
        },
        ContainerDefinition {
            name: Some("sidecar".into()),
            image: Some("busybox".into()),
            memory_reservation: Some(32),
            essential: Some(false),
            ..ContainerDefinition::default()
        },
    ]
}

fn task_definition() -> TaskDefinition {
    TaskDefinition {
        task_definition_arn: Some(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1".into(),
        ),
        family: Some("web".into()),
        revision: Some(1),
        container_definitions: Some(definitions()),
        ..TaskDefinition::default()
    }
}

fn task() -> Task {
    let td = task_definition();
    new_task(NewTask {
        task_arn: "arn:aws:ecs:us-east-1:000000000000:task/demo/abc".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/demo".into(),
        container_instance_arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/i1"
            .into(),
        task_definition: &td,
        container_arns: vec!["c1".into(), "c2".into()],
        overrides: TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("web".into()),
                memory: Some(128),
                ..ContainerOverride::default()
            }]),
            ..TaskOverride::default()
        },
        started_by: Some("me".into()),
        group: "family:web".into(),
        launch_type: "EC2".into(),
        tags: vec![],
        enable_execute_command: false,
        now: 100.0,
    })
}

fn report(status: Option<&str>, containers: Vec<ContainerStateChange>) -> SubmitTaskStateChange {
    SubmitTaskStateChange {
        status: status.map(str::to_string),
        containers: Some(containers),
        ..SubmitTaskStateChange::default()
    }
}

fn container(name: &str, status: &str) -> ContainerStateChange {
    ContainerStateChange {
        container_name: Some(name.into()),
        status: Some(status.into()),
        ..ContainerStateChange::default()
    }
}

#[test]
fn a_new_task_is_provisioning_with_every_container_pending() {
    let t = task();
    assert_eq!(t.last_status, Some(TaskStatus::Provisioning));
    assert_eq!(t.desired_status, Some(TaskStatus::Running));
    assert_eq!(t.created_at, Some(100.0));
    let containers = t.containers.expect("containers");
    assert_eq!(containers.len(), 2);
    assert!(containers
        .iter()
        .all(|c| c.last_status == Some(TaskStatus::Pending)));
    assert_eq!(
        containers[0].memory.as_deref(),
        Some("128"),
        "override wins"
    );
    assert_eq!(containers[0].health_status, Some(HealthStatus::Unknown));
    assert_eq!(containers[1].memory_reservation.as_deref(), Some("32"));
    assert_eq!(t.group.as_deref(), Some("family:web"));
}

#[test]
fn reports_move_the_task_forward_and_stamp_started_at() {
    let mut t = task();
    let defs = definitions();
    assert!(apply_report(&mut t, &report(Some("PENDING"), vec![]), &defs, 101.0).expect("ok"));
    assert!(apply_report(&mut t, &report(Some("ACTIVATING"), vec![]), &defs, 102.0).expect("ok"));
    let running = report(
        Some("RUNNING"),
        vec![container("web", "RUNNING"), container("sidecar", "RUNNING")],
    );
    assert!(apply_report(&mut t, &running, &defs, 103.0).expect("ok"));
    assert_eq!(t.last_status, Some(TaskStatus::Running));
    assert_eq!(t.started_at, Some(103.0));
    assert!(t.stopping_at.is_none());
}

#[test]
fn stale_reports_never_move_a_task_back() {
    let mut t = task();
    let defs = definitions();
    apply_report(
        &mut t,
        &report(Some("RUNNING"), vec![container("web", "RUNNING")]),
        &defs,
        1.0,
    )
    .expect("ok");
    let changed = apply_report(
        &mut t,
        &report(Some("PENDING"), vec![container("web", "PENDING")]),
        &defs,
        2.0,
    )
    .expect("ok");
    assert!(!changed);
    assert_eq!(t.last_status, Some(TaskStatus::Running));
    assert_eq!(
        t.containers.expect("c")[0].last_status,
        Some(TaskStatus::Running)
    );
}

#[test]
fn user_stop_keeps_its_code_through_to_stopped() {
    let mut t = task();
    let defs = definitions();
    apply_report(&mut t, &report(Some("RUNNING"), vec![]), &defs, 1.0).expect("ok");
    assert!(request_stop(&mut t, stop_code::USER_INITIATED, None, 5.0));
    assert!(
        !request_stop(&mut t, stop_code::ESSENTIAL_CONTAINER_EXITED, None, 6.0),
        "first stop wins"
    );
    assert_eq!(t.stopping_at, Some(5.0));
    assert_eq!(t.stopped_reason.as_deref(), Some("Task stopped by user"));
    for status in ["DEACTIVATING", "STOPPING", "DEPROVISIONING"] {
        apply_report(&mut t, &report(Some(status), vec![]), &defs, 7.0).expect("ok");
    }
    let mut web = container("web", "STOPPED");
    web.exit_code = Some(143);
    let stopped = SubmitTaskStateChange {
        execution_stopped_at: Some(8.0),
        ..report(Some("STOPPED"), vec![web])
    };
    apply_report(&mut t, &stopped, &defs, 9.0).expect("ok");
    assert_eq!(t.last_status, Some(TaskStatus::Stopped));
    assert_eq!(t.stop_code.as_deref(), Some("UserInitiated"));
    assert_eq!(t.stopped_at, Some(9.0));
    assert_eq!(t.execution_stopped_at, Some(8.0));
    let containers = t.containers.expect("c");
    assert_eq!(containers[0].exit_code, Some(143));
    assert!(containers
        .iter()
        .all(|c| c.last_status == Some(TaskStatus::Stopped)));
}

#[test]
fn an_agent_stopping_a_running_task_means_an_essential_container_exited() {
    let mut t = task();
    let defs = definitions();
    apply_report(&mut t, &report(Some("RUNNING"), vec![]), &defs, 1.0).expect("ok");
    let mut web = container("web", "STOPPED");
    web.exit_code = Some(3);
    apply_report(&mut t, &report(Some("DEACTIVATING"), vec![web]), &defs, 2.0).expect("ok");
    assert_eq!(t.desired_status, Some(TaskStatus::Stopped));
    assert_eq!(t.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(
        t.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(t.stopping_at, Some(2.0));
}

#[test]
fn a_task_stopped_before_running_failed_to_start_with_the_agents_reason() {
    let mut t = task();
    let defs = definitions();
    apply_report(&mut t, &report(Some("PENDING"), vec![]), &defs, 1.0).expect("ok");
    let failed = SubmitTaskStateChange {
        reason: Some("CannotPullContainerError: pull image nope:latest: not found".into()),
        ..report(Some("STOPPED"), vec![container("web", "STOPPED")])
    };
    apply_report(&mut t, &failed, &defs, 2.0).expect("ok");
    assert_eq!(t.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert!(t
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.contains("nope:latest")));
    assert!(t.started_at.is_none());
}

#[test]
fn health_follows_essential_containers_with_health_checks() {
    let mut t = task();
    let defs = definitions();
    assert_eq!(task_health(&t, &defs), HealthStatus::Unknown);
    let mut healthy = container("web", "RUNNING");
    healthy.health_status = Some("HEALTHY".into());
    apply_report(&mut t, &report(None, vec![healthy]), &defs, 1.0).expect("ok");
    assert_eq!(t.health_status, Some(HealthStatus::Healthy));
    let mut sick = container("web", "RUNNING");
    sick.health_status = Some("UNHEALTHY".into());
    apply_report(&mut t, &report(None, vec![sick]), &defs, 2.0).expect("ok");
    assert_eq!(t.health_status, Some(HealthStatus::Unhealthy));
}

#[test]
fn bad_reports_are_rejected_with_what_to_fix() {
    let mut t = task();
    let defs = definitions();
    assert_eq!(
        apply_report(&mut t, &report(Some("FLYING"), vec![]), &defs, 1.0),
        Err(ReportError::UnknownStatus("FLYING".into()))
    );
    assert_eq!(
        apply_report(&mut t, &report(Some("DELETED"), vec![]), &defs, 1.0),
        Err(ReportError::UnknownStatus("DELETED".into()))
    );
    assert_eq!(
        apply_report(
            &mut t,
            &report(None, vec![container("ghost", "RUNNING")]),
            &defs,
            1.0
        ),
        Err(ReportError::UnknownContainer("ghost".into()))
    );
    assert_eq!(
        apply_report(
            &mut t,
            &report(None, vec![container("web", "DANCING")]),
            &defs,
            1.0
        ),
        Err(ReportError::UnknownContainerStatus("DANCING".into()))
    );
}

#[test]
fn an_essential_container_that_exits_before_running_is_reported_as_such() {
    let mut t = task();
    let defs = definitions();
    apply_report(&mut t, &report(Some("ACTIVATING"), vec![]), &defs, 1.0).expect("ok");
    let mut web = container("web", "STOPPED");
    web.exit_code = Some(3);
    let stopped = SubmitTaskStateChange {
        reason: Some("Essential container in task exited".into()),
        ..report(Some("STOPPED"), vec![web])
    };
    apply_report(&mut t, &stopped, &defs, 2.0).expect("ok");
    assert_eq!(t.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(t.containers.expect("c")[0].exit_code, Some(3));
}
