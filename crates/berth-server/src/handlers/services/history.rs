//! What a new deployment or a deletion does to a service's deployment history: the PRIMARY
//! that already reached its steady state is completed, and service deployments still under
//! way are stopped (superseded).

use super::{RandomIds, TaskCounts};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::service_deployments::apply_history;
use berth_core::model::service::ServiceDeployment;
use berth_core::model::{DeploymentRolloutState, ServiceDeploymentStatus};
use berth_core::service::lifecycle::HistoryUpdate;
use berth_core::service::ServiceRecord;
use berth_store::keys;

/// Marks the PRIMARY deployment COMPLETED when it already runs its desired count with nothing
/// pending and no other deployment is left — what `aws ecs wait services-stable` reports as
/// stable — but the controller has not marked it yet. An update arriving in that moment must
/// still find it as the deployment a circuit breaker rolls back to.
pub(super) fn complete_if_steady(
    ctx: &Ctx,
    cluster: &str,
    record: &mut ServiceRecord,
    now: f64,
) -> Result<Option<HistoryUpdate>, ApiError> {
    let deployments = record.service.deployments.as_deref().unwrap_or_default();
    let [primary] = deployments else {
        return Ok(None);
    };
    if primary.rollout_state != Some(DeploymentRolloutState::InProgress) {
        return Ok(None);
    }
    let id = primary.id.clone().unwrap_or_default();
    let desired = primary.desired_count.unwrap_or(0);
    if TaskCounts::of(ctx, cluster)?.deployment(&id) != (desired, 0) {
        return Ok(None);
    }
    Ok(berth_core::service::lifecycle::complete_primary(
        record,
        &mut RandomIds,
        now,
    ))
}

/// The service deployments still under way that a new deployment stops: their keys,
/// revisions and new contents — STOPPED, except the one `completed` finishes (SUCCESSFUL).
pub(super) fn superseded_history(
    ctx: &Ctx,
    cluster: &str,
    service: &str,
    record: &ServiceRecord,
    completed: Option<&HistoryUpdate>,
    now: f64,
) -> Result<Vec<(String, u64, ServiceDeployment)>, ApiError> {
    let mut out = Vec::new();
    let arns: Vec<&str> = record
        .state
        .deployments
        .iter()
        .map(|d| d.service_deployment_arn.as_str())
        .collect();
    for stored in ctx.list::<ServiceDeployment>(&keys::service_deployments_of(cluster, service))? {
        let arn = stored
            .value
            .service_deployment_arn
            .clone()
            .unwrap_or_default();
        let running = matches!(
            stored.value.status,
            Some(
                ServiceDeploymentStatus::Pending
                    | ServiceDeploymentStatus::InProgress
                    | ServiceDeploymentStatus::RollbackRequested
                    | ServiceDeploymentStatus::RollbackInProgress
            )
        );
        if !running || !arns.contains(&arn.as_str()) {
            continue;
        }
        let id = arn.rsplit('/').next().unwrap_or_default().to_string();
        let mut sd = stored.value;
        match completed.filter(|c| c.arn == arn) {
            Some(update) => apply_history(&mut sd, update, now),
            None => apply_history(
                &mut sd,
                &HistoryUpdate {
                    arn,
                    status: ServiceDeploymentStatus::Stopped,
                    status_reason: Some("Superseded by a newer service deployment.".into()),
                    finished: true,
                    rollback: None,
                    circuit_breaker: None,
                },
                now,
            ),
        }
        out.push((
            keys::service_deployment(cluster, service, &id),
            stored.mod_revision,
            sd,
        ));
    }
    Ok(out)
}
