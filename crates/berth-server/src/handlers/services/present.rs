//! What callers see of a stored service: live task counts (service, deployments, revisions),
//! no internal state, tags only when asked for. And the records a new deployment writes: its
//! service revision and service deployment.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::state::{scoped, State};
use berth_core::model::service::{
    ContainerImage, DeploymentConfiguration, Service, ServiceCurrentRevisionSummary,
    ServiceDeployment, ServiceDeploymentCircuitBreaker, ServiceRevision, ServiceRevisionSummary,
    TaskSet,
};
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::{RollbackMonitorsStatus, ServiceDeploymentStatus, ServiceStatus};
use berth_core::service::bounds::breaker_threshold;
use berth_core::service::record::{service_deployment_arn, service_revision_arn};
use berth_core::service::{IdSource, ServiceRecord};
use std::sync::Arc;

/// Identifiers from randomness: deployment ids `ecs-svc/` + 19 digits, event ids UUIDs.
#[derive(Debug, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn deployment_id(&mut self) -> String {
        format!("ecs-svc/{}", nineteen_digits())
    }
    fn event_id(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// A random 19-digit number (no leading zero), as ECS deployment and revision ids.
pub fn nineteen_digits() -> String {
    let random = uuid::Uuid::new_v4().as_u128();
    let low = 1_000_000_000_000_000_000u128;
    (low + random % (9 * low)).to_string()
}

/// Running and pending tasks of a cluster's services and deployments: the state cache keeps
/// them as counters, so each is O(1).
#[derive(Debug)]
pub struct TaskCounts {
    state: Arc<State>,
    cluster: String,
}

impl TaskCounts {
    /// No tasks at all (a service just created).
    pub fn none() -> TaskCounts {
        TaskCounts {
            state: Arc::new(State::default()),
            cluster: String::new(),
        }
    }

    /// Counts the tasks of the services of `cluster`: RUNNING ones, and PENDING ones
    /// (provisioning, pending or activating).
    pub fn of(ctx: &Ctx, cluster: &str) -> Result<TaskCounts, ApiError> {
        Ok(TaskCounts {
            state: ctx.snapshot(),
            cluster: cluster.to_string(),
        })
    }

    /// (running, pending) of service `name`, from the cache's counters.
    pub fn service(&self, name: &str) -> (i32, i32) {
        narrow(self.state.service_task_counts(&scoped(&self.cluster, name)))
    }

    /// (running, pending) of deployment `id`, from the cache's counters.
    pub fn deployment(&self, id: &str) -> (i32, i32) {
        narrow(
            self.state
                .deployment_task_counts(&scoped(&self.cluster, id)),
        )
    }
}

fn narrow((running, pending): (i64, i64)) -> (i32, i32) {
    let clamp = |n: i64| i32::try_from(n.max(0)).unwrap_or(i32::MAX);
    (clamp(running), clamp(pending))
}

/// The service as the API returns it: live counts, the current service deployment and
/// revisions, its tags only when `with_tags` and it has some.
pub fn present(record: &ServiceRecord, counts: &TaskCounts, with_tags: bool) -> Service {
    let mut service = record.service.clone();
    let (running, pending) = Some(counts.service(record.name()))
        .as_ref()
        .copied()
        .unwrap_or_default();
    service.running_count = Some(running);
    service.pending_count = Some(pending);
    let mut revisions: Vec<ServiceCurrentRevisionSummary> = Vec::new();
    for deployment in service.deployments.iter_mut().flatten() {
        let id = deployment.id.clone().unwrap_or_default();
        let (running, pending) = counts.deployment(&id);
        deployment.running_count = Some(running);
        deployment.pending_count = Some(pending);
        deployment.failed_tasks.get_or_insert(0);
        if record.service.status == Some(ServiceStatus::Inactive) {
            continue;
        }
        let Some(state) = record.deployment_state(&id) else {
            continue;
        };
        match revisions
            .iter_mut()
            .find(|r| r.arn.as_deref() == Some(state.service_revision_arn.as_str()))
        {
            Some(summary) => {
                add(&mut summary.requested_task_count, deployment.desired_count);
                add(&mut summary.running_task_count, Some(running));
                add(&mut summary.pending_task_count, Some(pending));
            }
            None => revisions.push(ServiceCurrentRevisionSummary {
                arn: Some(state.service_revision_arn.clone()),
                requested_task_count: Some(deployment.desired_count.unwrap_or(0)),
                running_task_count: Some(running),
                pending_task_count: Some(pending),
            }),
        }
    }
    service.current_service_revisions = Some(revisions);
    if let Some(sets) = service.task_sets.as_mut() {
        for set in sets.iter_mut() {
            *set = present_task_set(set, counts, false);
        }
    }
    service.current_service_deployment = record
        .primary()
        .and_then(|p| p.id.as_deref())
        .and_then(|id| record.deployment_state(id))
        .map(|s| s.service_deployment_arn.clone());
    service.events.get_or_insert_with(Vec::new);
    // CreateService and UpdateService show a service's tags, and no `tags` at all when it has
    // none, as ECS does; DescribeServices with TAGS shows `[]` for an untagged one itself.
    if !with_tags || service.tags.as_ref().is_some_and(Vec::is_empty) {
        service.tags = None;
    }
    service
}

/// A task set as the API returns it: running and pending counts of its tasks (started by its
/// id), tags only when `with_tags`.
pub fn present_task_set(set: &TaskSet, counts: &TaskCounts, with_tags: bool) -> TaskSet {
    let mut set = set.clone();
    let (running, pending) = counts.deployment(set.id.as_deref().unwrap_or_default());
    set.running_count = Some(running);
    set.pending_count = Some(pending);
    set.client_token = None;
    // As ECS: tags only when asked for, and an empty list not at all.
    if !with_tags || set.tags.as_ref().is_some_and(Vec::is_empty) {
        set.tags = None;
    }
    set
}

fn add(total: &mut Option<i32>, more: Option<i32>) {
    *total = Some(total.unwrap_or(0).saturating_add(more.unwrap_or(0)));
}

/// A new service revision of `service` running `td`: `(id, record)`.
pub fn new_revision(
    ctx: &Ctx,
    cluster: &str,
    service: &Service,
    td: &TaskDefinition,
    now: f64,
) -> (String, ServiceRevision) {
    let id = nineteen_digits();
    let name = service.service_name.as_deref().unwrap_or_default();
    let images = td
        .container_definitions
        .iter()
        .flatten()
        .map(|c| ContainerImage {
            container_name: c.name.clone(),
            image: c.image.clone(),
            image_digest: None,
        })
        .collect();
    let revision = ServiceRevision {
        service_revision_arn: Some(service_revision_arn(&ctx.arns, cluster, name, &id)),
        service_arn: service.service_arn.clone(),
        cluster_arn: service.cluster_arn.clone(),
        task_definition: td.task_definition_arn.clone(),
        launch_type: service.launch_type.clone(),
        load_balancers: Some(service.load_balancers.clone().unwrap_or_default()),
        service_registries: Some(service.service_registries.clone().unwrap_or_default()),
        container_images: Some(images),
        guard_duty_enabled: Some(false),
        created_at: Some(now),
        ..ServiceRevision::default()
    };
    (id, revision)
}

/// The breaker summary a service deployment starts with.
pub fn initial_breaker(
    config: Option<&DeploymentConfiguration>,
    desired: i32,
) -> ServiceDeploymentCircuitBreaker {
    let enabled = config
        .and_then(|c| c.deployment_circuit_breaker)
        .is_some_and(|b| b.enable);
    let desired = u32::try_from(desired.max(0)).unwrap_or(0);
    ServiceDeploymentCircuitBreaker {
        status: Some(if enabled {
            RollbackMonitorsStatus::Monitoring
        } else {
            RollbackMonitorsStatus::Disabled
        }),
        failure_count: Some(0),
        threshold: Some(i32::try_from(breaker_threshold(desired)).unwrap_or(i32::MAX)),
    }
}

/// A new service deployment of `service` towards the revision `target`, from `sources`:
/// `(id, record)`.
pub fn new_service_deployment(
    ctx: &Ctx,
    cluster: &str,
    service: &Service,
    target: &str,
    sources: Vec<ServiceRevisionSummary>,
    now: f64,
) -> (String, ServiceDeployment) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = service.service_name.as_deref().unwrap_or_default();
    let desired = service.desired_count.unwrap_or(0);
    // Later than every deployment before it, even one made in the same millisecond: the
    // history lists newest first by creation time.
    let now = service
        .deployments
        .iter()
        .flatten()
        .filter_map(|d| d.created_at)
        .fold(
            now,
            |at, earlier| if earlier >= at { earlier + 0.001 } else { at },
        );
    let deployment = ServiceDeployment {
        service_deployment_arn: Some(service_deployment_arn(&ctx.arns, cluster, name, &id)),
        service_arn: service.service_arn.clone(),
        cluster_arn: service.cluster_arn.clone(),
        created_at: Some(now),
        started_at: Some(now),
        updated_at: Some(now),
        source_service_revisions: Some(sources),
        target_service_revision: Some(ServiceRevisionSummary {
            arn: Some(target.to_string()),
            requested_task_count: Some(desired),
            running_task_count: Some(0),
            pending_task_count: Some(0),
            ..ServiceRevisionSummary::default()
        }),
        status: Some(ServiceDeploymentStatus::InProgress),
        deployment_configuration: service.deployment_configuration.clone(),
        deployment_circuit_breaker: Some(initial_breaker(
            service.deployment_configuration.as_ref(),
            desired,
        )),
        ..ServiceDeployment::default()
    };
    (id, deployment)
}
