//! Tests of one reconcile on hand-made observations.

use super::*;
use crate::model::service::{DeploymentCircuitBreaker, DeploymentConfiguration, Service};
use crate::model::{HealthStatus, ServiceDeploymentStatus};
use crate::service::events::reason_in_progress;
use crate::service::facts::UnhealthyTarget;
use crate::service::lifecycle::{start_deployment, NewDeployment};
use crate::service::test_ids::Counter;
use crate::task_state::TaskStatus;

fn service(desired: i32, breaker: Option<(bool, bool)>) -> ServiceRecord {
    let mut record = ServiceRecord {
        service: Service {
            service_name: Some("web".into()),
            status: Some(ServiceStatus::Active),
            desired_count: Some(desired),
            scheduling_strategy: Some("REPLICA".into()),
            deployment_configuration: Some(DeploymentConfiguration {
                deployment_circuit_breaker: breaker
                    .map(|(enable, rollback)| DeploymentCircuitBreaker { enable, rollback }),
                ..DeploymentConfiguration::default()
            }),
            ..Service::default()
        },
        ..ServiceRecord::default()
    };
    deploy(&mut record, "d1", "web:1");
    record
}

fn deploy(record: &mut ServiceRecord, id: &str, td: &str) {
    start_deployment(
        record,
        NewDeployment {
            id: id.into(),
            task_definition: td.into(),
            launch_type: Some("EC2".into()),
            network_configuration: None,
            service_deployment_arn: format!("sd-{id}"),
            service_revision_arn: format!("rev-{id}"),
            rollback_of: None,
            reason: reason_in_progress(id),
            now: 0.0,
        },
    );
}

fn task(id: &str, deployment: &str, status: TaskStatus, on: &str) -> TaskFact {
    TaskFact {
        id: id.into(),
        deployment_id: Some(deployment.into()),
        status,
        stop_requested: false,
        has_health_checks: false,
        health: HealthStatus::Unknown,
        started_at: (status >= TaskStatus::Running).then_some(10.0),
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        instance_id: Some(on.into()),
        created_at: Some(1.0),
        protection_expires_at: None,
        targets: Targets::None,
    }
}

fn protected_until(fact: TaskFact, until: f64) -> TaskFact {
    TaskFact {
        protection_expires_at: Some(until),
        ..fact
    }
}

fn failed(id: &str, deployment: &str, code: &str) -> TaskFact {
    TaskFact {
        stop_requested: true,
        stop_code: Some(code.into()),
        stopped_reason: Some("CannotPullContainerError: pull image nope".into()),
        stopped_at: Some(20.0),
        started_at: None,
        ..task(id, deployment, TaskStatus::Stopped, "i1")
    }
}

fn active(id: &str) -> InstanceFact {
    InstanceFact {
        id: id.into(),
        state: InstanceState::Active,
        eligible: true,
    }
}

fn run(
    record: &mut ServiceRecord,
    tasks: &[TaskFact],
    instances: &[InstanceFact],
    now: f64,
) -> Plan {
    let mut ids = Counter(1000);
    reconcile(
        record,
        &Observed {
            tasks,
            instances,
            now,
        },
        &mut ids,
    )
}

fn messages(record: &ServiceRecord) -> Vec<String> {
    record
        .service
        .events
        .iter()
        .flatten()
        .filter_map(|e| e.message.clone())
        .collect()
}

fn stopped_ids(plan: &Plan) -> Vec<&str> {
    plan.stops.iter().map(|s| s.task_id.as_str()).collect()
}

#[test]
fn a_new_service_launches_its_desired_count_for_the_primary() {
    let mut record = service(3, None);
    let plan = run(&mut record, &[], &[active("i1")], 100.0);
    assert_eq!(plan.launch, Launch::Replicas(3));
    assert_eq!(plan.deployment_id.as_deref(), Some("d1"));
    assert_eq!(plan.task_definition.as_deref(), Some("web:1"));
    assert!(plan.stops.is_empty());
}

#[test]
fn healthy_tasks_at_the_desired_count_complete_the_deployment_and_reach_steady_state_once() {
    let mut record = service(2, None);
    let tasks = [
        task("a", "d1", TaskStatus::Running, "i1"),
        task("b", "d1", TaskStatus::Running, "i1"),
    ];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert_eq!(plan.launch, Launch::None);
    assert_eq!(plan.history.len(), 1);
    assert_eq!(plan.history[0].status, ServiceDeploymentStatus::Successful);
    assert_eq!(
        messages(&record)[..2],
        [
            "(service web) has reached a steady state.".to_string(),
            "(service web) (deployment d1) deployment completed.".to_string()
        ]
    );
    let again = run(&mut record, &tasks, &[active("i1")], 101.0);
    assert_eq!(again, Plan::default());
    assert_eq!(messages(&record).len(), 2, "no repeated events");
}

