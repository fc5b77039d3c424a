//! The service deployment history: ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions and StopServiceDeployment (rollback). A service deployment is one
//! change of a service towards a target revision; a circuit-breaker or requested rollback is
//! part of the service deployment it undoes, as in ECS.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::services::{service_name_of, service_not_found, RandomIds, TaskCounts};
use berth_core::model::service::{
    CreatedAt, Rollback, ServiceDeployment, ServiceDeploymentBrief, ServiceRevision,
    ServiceRevisionSummary,
};
use berth_core::model::Failure;
use berth_core::model::{DeploymentRolloutState, ServiceDeploymentStatus};
use berth_core::pagination::PageRequest;
use berth_core::service::events;
use berth_core::service::lifecycle::{roll_back_to, HistoryUpdate};
use berth_core::service::record::parse_history_arn;
use berth_core::service::ServiceRecord;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Input of ListServiceDeployments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsRequest {
    service: String,
    cluster: Option<String>,
    status: Option<Vec<String>>,
    created_at: Option<CreatedAt>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of ListServiceDeployments.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsResponse {
    service_deployments: Vec<ServiceDeploymentBrief>,
    next_token: Option<String>,
}

/// Input of DescribeServiceDeployments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsRequest {
    service_deployment_arns: Vec<String>,
}

/// Output of DescribeServiceDeployments.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsResponse {
    service_deployments: Vec<ServiceDeployment>,
    failures: Vec<Failure>,
}

/// Input of DescribeServiceRevisions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsRequest {
    service_revision_arns: Vec<String>,
}

/// Output of DescribeServiceRevisions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsResponse {
    service_revisions: Vec<ServiceRevision>,
    failures: Vec<Failure>,
}

/// Input of StopServiceDeployment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentRequest {
    service_deployment_arn: String,
    stop_type: Option<String>,
}

/// Output of StopServiceDeployment.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentResponse {
    service_deployment_arn: String,
}

/// Most ARNs one Describe call takes.
const MAX_DESCRIBE: usize = 20;

/// Applies a history change to a stored service deployment.
pub fn apply_history(sd: &mut ServiceDeployment, update: &HistoryUpdate, now: f64) {
    sd.status = Some(update.status);
    if update.status_reason.is_some() {
        sd.status_reason = update.status_reason.clone();
    }
    sd.updated_at = Some(now);
    if update.finished {
        sd.finished_at.get_or_insert(now);
        if update.status == ServiceDeploymentStatus::Stopped {
            sd.stopped_at.get_or_insert(now);
        }
        if matches!(
            update.status,
            ServiceDeploymentStatus::Successful | ServiceDeploymentStatus::RollbackSuccessful
        ) {
            let summary = if update.status == ServiceDeploymentStatus::Successful {
                sd.target_service_revision.as_mut()
            } else {
                None
            };
            if let Some(target) = summary {
                target.running_task_count = target.requested_task_count;
                target.pending_task_count = Some(0);
            }
        }
    }
    if update.rollback.is_some() {
        sd.rollback = update.rollback.clone();
    }
    if update.circuit_breaker.is_some() {
        sd.deployment_circuit_breaker = update.circuit_breaker.clone();
    }
}

/// The revisions a service runs now, with their task counts: the sources of a new service
/// deployment.
pub fn source_revisions(
    ctx: &Ctx,
    cluster: &str,
    record: &ServiceRecord,
) -> Result<Vec<ServiceRevisionSummary>, ApiError> {
    let counts = TaskCounts::of(ctx, cluster)?;
    let service = crate::handlers::services::present(record, &counts, false);
    Ok(service
        .current_service_revisions
        .unwrap_or_default()
        .into_iter()
        .map(|r| ServiceRevisionSummary {
            arn: r.arn,
            requested_task_count: r.requested_task_count,
            running_task_count: r.running_task_count,
            pending_task_count: r.pending_task_count,
            ..ServiceRevisionSummary::default()
        })
        .collect())
}

/// A service deployment under way with live counts: its target revision's tasks and its
/// deployments' failures, from the service's current deployments.
fn refresh(sd: &mut ServiceDeployment, record: &ServiceRecord, counts: &TaskCounts) {
    let arn = sd.service_deployment_arn.clone().unwrap_or_default();
    if sd.status.is_some_and(ServiceDeploymentStatus::is_terminal) {
        return;
    }
    let target = sd
        .target_service_revision
        .as_ref()
        .and_then(|t| t.arn.clone())
        .unwrap_or_default();
    let mut running = 0;
    let mut pending = 0;
    let mut failures = 0;
    for state in record
        .state
        .deployments
        .iter()
        .filter(|d| d.service_deployment_arn == arn)
    {
        let deployment = record
            .deployments()
            .iter()
            .find(|d| d.id.as_deref() == Some(state.id.as_str()));
        if state.rollback_of.is_none() {
            failures += deployment.and_then(|d| d.failed_tasks).unwrap_or(0);
        }
        if state.service_revision_arn == target {
            let (r, p) = counts.deployment(&state.id);
            running += r;
            pending += p;
        }
    }
    if let Some(t) = sd.target_service_revision.as_mut() {
        t.requested_task_count = record.service.desired_count;
        t.running_task_count = Some(running);
        t.pending_task_count = Some(pending);
    }
    if let Some(breaker) = sd.deployment_circuit_breaker.as_mut() {
        breaker.failure_count = Some(failures.max(breaker.failure_count.unwrap_or(0)));
    }
}

