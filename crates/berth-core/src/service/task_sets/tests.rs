//! Tests of the scale arithmetic and of the task-set step, alone and through a reconcile.

use super::*;
use crate::model::service::{DeploymentController, Service};
use crate::model::{HealthStatus, ServiceStatus};
use crate::service::facts::{InstanceFact, InstanceState, Targets};
use crate::service::reconcile::{reconcile, Observed};
use crate::service::test_ids::Counter;
use crate::task_state::TaskStatus;

fn pct(value: f64) -> Scale {
    Scale {
        value: Some(value),
        unit: Some(PERCENT.into()),
    }
}

fn set(id: &str, status: &str, scale: f64) -> TaskSet {
    TaskSet {
        id: Some(id.into()),
        status: Some(status.into()),
        scale: Some(pct(scale)),
        ..TaskSet::default()
    }
}

fn external(desired: i32, sets: Vec<TaskSet>) -> ServiceRecord {
    let mut record = ServiceRecord {
        service: Service {
            service_name: Some("web".into()),
            status: Some(ServiceStatus::Active),
            desired_count: Some(desired),
            deployment_controller: Some(DeploymentController {
                type_: "EXTERNAL".into(),
            }),
            task_sets: Some(sets),
            ..Service::default()
        },
        ..ServiceRecord::default()
    };
    recompute(&mut record, 0.0);
    record
}

fn task(id: &str, set: &str, status: TaskStatus) -> TaskFact {
    TaskFact {
        id: id.into(),
        deployment_id: Some(set.into()),
        status,
        stop_requested: false,
        has_health_checks: false,
        health: HealthStatus::Unknown,
        started_at: Some(1.0),
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        instance_id: Some("i1".into()),
        created_at: Some(1.0),
        protection_expires_at: None,
        targets: Targets::None,
    }
}

fn run(record: &mut ServiceRecord, tasks: &[TaskFact]) -> crate::service::reconcile::Plan {
    let instances = [InstanceFact {
        id: "i1".into(),
        state: InstanceState::Active,
        eligible: true,
    }];
    reconcile(
        record,
        &Observed {
            tasks,
            instances: &instances,
            now: 5.0,
        },
        &mut Counter::default(),
    )
}

fn stability(record: &ServiceRecord, id: &str) -> Option<String> {
    record
        .service
        .task_sets
        .iter()
        .flatten()
        .find(|s| s.id.as_deref() == Some(id))
        .and_then(|s| s.stability_status.clone())
}

#[test]
fn computed_desired_count_is_the_scaled_desired_count_rounded_up() {
    assert_eq!(computed_desired_count(4, &pct(100.0)), 4);
    assert_eq!(computed_desired_count(4, &pct(50.0)), 2);
    assert_eq!(computed_desired_count(4, &pct(30.0)), 2);
    assert_eq!(computed_desired_count(3, &pct(1.0)), 1);
    assert_eq!(computed_desired_count(10, &pct(30.0)), 3);
    assert_eq!(computed_desired_count(3, &pct(33.333_333_333_333_336)), 1);
    assert_eq!(computed_desired_count(5, &pct(0.0)), 0);
    assert_eq!(computed_desired_count(0, &pct(100.0)), 0);
    assert_eq!(computed_desired_count(10_000, &pct(100.0)), 10_000);
}

#[test]
fn scale_is_a_percentage_from_0_to_100_and_defaults_to_0() {
    assert_eq!(check_scale(None), Ok(pct(0.0)));
    assert_eq!(
        check_scale(Some(&Scale {
            value: Some(50.0),
            unit: None
        })),
        Ok(pct(50.0))
    );
    assert!(check_scale(Some(&pct(100.5))).is_err());
    assert!(check_scale(Some(&pct(-1.0))).is_err());
    assert!(check_scale(Some(&pct(f64::NAN))).is_err());
    assert!(check_scale(Some(&Scale {
        value: Some(10.0),
        unit: Some("COUNT".into())
    }))
    .is_err());
}