#[test]
fn a_stopped_task_is_replaced_and_counted_once() {
    let mut record = service(2, None);
    let tasks = [
        task("a", "d1", TaskStatus::Running, "i1"),
        failed("b", "d1", "EssentialContainerExited"),
    ];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert_eq!(record.primary().and_then(|p| p.failed_tasks), Some(1));
    assert_eq!(record.state.accounted, vec!["b".to_string()]);
    // The first failure of a streak waits one second before the replacement.
    assert_eq!(plan.launch, Launch::None);
    let plan = run(&mut record, &tasks, &[active("i1")], 101.0);
    assert_eq!(plan.launch, Launch::Replicas(1));
    assert_eq!(record.primary().and_then(|p| p.failed_tasks), Some(1));
}

#[test]
fn the_backoff_grows_with_consecutive_failures_and_is_reported() {
    let mut record = service(1, None);
    let mut tasks = Vec::new();
    let mut now = 100.0;
    for i in 0..4 {
        tasks.push(failed(&format!("t{i}"), "d1", "EssentialContainerExited"));
        run(&mut record, &tasks, &[active("i1")], now);
        now += 0.5;
    }
    assert_eq!(record.state.backoff.failures, 4);
    let wait = record.state.backoff.next_launch_at.expect("waiting") - (now - 0.5);
    assert_eq!(wait, 8.0);
    let plan = run(&mut record, &tasks, &[active("i1")], now);
    assert_eq!(plan.launch, Launch::None);
    assert!(messages(&record)
        .iter()
        .any(|m| m.contains("is unable to consistently start tasks successfully")));
}

#[test]
fn the_circuit_breaker_rolls_back_to_the_last_completed_deployment() {
    let mut record = service(3, Some((true, true)));
    let old: Vec<TaskFact> = (0..3)
        .map(|i| task(&format!("o{i}"), "d1", TaskStatus::Running, "i1"))
        .collect();
    run(&mut record, &old, &[active("i1")], 100.0);
    deploy(&mut record, "d2", "web:2");
    let mut tasks = old.clone();
    tasks.extend((0..3).map(|i| failed(&format!("n{i}"), "d2", "TaskFailedToStart")));
    let plan = run(&mut record, &tasks, &[active("i1")], 110.0);
    let d2 = record
        .deployments()
        .iter()
        .find(|d| d.id.as_deref() == Some("d2"))
        .cloned();
    // d2 has no live task left: it failed and is gone from the list.
    assert!(d2.is_none());
    assert_eq!(
        plan.history[0].status,
        ServiceDeploymentStatus::RollbackInProgress
    );
    let primary = record.primary().expect("primary");
    assert_eq!(primary.task_definition.as_deref(), Some("web:1"));
    assert_eq!(
        primary.rollout_state,
        Some(DeploymentRolloutState::InProgress)
    );
    // The rollback deployment starts its tasks beside the old ones (max 200 %).
    assert_eq!(plan.launch, Launch::Replicas(3));
    assert!(plan.stops.is_empty());
    let msgs = messages(&record);
    assert!(msgs.contains(
        &"(service web) (deployment d2) deployment failed: tasks failed to start.".to_string()
    ));
    assert!(msgs.contains(&"(service web) rolling back to deployment d1.".to_string()));
}

#[test]
fn tasks_on_lost_instances_are_stopped_and_replaced_at_once() {
    let mut record = service(2, None);
    let tasks = [
        task("a", "d1", TaskStatus::Running, "i1"),
        task("b", "d1", TaskStatus::Running, "gone"),
    ];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert_eq!(stopped_ids(&plan), vec!["b"]);
    assert_eq!(plan.launch, Launch::Replicas(1));
}

#[test]
fn unhealthy_tasks_are_stopped_after_the_grace_period_and_count_as_failed() {
    let mut record = service(1, None);
    record.service.health_check_grace_period_seconds = Some(30);
    let mut sick = task("a", "d1", TaskStatus::Running, "i1");
    sick.has_health_checks = true;
    sick.health = HealthStatus::Unhealthy;
    let within = run(
        &mut record,
        std::slice::from_ref(&sick),
        &[active("i1")],
        20.0,
    );
    assert!(within.stops.is_empty());
    let after = run(
        &mut record,
        std::slice::from_ref(&sick),
        &[active("i1")],
        45.0,
    );
    assert_eq!(stopped_ids(&after), vec!["a"]);
    assert_eq!(
        after.stops[0].reason,
        "Task failed container health checks."
    );
    assert!(messages(&record)
        .contains(&"(service web) (task a) failed container health checks.".to_string()));
}

