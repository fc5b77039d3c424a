//! Deployments coming and going: a new PRIMARY deployment (CreateService, UpdateService, a
//! rollback), completion, and the circuit breaker failing one; with the changes each brings to
//! the service deployment history.

use super::backoff::Backoff;
use super::bounds::breaker_threshold;
use super::events;
use super::record::{CompletedDeployment, DeploymentState, IdSource, ServiceRecord};
use crate::model::service::{
    Deployment, NetworkConfiguration, Rollback, ServiceDeploymentCircuitBreaker,
};
use crate::model::status::{
    DeploymentRolloutState, DeploymentStatus, RollbackMonitorsStatus, ServiceDeploymentStatus,
};

/// What a new deployment runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeployment {
    /// `ecs-svc/...`.
    pub id: String,
    pub task_definition: String,
    pub launch_type: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    /// The service deployment it carries out.
    pub service_deployment_arn: String,
    /// The service revision it runs.
    pub service_revision_arn: String,
    /// For a rollback: the deployment rolled back.
    pub rollback_of: Option<String>,
    /// Its rolloutStateReason while in progress.
    pub reason: String,
    pub now: f64,
}

/// A change to a stored service deployment (history) record.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryUpdate {
    /// Which service deployment.
    pub arn: String,
    /// Its new status.
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    /// Whether it is over (sets finishedAt).
    pub finished: bool,
    pub rollback: Option<Rollback>,
    pub circuit_breaker: Option<ServiceDeploymentCircuitBreaker>,
}

/// Makes `new` the PRIMARY deployment; the previous PRIMARY becomes ACTIVE and is replaced
/// by the rolling update. A new deployment starts with a clean backoff.
pub fn start_deployment(record: &mut ServiceRecord, new: NewDeployment) {
    let desired = record.service.desired_count.unwrap_or(0);
    let deployments = record.service.deployments.get_or_insert_with(Vec::new);
    for d in deployments.iter_mut() {
        if d.status == Some(DeploymentStatus::Primary) {
            d.status = Some(DeploymentStatus::Active);
            d.updated_at = Some(new.now);
        }
    }
    deployments.insert(
        0,
        Deployment {
            id: Some(new.id.clone()),
            status: Some(DeploymentStatus::Primary),
            task_definition: Some(new.task_definition.clone()),
            desired_count: Some(desired),
            failed_tasks: Some(0),
            created_at: Some(new.now),
            updated_at: Some(new.now),
            launch_type: new.launch_type.clone(),
            // A deployment shows the capacity provider strategy it places by, as on ECS.
            capacity_provider_strategy: record.service.capacity_provider_strategy.clone(),
            network_configuration: new.network_configuration.clone(),
            rollout_state: Some(DeploymentRolloutState::InProgress),
            rollout_state_reason: Some(new.reason.clone()),
            ..Deployment::default()
        },
    );
    record.state.deployments.push(DeploymentState {
        id: new.id,
        service_deployment_arn: new.service_deployment_arn,
        service_revision_arn: new.service_revision_arn,
        rollback_of: new.rollback_of,
    });
    record.service.task_definition = Some(new.task_definition);
    record.state.backoff = Backoff::default();
    record.state.steady = false;
    record.state.steady_since = None;
}

/// Drops deployment `id` (an ACTIVE deployment whose tasks are all gone).
pub fn remove_deployment(record: &mut ServiceRecord, id: &str) {
    if let Some(deployments) = record.service.deployments.as_mut() {
        deployments.retain(|d| d.id.as_deref() != Some(id));
    }
    record.state.deployments.retain(|d| d.id != id);
}

fn breaker_of(record: &ServiceRecord) -> (bool, bool) {
    record
        .service
        .deployment_configuration
        .as_ref()
        .and_then(|c| c.deployment_circuit_breaker)
        .map_or((false, false), |b| (b.enable, b.rollback))
}

/// The circuit breaker summary of the PRIMARY deployment with `status`.
fn breaker_summary(
    record: &ServiceRecord,
    status: RollbackMonitorsStatus,
) -> ServiceDeploymentCircuitBreaker {
    let (enabled, _) = breaker_of(record);
    let desired = u32::try_from(record.service.desired_count.unwrap_or(0).max(0)).unwrap_or(0);
    ServiceDeploymentCircuitBreaker {
        status: Some(if enabled {
            status
        } else {
            RollbackMonitorsStatus::Disabled
        }),
        failure_count: Some(record.primary().and_then(|p| p.failed_tasks).unwrap_or(0)),
        threshold: Some(i32::try_from(breaker_threshold(desired)).unwrap_or(i32::MAX)),
    }
}