/// Lists a service's deployments, newest first, filtered by status and creation time.
pub async fn list(
    ctx: Ctx,
    req: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let name = service_name_of(&cluster_name, &req.service)?;
    let page = PageRequest::parse(
        req.next_token.as_deref(),
        Some(req.max_results.unwrap_or(20)),
        100,
    )?;
    let statuses = req
        .status
        .unwrap_or_default()
        .iter()
        .map(|text| {
            ServiceDeploymentStatus::parse(text).ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "'{text}' is not a service deployment status: use one of {}.",
                    ServiceDeploymentStatus::join(ServiceDeploymentStatus::ALL)
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ctx
        .get::<ServiceRecord>(&keys::service(&cluster_name, &name))?
        .is_none()
    {
        return Err(service_not_found());
    }
    let created = req.created_at.unwrap_or_default();
    let mut found: Vec<ServiceDeployment> = ctx
        .list::<ServiceDeployment>(&keys::service_deployments_of(&cluster_name, &name))?
        .into_iter()
        .map(|v| v.value)
        .filter(|sd| statuses.is_empty() || sd.status.is_some_and(|s| statuses.contains(&s)))
        .filter(|sd| {
            let at = sd.created_at.unwrap_or(0.0);
            created.before.is_none_or(|b| at <= b) && created.after.is_none_or(|a| at >= a)
        })
        .collect();
    found.sort_by_key(order_key);
    let (page_items, next_token) = page.page(found, order_key);
    Ok(ListServiceDeploymentsResponse {
        service_deployments: page_items
            .into_iter()
            .map(|sd| ServiceDeploymentBrief {
                service_deployment_arn: sd.service_deployment_arn,
                service_arn: sd.service_arn,
                cluster_arn: sd.cluster_arn,
                started_at: sd.started_at,
                created_at: sd.created_at,
                finished_at: sd.finished_at,
                target_service_revision_arn: sd.target_service_revision.and_then(|t| t.arn),
                status: sd.status,
                status_reason: sd.status_reason,
            })
            .collect(),
        next_token,
    })
}

/// Newest first: the key sorts by descending creation time, then ARN.
fn order_key(sd: &ServiceDeployment) -> String {
    let millis = (sd.created_at.unwrap_or(0.0) * 1000.0).max(0.0) as u64;
    format!(
        "{:020}|{}",
        u64::MAX / 2 - millis.min(u64::MAX / 2),
        sd.service_deployment_arn.as_deref().unwrap_or_default()
    )
}

/// Describes service deployments by ARN; unknown ones are `MISSING` failures.
pub async fn describe(
    ctx: Ctx,
    req: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, ApiError> {
    if req.service_deployment_arns.is_empty() || req.service_deployment_arns.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid_parameter(format!(
            "serviceDeploymentArns must name 1 to {MAX_DESCRIBE} service deployments."
        )));
    }
    let mut service_deployments = Vec::new();
    let mut failures = Vec::new();
    for arn in &req.service_deployment_arns {
        let Some((cluster, service, id)) = parse_history_arn(arn, "service-deployment") else {
            failures.push(Failure::new(arn.clone(), "MISSING"));
            continue;
        };
        let stored =
            ctx.get::<ServiceDeployment>(&keys::service_deployment(&cluster, &service, &id))?;
        let Some(stored) = stored else {
            failures.push(Failure::new(arn.clone(), "MISSING"));
            continue;
        };
        let mut sd = stored.value;
        if let Some(record) = ctx.get::<ServiceRecord>(&keys::service(&cluster, &service))? {
            let counts = TaskCounts::of(&ctx, &cluster)?;
            refresh(&mut sd, &record.value, &counts);
        }
        service_deployments.push(sd);
    }
    Ok(DescribeServiceDeploymentsResponse {
        service_deployments,
        failures,
    })
}

/// Describes service revisions by ARN; unknown ones are `MISSING` failures.
pub async fn describe_revisions(
    ctx: Ctx,
    req: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, ApiError> {
    if req.service_revision_arns.is_empty() || req.service_revision_arns.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid_parameter(format!(
            "serviceRevisionArns must name 1 to {MAX_DESCRIBE} service revisions."
        )));
    }
    let mut service_revisions = Vec::new();
    let mut failures = Vec::new();
    for arn in &req.service_revision_arns {
        let found = match parse_history_arn(arn, "service-revision") {
            Some((cluster, service, id)) => ctx
                .get::<ServiceRevision>(&keys::service_revision(&cluster, &service, &id))?
                .map(|v| v.value),
            None => None,
        };
        match found {
            Some(revision) => service_revisions.push(revision),
            None => failures.push(Failure::new(arn.clone(), "MISSING")),
        }
    }
    Ok(DescribeServiceRevisionsResponse {
        service_revisions,
        failures,
    })
}