fn behind(fact: TaskFact, targets: Targets) -> TaskFact {
    TaskFact { targets, ..fact }
}

fn unhealthy_target() -> Targets {
    Targets::Unhealthy(UnhealthyTarget {
        target_group_arn: "arn:tg/web".into(),
        id: "mi-1".into(),
        port: 32768,
        reason: "Health checks failed with these codes: [500]".into(),
    })
}

#[test]
fn a_deployment_waits_for_the_new_tasks_targets_to_be_healthy_before_stopping_old_ones() {
    let mut record = service(1, None);
    deploy(&mut record, "d2", "web:2");
    let old = behind(task("o", "d1", TaskStatus::Running, "i1"), Targets::Healthy);
    let new = task("n", "d2", TaskStatus::Running, "i1");
    // RUNNING, but its target is still initial: the old task stays.
    let pending = run(
        &mut record,
        &[old.clone(), behind(new.clone(), Targets::Pending)],
        &[active("i1")],
        50.0,
    );
    assert!(pending.stops.is_empty(), "{:?}", pending.stops);
    let healthy = run(
        &mut record,
        &[old, behind(new, Targets::Healthy)],
        &[active("i1")],
        51.0,
    );
    assert_eq!(stopped_ids(&healthy), vec!["o"]);
}

#[test]
fn a_task_whose_target_fails_is_replaced_after_the_grace_period_and_counts_as_failed() {
    let mut record = service(1, Some((true, false)));
    record.service.health_check_grace_period_seconds = Some(30);
    let sick = behind(
        task("a", "d1", TaskStatus::Running, "i1"),
        unhealthy_target(),
    );
    let within = run(
        &mut record,
        std::slice::from_ref(&sick),
        &[active("i1")],
        20.0,
    );
    assert!(within.stops.is_empty(), "the grace period holds");
    let after = run(
        &mut record,
        std::slice::from_ref(&sick),
        &[active("i1")],
        45.0,
    );
    assert_eq!(stopped_ids(&after), vec!["a"]);
    assert_eq!(
        after.stops[0].reason,
        "Task failed ELB health checks in (target-group arn:tg/web)"
    );
    assert!(messages(&record).contains(
        &"(service web) (instance mi-1) (port 32768) is unhealthy in (target-group arn:tg/web) \
          due to (reason Health checks failed with these codes: [500])."
            .to_string()
    ));
    // Once STOPPED, it is a failure of its deployment, as the circuit breaker counts them.
    let stopped = TaskFact {
        status: TaskStatus::Stopped,
        stop_requested: true,
        stop_code: Some("ServiceSchedulerInitiated".into()),
        stopped_reason: Some(after.stops[0].reason.clone()),
        stopped_at: Some(50.0),
        ..sick
    };
    assert!(stopped.has_failed());
    run(&mut record, &[stopped], &[active("i1")], 50.0);
    assert_eq!(record.primary().and_then(|d| d.failed_tasks), Some(1));
}

#[test]
fn a_draining_service_stops_its_tasks_then_becomes_inactive() {
    let mut record = service(2, None);
    record.service.status = Some(ServiceStatus::Draining);
    record.service.desired_count = Some(0);
    let tasks = [task("a", "d1", TaskStatus::Running, "i1")];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert_eq!(stopped_ids(&plan), vec!["a"]);
    assert_eq!(plan.launch, Launch::None);
    assert_eq!(record.service.status, Some(ServiceStatus::Draining));
    let mut stopping = tasks[0].clone();
    stopping.stop_requested = true;
    run(
        &mut record,
        std::slice::from_ref(&stopping),
        &[active("i1")],
        101.0,
    );
    assert_eq!(record.service.status, Some(ServiceStatus::Draining));
    let gone = TaskFact {
        status: TaskStatus::Stopped,
        ..stopping
    };
    run(&mut record, &[gone], &[active("i1")], 102.0);
    assert_eq!(record.service.status, Some(ServiceStatus::Inactive));
}