/// Marks the PRIMARY deployment COMPLETED (it reached its desired count of healthy tasks and
/// no other deployment is left) and remembers it as what rollbacks return to.
pub fn complete_primary(
    record: &mut ServiceRecord,
    ids: &mut dyn IdSource,
    now: f64,
) -> Option<HistoryUpdate> {
    let name = record.name().to_string();
    let breaker = breaker_summary(record, RollbackMonitorsStatus::MonitoringComplete);
    let primary = record.primary_mut()?;
    if primary.rollout_state != Some(DeploymentRolloutState::InProgress) {
        return None;
    }
    let id = primary.id.clone().unwrap_or_default();
    primary.rollout_state = Some(DeploymentRolloutState::Completed);
    primary.rollout_state_reason = Some(events::reason_completed(&id));
    primary.updated_at = Some(now);
    let task_definition = primary.task_definition.clone().unwrap_or_default();
    let state = record.deployment_state(&id).cloned().unwrap_or_default();
    record.state.last_completed = Some(CompletedDeployment {
        deployment_id: id.clone(),
        task_definition,
        service_revision_arn: state.service_revision_arn.clone(),
    });
    record.push_event(ids, events::deployment_completed(&name, &id), now);
    Some(HistoryUpdate {
        arn: state.service_deployment_arn,
        status: if state.rollback_of.is_some() {
            ServiceDeploymentStatus::RollbackSuccessful
        } else {
            ServiceDeploymentStatus::Successful
        },
        status_reason: None,
        finished: true,
        rollback: None,
        // A rollback finishing leaves the breaker as it was when it triggered.
        circuit_breaker: state.rollback_of.is_none().then_some(breaker),
    })
}

/// Counts a failed task of deployment `id` in its failedTasks (a deployment the breaker has
/// failed counts no more, so it fails at exactly the threshold). While the PRIMARY is in
/// progress with the circuit breaker on, reaching the threshold fails it (and rolls back when
/// asked to). Returns the history changes.
pub fn count_failure(
    record: &mut ServiceRecord,
    id: &str,
    ids: &mut dyn IdSource,
    now: f64,
) -> Vec<HistoryUpdate> {
    let desired = u32::try_from(record.service.desired_count.unwrap_or(0).max(0)).unwrap_or(0);
    let threshold = i32::try_from(breaker_threshold(desired)).unwrap_or(i32::MAX);
    let (enabled, _) = breaker_of(record);
    let Some(deployment) = record.deployment_mut(id) else {
        return Vec::new();
    };
    if deployment.rollout_state == Some(DeploymentRolloutState::Failed) {
        return Vec::new();
    }
    let failed = deployment.failed_tasks.unwrap_or(0).saturating_add(1);
    deployment.failed_tasks = Some(failed);
    deployment.updated_at = Some(now);
    let in_progress = deployment.rollout_state == Some(DeploymentRolloutState::InProgress);
    let is_primary = deployment.status == Some(DeploymentStatus::Primary);
    if enabled && in_progress && is_primary && failed >= threshold {
        fail_primary(record, ids, now)
    } else {
        Vec::new()
    }
}