fn deployment_not_found() -> ApiError {
    ApiError::new(
        "ServiceDeploymentNotFoundException",
        "Service deployment not found: pass an ARN that ListServiceDeployments returns.",
    )
}

/// Stops a service deployment under way by rolling the service back to its last completed
/// deployment (stopType ROLLBACK, the default). The rollback is part of this service
/// deployment: ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED.
pub async fn stop(
    ctx: Ctx,
    req: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, ApiError> {
    match req.stop_type.as_deref() {
        None | Some("ROLLBACK") => {}
        Some("ABORT") => {
            return Err(ApiError::invalid_parameter(
                "stopType ABORT is not supported: use ROLLBACK, which returns the service to its \
                 last completed deployment.",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "'{other}' is not a stop type: use ROLLBACK."
            )))
        }
    }
    let arn = req.service_deployment_arn.clone();
    let (cluster, service, id) =
        parse_history_arn(&arn, "service-deployment").ok_or_else(deployment_not_found)?;
    let sd_key = keys::service_deployment(&cluster, &service, &id);
    let service_key = keys::service(&cluster, &service);
    loop {
        let sd = ctx
            .get::<ServiceDeployment>(&sd_key)?
            .ok_or_else(deployment_not_found)?;
        match sd.value.status {
            Some(ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress) => {}
            Some(
                ServiceDeploymentStatus::StopRequested
                | ServiceDeploymentStatus::RollbackRequested
                | ServiceDeploymentStatus::RollbackInProgress,
            ) => {
                return Ok(StopServiceDeploymentResponse {
                    service_deployment_arn: arn,
                })
            }
            other => {
                let other = other.map_or("", ServiceDeploymentStatus::as_str);
                return Err(ApiError::new(
                    "ConflictException",
                    format!("The service deployment is {other}: only a service deployment in progress can be stopped."),
                ));
            }
        }
        let record = ctx
            .get::<ServiceRecord>(&service_key)?
            .ok_or_else(deployment_not_found)?;
        let mut updated = record.value.clone();
        let primary = updated
            .primary()
            .and_then(|p| p.id.clone())
            .filter(|p| {
                updated
                    .deployment_state(p)
                    .is_some_and(|s| s.service_deployment_arn == arn)
            })
            .ok_or_else(|| {
                ApiError::new(
                    "ConflictException",
                    "The service deployment is no longer the service's current deployment.",
                )
            })?;
        let target = updated.state.last_completed.clone().ok_or_else(|| {
            ApiError::new(
                "ConflictException",
                "The service has no completed deployment to roll back to.",
            )
        })?;
        let now = ctx.now();
        let name = updated.name().to_string();
        if let Some(p) = updated.primary_mut() {
            p.rollout_state = Some(DeploymentRolloutState::Failed);
            p.rollout_state_reason =
                Some("ECS deployment stopped by StopServiceDeployment.".into());
            p.updated_at = Some(now);
        }
        let mut ids = RandomIds;
        updated.push_event(
            &mut ids,
            events::deployment_stopped(&name, &primary, &target.deployment_id),
            now,
        );
        roll_back_to(
            &mut updated,
            &target,
            &primary,
            &arn,
            events::reason_stopped_rolling_back(&target.deployment_id),
            &mut ids,
            now,
        );
        let mut new_sd = sd.value.clone();
        apply_history(
            &mut new_sd,
            &HistoryUpdate {
                arn: arn.clone(),
                status: ServiceDeploymentStatus::RollbackInProgress,
                status_reason: Some("Stopped by StopServiceDeployment: rolling back.".into()),
                finished: false,
                rollback: Some(Rollback {
                    reason: Some("StopServiceDeployment requested a rollback.".into()),
                    started_at: Some(now),
                    service_revision_arn: Some(target.service_revision_arn.clone()),
                }),
                circuit_breaker: None,
            },
            now,
        );
        let txn = Txn::new()
            .when(Compare::at(&sd_key, sd.mod_revision))
            .when(Compare::at(&service_key, record.mod_revision))
            .put(&sd_key, encode(&new_sd))
            .put(&service_key, encode(&updated));
        if ctx.commit(txn).await?.succeeded {
            return Ok(StopServiceDeploymentResponse {
                service_deployment_arn: arn,
            });
        }
    }
}