#[test]
fn a_daemon_service_runs_one_task_per_eligible_instance() {
    let mut record = service(0, None);
    record.service.scheduling_strategy = Some("DAEMON".into());
    let draining = InstanceFact {
        id: "i3".into(),
        state: InstanceState::Draining,
        eligible: false,
    };
    let tasks = [
        task("a", "d1", TaskStatus::Running, "i1"),
        task("c", "d1", TaskStatus::Running, "i3"),
    ];
    let plan = run(
        &mut record,
        &tasks,
        &[active("i1"), active("i2"), draining],
        100.0,
    );
    assert_eq!(plan.launch, Launch::OnInstances(vec!["i2".into()]));
    assert_eq!(stopped_ids(&plan), vec!["c"]);
    assert_eq!(record.service.desired_count, Some(2));
}

#[test]
fn reconciling_the_same_observation_twice_decides_the_same() {
    let mut record = service(3, None);
    deploy(&mut record, "d2", "web:2");
    let tasks = [
        task("o1", "d1", TaskStatus::Running, "i1"),
        task("o2", "d1", TaskStatus::Running, "i1"),
        task("o3", "d1", TaskStatus::Running, "i1"),
        task("n1", "d2", TaskStatus::Running, "i1"),
    ];
    let mut first = record.clone();
    let mut second = record.clone();
    let a = run(&mut first, &tasks, &[active("i1")], 100.0);
    let b = run(&mut second, &tasks, &[active("i1")], 100.0);
    assert_eq!(a, b);
    assert_eq!(first, second);
    assert_eq!(a.launch, Launch::Replicas(2));
    assert_eq!(stopped_ids(&a), vec!["o1"]);
}

#[test]
fn scale_in_stops_the_unprotected_task_and_keeps_the_protected_one() {
    let mut record = service(1, None);
    let tasks = [
        protected_until(task("a", "d1", TaskStatus::Running, "i1"), 500.0),
        task("b", "d1", TaskStatus::Running, "i1"),
    ];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert_eq!(stopped_ids(&plan), vec!["b"]);
    assert!(plan.held.is_empty());
    assert_eq!(plan.wake_at, None);
}

#[test]
fn a_protected_task_above_the_desired_count_is_held_with_an_event_until_it_expires() {
    let mut record = service(1, None);
    let tasks = [
        protected_until(task("a", "d1", TaskStatus::Running, "i1"), 500.0),
        protected_until(task("b", "d1", TaskStatus::Running, "i1"), 400.0),
    ];
    let plan = run(&mut record, &tasks, &[active("i1")], 100.0);
    assert!(plan.stops.is_empty());
    assert_eq!(plan.held, vec!["b".to_string()]);
    assert_eq!(plan.wake_at, Some(400.0));
    assert!(messages(&record).contains(
        &"(service web) was unable to scale in due to (reason 1 tasks under protection).".into()
    ));
    assert!(!record.state.steady);

    // Once b's protection has lapsed, the next reconcile stops it.
    let plan = run(&mut record, &tasks, &[active("i1")], 400.0);
    assert_eq!(stopped_ids(&plan), vec!["b"]);
    assert!(plan.held.is_empty());
}

#[test]
fn a_deployment_waits_for_a_protected_old_task() {
    let mut record = service(1, None);
    deploy(&mut record, "d2", "web:2");
    let old = protected_until(task("o", "d1", TaskStatus::Running, "i1"), 900.0);
    let new = task("n", "d2", TaskStatus::Running, "i1");
    let plan = run(
        &mut record,
        &[old.clone(), new.clone()],
        &[active("i1")],
        100.0,
    );
    assert!(plan.stops.is_empty(), "the protected task stays");
    assert_eq!(plan.held, vec!["o".to_string()]);
    assert_eq!(plan.wake_at, Some(900.0));
    assert_eq!(record.deployments().len(), 2, "the deployment is not done");

    // Protection removed: the old task goes and the deployment can finish.
    let unprotected = TaskFact {
        protection_expires_at: None,
        ..old
    };
    let plan = run(&mut record, &[unprotected, new], &[active("i1")], 101.0);
    assert_eq!(stopped_ids(&plan), vec!["o"]);
    assert!(plan.held.is_empty());
}

#[test]
fn protection_does_not_keep_an_unhealthy_task() {
    let mut record = service(1, None);
    let mut sick = protected_until(task("a", "d1", TaskStatus::Running, "i1"), 900.0);
    sick.health = HealthStatus::Unhealthy;
    let plan = run(&mut record, &[sick], &[active("i1")], 100.0);
    assert_eq!(stopped_ids(&plan), vec!["a"]);
}