/// The circuit breaker fails the PRIMARY deployment: it stops launching; with rollback on, a
/// new PRIMARY deployment returns to the last completed one.
fn fail_primary(
    record: &mut ServiceRecord,
    ids: &mut dyn IdSource,
    now: f64,
) -> Vec<HistoryUpdate> {
    let name = record.name().to_string();
    let (_, rollback) = breaker_of(record);
    let breaker = breaker_summary(record, RollbackMonitorsStatus::Triggered);
    let Some(primary) = record.primary_mut() else {
        return Vec::new();
    };
    let id = primary.id.clone().unwrap_or_default();
    primary.rollout_state = Some(DeploymentRolloutState::Failed);
    primary.rollout_state_reason = Some(events::REASON_BREAKER_FAILED.into());
    primary.updated_at = Some(now);
    record.push_event(ids, events::deployment_failed(&name, &id), now);
    let state = record.deployment_state(&id).cloned().unwrap_or_default();
    let target = record.state.last_completed.clone();
    match target {
        Some(target) if rollback && state.rollback_of.is_none() => {
            let reason = events::reason_rolling_back(&target.deployment_id);
            let update = HistoryUpdate {
                arn: state.service_deployment_arn.clone(),
                status: ServiceDeploymentStatus::RollbackInProgress,
                status_reason: Some(events::REASON_BREAKER_FAILED.into()),
                finished: false,
                rollback: Some(Rollback {
                    reason: Some(reason.clone()),
                    started_at: Some(now),
                    service_revision_arn: Some(target.service_revision_arn.clone()),
                }),
                circuit_breaker: Some(breaker),
            };
            roll_back_to(
                record,
                &target,
                &id,
                &state.service_deployment_arn,
                reason,
                ids,
                now,
            );
            record.push_event(ids, events::rolling_back(&name, &target.deployment_id), now);
            vec![update]
        }
        _ => vec![HistoryUpdate {
            arn: state.service_deployment_arn,
            status: if state.rollback_of.is_some() {
                ServiceDeploymentStatus::RollbackFailed
            } else {
                ServiceDeploymentStatus::Stopped
            },
            status_reason: Some(events::REASON_BREAKER_FAILED.into()),
            finished: true,
            rollback: None,
            circuit_breaker: Some(breaker),
        }],
    }
}