#[test]
fn recompute_follows_the_service_desired_count_and_drains_to_zero() {
    let mut record = external(4, vec![set("a", PRIMARY, 100.0), set("b", DRAINING, 100.0)]);
    let counts: Vec<_> = record
        .service
        .task_sets
        .iter()
        .flatten()
        .map(|s| s.computed_desired_count)
        .collect();
    assert_eq!(counts, vec![Some(4), Some(0)]);
    record.service.desired_count = Some(1);
    recompute(&mut record, 9.0);
    let a = &record.service.task_sets.as_ref().expect("sets")[0];
    assert_eq!(a.computed_desired_count, Some(1));
    assert_eq!(a.updated_at, Some(9.0));
    assert_eq!(a.stability_status.as_deref(), Some(STABILIZING));
}

#[test]
fn each_task_set_launches_what_it_lacks_under_its_own_id() {
    let mut record = external(2, vec![set("a", PRIMARY, 100.0), set("b", ACTIVE, 50.0)]);
    let plan = run(&mut record, &[task("t1", "a", TaskStatus::Running)]);
    assert_eq!(
        plan.task_set_launches,
        vec![("a".to_string(), 1), ("b".to_string(), 1)]
    );
    assert_eq!(plan.launch, crate::service::reconcile::Launch::None);
    assert!(plan.stops.is_empty());
}

#[test]
fn scaling_a_set_down_stops_its_extra_tasks_and_leaves_the_others() {
    let mut record = external(2, vec![set("a", ACTIVE, 0.0), set("b", PRIMARY, 100.0)]);
    let tasks = [
        task("t1", "a", TaskStatus::Running),
        task("t2", "a", TaskStatus::Running),
        task("t3", "b", TaskStatus::Running),
        task("t4", "b", TaskStatus::Running),
    ];
    let plan = run(&mut record, &tasks);
    let mut stopped: Vec<_> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
    stopped.sort_unstable();
    assert_eq!(stopped, vec!["t1", "t2"]);
    assert!(plan.stops[0].reason.contains("a"));
    assert!(plan.task_set_launches.is_empty());
    assert_eq!(stability(&record, "b").as_deref(), Some(STEADY_STATE));
    assert_eq!(stability(&record, "a").as_deref(), Some(STABILIZING));
}

#[test]
fn a_set_at_its_count_with_all_tasks_running_is_steady_and_so_is_the_service() {
    let mut record = external(1, vec![set("a", PRIMARY, 100.0)]);
    let plan = run(&mut record, &[task("t1", "a", TaskStatus::Running)]);
    assert!(plan.stops.is_empty() && plan.task_set_launches.is_empty());
    assert_eq!(stability(&record, "a").as_deref(), Some(STEADY_STATE));
    assert!(record.state.steady);
    let pending = run(&mut record, &[task("t1", "a", TaskStatus::Pending)]);
    assert!(pending.task_set_launches.is_empty());
    assert_eq!(stability(&record, "a").as_deref(), Some(STABILIZING));
}

#[test]
fn a_draining_set_stops_its_tasks_and_goes_once_they_have_stopped() {
    let mut record = external(1, vec![set("a", DRAINING, 100.0), set("b", PRIMARY, 100.0)]);
    let plan = run(
        &mut record,
        &[
            task("t1", "a", TaskStatus::Running),
            task("t2", "b", TaskStatus::Running),
        ],
    );
    let stopped: Vec<_> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
    assert_eq!(stopped, vec!["t1"]);
    assert_eq!(record.service.task_sets.as_ref().map(Vec::len), Some(2));
    let mut gone = task("t1", "a", TaskStatus::Stopped);
    gone.stop_requested = true;
    run(&mut record, &[gone, task("t2", "b", TaskStatus::Running)]);
    let ids: Vec<_> = record
        .service
        .task_sets
        .iter()
        .flatten()
        .filter_map(|s| s.id.as_deref())
        .collect();
    assert_eq!(ids, vec!["b"]);
}

#[test]
fn tasks_of_no_task_set_are_stopped() {
    let mut record = external(0, vec![]);
    let plan = run(&mut record, &[task("t1", "gone", TaskStatus::Running)]);
    assert_eq!(plan.stops.len(), 1);
    assert!(plan.task_set_launches.is_empty());
}