/// Starts a new PRIMARY deployment back to `target`, as part of the service deployment
/// `service_deployment_arn` that failed (or was stopped).
pub fn roll_back_to(
    record: &mut ServiceRecord,
    target: &CompletedDeployment,
    failed_id: &str,
    service_deployment_arn: &str,
    reason: String,
    ids: &mut dyn IdSource,
    now: f64,
) {
    let failed = record
        .deployments()
        .iter()
        .find(|d| d.id.as_deref() == Some(failed_id))
        .cloned()
        .unwrap_or_default();
    start_deployment(
        record,
        NewDeployment {
            id: ids.deployment_id(),
            task_definition: target.task_definition.clone(),
            launch_type: failed.launch_type,
            network_configuration: failed.network_configuration,
            service_deployment_arn: service_deployment_arn.to_string(),
            service_revision_arn: target.service_revision_arn.clone(),
            rollback_of: Some(failed_id.to_string()),
            reason,
            now,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service::{DeploymentCircuitBreaker, DeploymentConfiguration, Service};
    use crate::service::test_ids::Counter;

    fn record(breaker: Option<(bool, bool)>) -> ServiceRecord {
        ServiceRecord {
            service: Service {
                service_name: Some("web".into()),
                desired_count: Some(3),
                deployment_configuration: Some(DeploymentConfiguration {
                    deployment_circuit_breaker: breaker
                        .map(|(enable, rollback)| DeploymentCircuitBreaker { enable, rollback }),
                    ..DeploymentConfiguration::default()
                }),
                ..Service::default()
            },
            ..ServiceRecord::default()
        }
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
                reason: events::reason_in_progress(id),
                now: 1.0,
            },
        );
    }

    fn statuses(record: &ServiceRecord) -> Vec<(String, String, String)> {
        record
            .deployments()
            .iter()
            .map(|d| {
                (
                    d.id.clone().unwrap_or_default(),
                    d.status.map(|s| s.to_string()).unwrap_or_default(),
                    d.rollout_state.map(|s| s.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_deployment_becomes_primary_and_the_old_one_active() {
        let mut r = record(None);
        deploy(&mut r, "d1", "web:1");
        deploy(&mut r, "d2", "web:2");
        assert_eq!(
            statuses(&r),
            vec![
                ("d2".into(), "PRIMARY".into(), "IN_PROGRESS".into()),
                ("d1".into(), "ACTIVE".into(), "IN_PROGRESS".into()),
            ]
        );
        assert_eq!(r.service.task_definition.as_deref(), Some("web:2"));
        assert_eq!(r.state.deployments.len(), 2);
    }

    #[test]
    fn completion_marks_the_primary_completed_and_remembers_it() {
        let mut r = record(None);
        let mut ids = Counter::default();
        deploy(&mut r, "d1", "web:1");
        let update = complete_primary(&mut r, &mut ids, 5.0).expect("completes");
        assert_eq!(update.status, ServiceDeploymentStatus::Successful);
        assert_eq!(update.arn, "sd-d1");
        assert_eq!(
            r.primary().and_then(|p| p.rollout_state),
            Some(DeploymentRolloutState::Completed)
        );
        assert_eq!(
            r.state
                .last_completed
                .as_ref()
                .map(|c| c.task_definition.as_str()),
            Some("web:1")
        );
        assert!(
            complete_primary(&mut r, &mut ids, 6.0).is_none(),
            "only once"
        );
    }

    #[test]
    fn the_breaker_fails_the_primary_at_exactly_the_threshold_and_rolls_back() {
        let mut r = record(Some((true, true)));
        let mut ids = Counter::default();
        deploy(&mut r, "d1", "web:1");
        complete_primary(&mut r, &mut ids, 2.0);
        deploy(&mut r, "d2", "web:2");
        assert!(count_failure(&mut r, "d2", &mut ids, 3.0).is_empty());
        assert!(count_failure(&mut r, "d2", &mut ids, 3.0).is_empty());
        let updates = count_failure(&mut r, "d2", &mut ids, 3.0);
        assert_eq!(updates.len(), 1);
        assert_eq!(
            updates[0].status,
            ServiceDeploymentStatus::RollbackInProgress
        );
        assert_eq!(updates[0].arn, "sd-d2");
        let failed = r
            .deployments()
            .iter()
            .find(|d| d.id.as_deref() == Some("d2"))
            .expect("d2");
        assert_eq!(failed.failed_tasks, Some(3));
        assert_eq!(failed.rollout_state, Some(DeploymentRolloutState::Failed));
        assert_eq!(failed.status, Some(DeploymentStatus::Active));
        let primary = r.primary().expect("rollback primary");
        assert_eq!(primary.task_definition.as_deref(), Some("web:1"));
        assert_eq!(r.service.task_definition.as_deref(), Some("web:1"));
        // Further failures of the failed deployment count no more.
        assert!(count_failure(&mut r, "d2", &mut ids, 4.0).is_empty());
        let failed = r
            .deployments()
            .iter()
            .find(|d| d.id.as_deref() == Some("d2"));
        assert_eq!(failed.and_then(|d| d.failed_tasks), Some(3));
        let messages: Vec<String> = r
            .service
            .events
            .iter()
            .flatten()
            .filter_map(|e| e.message.clone())
            .collect();
        assert_eq!(messages[0], "(service web) rolling back to deployment d1.");
        assert_eq!(
            messages[1],
            "(service web) (deployment d2) deployment failed: tasks failed to start."
        );
        // The rollback completing finishes the failed service deployment.
        let done = complete_primary(&mut r, &mut ids, 9.0).expect("completes");
        assert_eq!(
            (done.arn.as_str(), done.status),
            ("sd-d2", ServiceDeploymentStatus::RollbackSuccessful)
        );
    }

    #[test]
    fn without_rollback_the_failed_deployment_stays_primary() {
        let mut r = record(Some((true, false)));
        let mut ids = Counter::default();
        deploy(&mut r, "d1", "web:1");
        complete_primary(&mut r, &mut ids, 2.0);
        deploy(&mut r, "d2", "web:2");
        let mut updates = Vec::new();
        for _ in 0..3 {
            updates.extend(count_failure(&mut r, "d2", &mut ids, 3.0));
        }
        assert_eq!(updates[0].status, ServiceDeploymentStatus::Stopped);
        assert_eq!(
            statuses(&r)[0],
            ("d2".into(), "PRIMARY".into(), "FAILED".into())
        );
    }

    #[test]
    fn with_the_breaker_off_failures_are_only_counted() {
        let mut r = record(None);
        let mut ids = Counter::default();
        deploy(&mut r, "d1", "web:1");
        for _ in 0..10 {
            assert!(count_failure(&mut r, "d1", &mut ids, 3.0).is_empty());
        }
        assert_eq!(r.primary().and_then(|p| p.failed_tasks), Some(10));
        assert_eq!(
            r.primary().and_then(|p| p.rollout_state),
            Some(DeploymentRolloutState::InProgress)
        );
    }
}
