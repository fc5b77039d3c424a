//! Services: CreateService, UpdateService, DeleteService, DescribeServices and ListServices.
//! The handlers write intent — the service, its deployments, a new service revision and
//! service deployment — and the service controller (controllers/services) makes tasks follow.

mod external;
mod history;
pub(crate) mod load_balancers;
mod present;
pub(crate) mod registries;
mod requests;
pub(crate) mod validate;

pub use present::{present, present_task_set, RandomIds, TaskCounts};
pub use requests::*;

use history::{complete_if_steady, superseded_history};

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::capacity_providers::strategy as capacity_strategy;
use crate::handlers::service_deployments::source_revisions;
use crate::handlers::task_lookup::resolve_task_definition;
use berth_core::arn::Arn;
use berth_core::model::service::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentController, Service,
};
use berth_core::model::{validate_tags, Failure, ServiceStatus};
use berth_core::names::{invalid_name_message, is_valid_name};
use berth_core::pagination::PageRequest;
use berth_core::service::bounds::{
    DAEMON_MAX_PERCENT, DAEMON_MIN_HEALTHY_PERCENT, REPLICA_MAX_PERCENT,
    REPLICA_MIN_HEALTHY_PERCENT,
};
use berth_core::service::events::{reason_in_progress, REASON_SERVICE_DELETED};
use berth_core::service::lifecycle::{start_deployment, NewDeployment};
use berth_core::service::ServiceRecord;
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};

/// ServiceNotFoundException, as ECS words it.
pub fn service_not_found() -> ApiError {
    ApiError::new("ServiceNotFoundException", "Service not found.")
}

/// The name of the service a reference (name or service ARN) names in `cluster`. Long ARNs
/// (`service/{cluster}/{name}`) of another cluster name no service here.
pub fn service_name_of(cluster: &str, reference: &str) -> Result<String, ApiError> {
    let name = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .filter(|a| a.resource_type == "service")
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "'{reference}' is not a service name or service ARN."
                ))
            })?;
        match arn.path.as_slice() {
            [name] => name.clone(),
            [other, name] if other == cluster => name.clone(),
            [_, _] => return Err(service_not_found()),
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "'{reference}' is not a service ARN."
                )))
            }
        }
    } else {
        reference.to_string()
    };
    if is_valid_name(&name) {
        Ok(name)
    } else {
        Err(ApiError::invalid_parameter(invalid_name_message(
            "Service name",
            &name,
        )))
    }
}

/// The default deployment configuration, with what the request gave laid over it.
fn with_defaults(config: Option<DeploymentConfiguration>, daemon: bool) -> DeploymentConfiguration {
    let mut config = config.unwrap_or_default();
    let (min, max) = if daemon {
        (DAEMON_MIN_HEALTHY_PERCENT, DAEMON_MAX_PERCENT)
    } else {
        (REPLICA_MIN_HEALTHY_PERCENT, REPLICA_MAX_PERCENT)
    };
    config.minimum_healthy_percent.get_or_insert(min);
    config.maximum_percent.get_or_insert(max);
    config
        .deployment_circuit_breaker
        .get_or_insert(DeploymentCircuitBreaker::default());
    config
}

/// Lays the members an UpdateService gave over the current configuration.
fn merge_configuration(current: &mut DeploymentConfiguration, update: &DeploymentConfiguration) {
    if update.minimum_healthy_percent.is_some() {
        current.minimum_healthy_percent = update.minimum_healthy_percent;
    }
    if update.maximum_percent.is_some() {
        current.maximum_percent = update.maximum_percent;
    }
    if update.deployment_circuit_breaker.is_some() {
        current.deployment_circuit_breaker = update.deployment_circuit_breaker;
    }
    if update.alarms.is_some() {
        current.alarms = update.alarms.clone();
    }
    if update.strategy.is_some() {
        current.strategy = update.strategy.clone();
    }
    if update.bake_time_in_minutes.is_some() {
        current.bake_time_in_minutes = update.bake_time_in_minutes;
    }
}

/// Creates a service: the record with its first (PRIMARY) deployment, its first service
/// revision and service deployment. The controller then starts its tasks.
pub async fn create_service(
    ctx: Ctx,
    req: CreateServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    if !is_valid_name(&req.service_name) {
        return Err(ApiError::invalid_parameter(invalid_name_message(
            "Service name",
            &req.service_name,
        )));
    }
    validate::refuse_unsupported(&validate::Unsupported {
        service_connect_configuration: req.service_connect_configuration.as_ref(),
        volume_configurations: req.volume_configurations.as_deref(),
        vpc_lattice_configurations: req.vpc_lattice_configurations.as_deref(),
        deployment_controller: req.deployment_controller.as_ref(),
    })?;
    if external::wants_task_sets(&req) {
        return external::create(ctx, req, cluster).await;
    }
    let strategy = validate::scheduling_strategy(req.scheduling_strategy.as_deref())?;
    let daemon = strategy == "DAEMON";
    // A capacity provider strategy (the call's, or the cluster's default when the call names
    // no launch type) replaces the launch type; its providers' launch type is checked as one.
    let capacity = capacity_strategy::resolve_for_service(
        &ctx,
        &cluster.value,
        req.launch_type.as_deref(),
        req.capacity_provider_strategy.as_deref(),
        daemon,
    )?;
    let launch_type = validate::launch_type(
        capacity
            .as_ref()
            .map(|c| c.launch_type)
            .or(req.launch_type.as_deref()),
    )?;
    validate::platform_version(&launch_type, req.platform_version.as_deref())?;
    validate::desired_count(req.desired_count, daemon, true)?;
    validate::grace_period(req.health_check_grace_period_seconds)?;
    validate::propagate_tags(req.propagate_tags.as_deref())?;
    validate::az_rebalancing(req.availability_zone_rebalancing.as_deref())?;
    validate::deployment_configuration(req.deployment_configuration.as_ref(), daemon)?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags).map_err(ApiError::invalid_parameter)?;
    let reference = req.task_definition.as_deref().ok_or_else(|| {
        ApiError::invalid_parameter(
            "taskDefinition is required: name the task definition (family, family:revision or \
             ARN) the service runs.",
        )
    })?;
    let td = resolve_task_definition(&ctx, reference)?
        .task_definition
        .clone();
    validate::task_definition(&td, reference, &launch_type)?;
    validate::network(&td, &launch_type, req.network_configuration.as_ref())?;
    super::admission::admit_on_cluster(&cluster.value, &td)?;
    let constraints = req.placement_constraints.clone().unwrap_or_default();
    let strategies = req.placement_strategy.clone().unwrap_or_default();
    validate::placement(&constraints, &strategies, &td, daemon)?;
    let lbs = load_balancers::check(&ctx, req.load_balancers.as_deref().unwrap_or_default(), &td)?;
    let registries = registries::check(
        &ctx,
        req.service_registries.as_deref().unwrap_or_default(),
        &td,
    )?;

    let key = keys::service(&cluster_name, &req.service_name);
    loop {
        let existing = ctx.get::<ServiceRecord>(&key)?;
        let revision = existing.as_ref().map_or(0, |e| e.mod_revision);
        if let Some(answer) = replay_create(
            &ctx,
            &cluster_name,
            existing.as_ref(),
            req.client_token.as_ref(),
        )? {
            return Ok(answer);
        }
        let now = ctx.now();
        let desired = if daemon {
            let facts = crate::controllers::services::observe::instance_facts(
                &ctx,
                &cluster_name,
                &constraints,
                &td,
            )?;
            i32::try_from(facts.iter().filter(|f| f.eligible).count()).unwrap_or(i32::MAX)
        } else {
            req.desired_count.unwrap_or(0)
        };
        let service = Service {
            service_arn: Some(ctx.arns.service(&cluster_name, &req.service_name)),
            service_name: Some(req.service_name.clone()),
            cluster_arn: Some(ctx.arns.cluster(&cluster_name)),
            load_balancers: Some(lbs.clone()),
            service_registries: Some(registries.clone()),
            status: Some(ServiceStatus::Active),
            desired_count: Some(desired),
            launch_type: capacity.is_none().then(|| launch_type.clone()),
            capacity_provider_strategy: capacity.as_ref().map(|c| c.items.clone()),
            network_configuration: req.network_configuration.clone(),
            platform_version: (launch_type == "FARGATE").then(|| "LATEST".to_string()),
            platform_family: (launch_type == "FARGATE").then(|| "Linux".to_string()),
            deployment_configuration: Some(with_defaults(
                req.deployment_configuration.clone(),
                daemon,
            )),
            deployments: Some(Vec::new()),
            role_arn: req.role.clone(),
            events: Some(Vec::new()),
            created_at: Some(now),
            placement_constraints: Some(constraints.clone()),
            placement_strategy: Some(strategies.clone()),
            health_check_grace_period_seconds: req.health_check_grace_period_seconds,
            scheduling_strategy: Some(strategy.clone()),
            deployment_controller: Some(DeploymentController {
                type_: "ECS".into(),
            }),
            tags: Some(tags.clone()),
            created_by: Some(format!("arn:aws:iam::{}:root", ctx.arns.account_id)),
            enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
            propagate_tags: Some(req.propagate_tags.clone().unwrap_or_else(|| "NONE".into())),
            enable_execute_command: Some(req.enable_execute_command.unwrap_or(false)),
            availability_zone_rebalancing: req.availability_zone_rebalancing.clone(),
            ..Service::default()
        };
        let mut record = ServiceRecord {
            service,
            ..ServiceRecord::default()
        };
        record.state.client_token = req.client_token.clone();
        let txn = Txn::new().when(Compare::at(&key, revision));
        let txn = begin_deployment(
            &ctx,
            &cluster_name,
            &mut record,
            &td,
            &launch_type,
            Vec::new(),
            now,
            txn,
        )
        .put(&key, encode(&record));
        if ctx.commit(txn).await?.succeeded {
            return Ok(ServiceResponse {
                service: present(&record, &TaskCounts::none(), true),
            });
        }
    }
}

/// The UpdateService settings that apply in place, with no new deployment, on any service.
pub(super) fn apply_in_place(s: &mut Service, req: &UpdateServiceRequest) {
    if let Some(g) = req.health_check_grace_period_seconds {
        s.health_check_grace_period_seconds = Some(g);
    }
    if let Some(v) = req.enable_ecs_managed_tags {
        s.enable_ecs_managed_tags = Some(v);
    }
    if let Some(v) = &req.propagate_tags {
        s.propagate_tags = Some(v.clone());
    }
    if let Some(v) = req.enable_execute_command {
        s.enable_execute_command = Some(v);
    }
}

/// What CreateService answers when a service of its name is on record: the service again for
/// a retry with the same client token (`Some`), an error for an ACTIVE or DRAINING one
/// otherwise; `None` when there is none, or only an INACTIVE one (which is replaced).
pub(super) fn replay_create(
    ctx: &Ctx,
    cluster: &str,
    existing: Option<&berth_store::typed::Versioned<ServiceRecord>>,
    client_token: Option<&String>,
) -> Result<Option<ServiceResponse>, ApiError> {
    let Some(existing) = existing else {
        return Ok(None);
    };
    match existing.value.service.status {
        Some(ServiceStatus::Active) => {
            if client_token.is_some() && existing.value.state.client_token.as_ref() == client_token
            {
                let counts = TaskCounts::of(ctx, cluster)?;
                return Ok(Some(ServiceResponse {
                    service: present(&existing.value, &counts, true),
                }));
            }
            Err(ApiError::invalid_parameter(
                "Creation of service was not idempotent.",
            ))
        }
        Some(ServiceStatus::Draining) => Err(ApiError::invalid_parameter(
            "Unable to Start a service that is still Draining.",
        )),
        _ => Ok(None),
    }
}

/// Starts a new PRIMARY deployment of `td` on `record`, adding its service revision and
/// service deployment records to `txn`.
#[allow(clippy::too_many_arguments)]
fn begin_deployment(
    ctx: &Ctx,
    cluster: &str,
    record: &mut ServiceRecord,
    td: &berth_core::model::task_definition::TaskDefinition,
    launch_type: &str,
    sources: Vec<berth_core::model::service::ServiceRevisionSummary>,
    now: f64,
    txn: Txn,
) -> Txn {
    let name = record.name().to_string();
    let (revision_id, service_revision) =
        present::new_revision(ctx, cluster, &record.service, td, now);
    let revision_arn = service_revision
        .service_revision_arn
        .clone()
        .unwrap_or_default();
    let (sd_id, service_deployment) =
        present::new_service_deployment(ctx, cluster, &record.service, &revision_arn, sources, now);
    // As on ECS, the deployment and the revision it deploys share their number: tools find
    // the service deployment of the PRIMARY deployment by it (Terraform's
    // `wait_for_steady_state` looks for `ecs-svc/N`'s N in `targetServiceRevisionArn`).
    let id = format!("ecs-svc/{revision_id}");
    start_deployment(
        record,
        NewDeployment {
            reason: reason_in_progress(&id),
            id,
            task_definition: td.task_definition_arn.clone().unwrap_or_default(),
            // A service on a capacity provider strategy shows no launch type, as on ECS.
            launch_type: record
                .service
                .capacity_provider_strategy
                .is_none()
                .then(|| launch_type.to_string()),
            network_configuration: record.service.network_configuration.clone(),
            service_deployment_arn: service_deployment
                .service_deployment_arn
                .clone()
                .unwrap_or_default(),
            service_revision_arn: revision_arn,
            rollback_of: None,
            now,
        },
    );
    txn.put(
        keys::service_revision(cluster, &name, &revision_id),
        encode(&service_revision),
    )
    .put(
        keys::service_deployment(cluster, &name, &sd_id),
        encode(&service_deployment),
    )
}

/// Adds an event to service `name` of `cluster`; nothing when there is no such service.
pub async fn record_event(app: &crate::app::App, cluster: &str, name: &str, message: String) {
    let key = keys::service(cluster, name);
    let now = app.now();
    let recorded = app
        .update::<ServiceRecord, _>(&key, |current| {
            let mut record = current.ok_or_else(service_not_found)?;
            record.push_event(&mut RandomIds, message.clone(), now);
            Ok(record)
        })
        .await;
    if let Err(e) = recorded {
        tracing::debug!(service = %name, error = %e.message, "event not recorded");
    }
}

/// The stored service a request names, or ServiceNotFoundException.
fn load(ctx: &Ctx, key: &str) -> Result<Versioned<ServiceRecord>, ApiError> {
    ctx.get::<ServiceRecord>(key)?.ok_or_else(service_not_found)
}

/// Updates a service. A new task definition, forceNewDeployment or new placement rules start
/// a new PRIMARY deployment (a new service revision and service deployment); other changes
/// (desired count, deployment configuration, grace period, tags propagation) apply in place.
pub async fn update_service(
    ctx: Ctx,
    req: UpdateServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let name = service_name_of(&cluster_name, &req.service)?;
    validate::refuse_unsupported(&validate::Unsupported {
        service_connect_configuration: req.service_connect_configuration.as_ref(),
        volume_configurations: req.volume_configurations.as_deref(),
        vpc_lattice_configurations: req.vpc_lattice_configurations.as_deref(),
        deployment_controller: req.deployment_controller.as_ref(),
    })?;
    validate::grace_period(req.health_check_grace_period_seconds)?;
    validate::propagate_tags(req.propagate_tags.as_deref())?;
    validate::az_rebalancing(req.availability_zone_rebalancing.as_deref())?;
    let key = keys::service(&cluster_name, &name);
    loop {
        let current = load(&ctx, &key)?;
        let mut record = current.value.clone();
        if record.service.status != Some(ServiceStatus::Active) {
            return Err(ApiError::new(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        if record.runs_task_sets() {
            return external::update(ctx, req, &cluster_name).await;
        }
        let daemon = record.is_daemon();
        validate::desired_count(req.desired_count, daemon, false)?;
        // A strategy given (not empty) replaces the service's, or its launch type.
        let capacity = match req.capacity_provider_strategy.as_deref() {
            Some(items) if !items.is_empty() => capacity_strategy::resolve_for_service(
                &ctx,
                &cluster.value,
                None,
                Some(items),
                daemon,
            )?,
            _ => None,
        };
        let launch_type = match &capacity {
            Some(c) => validate::launch_type(Some(c.launch_type))?,
            None => capacity_strategy::service_launch_type(&record.service),
        };
        let new_capacity = capacity
            .as_ref()
            .is_some_and(|c| record.service.capacity_provider_strategy.as_ref() != Some(&c.items));
        let td = match req.task_definition.as_deref() {
            Some(reference) => {
                let td = resolve_task_definition(&ctx, reference)?
                    .task_definition
                    .clone();
                validate::task_definition(&td, reference, &launch_type)?;
                td
            }
            None => {
                let current_td = record.service.task_definition.clone().unwrap_or_default();
                resolve_task_definition(&ctx, &current_td)?
                    .task_definition
                    .clone()
            }
        };
        let mut config = record
            .service
            .deployment_configuration
            .clone()
            .unwrap_or_default();
        if let Some(update) = &req.deployment_configuration {
            merge_configuration(&mut config, update);
        }
        validate::deployment_configuration(Some(&config), daemon)?;
        validate::platform_version(&launch_type, req.platform_version.as_deref())?;
        let network = req
            .network_configuration
            .clone()
            .or_else(|| record.service.network_configuration.clone());
        validate::network(&td, &launch_type, network.as_ref())?;
        let new_network = network != record.service.network_configuration;
        let constraints = req
            .placement_constraints
            .clone()
            .or_else(|| record.service.placement_constraints.clone())
            .unwrap_or_default();
        let strategies = req
            .placement_strategy
            .clone()
            .or_else(|| record.service.placement_strategy.clone())
            .unwrap_or_default();
        validate::placement(&constraints, &strategies, &td, daemon)?;
        // Given (even empty), the load balancers replace the service's, in a new deployment.
        let lbs = match req.load_balancers.as_deref() {
            Some(given) => load_balancers::check(&ctx, given, &td)?,
            None => {
                let current = record.service.load_balancers.clone().unwrap_or_default();
                // A new task definition must still have the containers and ports they name.
                if td.task_definition_arn != record.service.task_definition {
                    load_balancers::check(&ctx, &current, &td)?;
                }
                current
            }
        };
        let new_lbs = record.service.load_balancers.as_deref().unwrap_or_default() != lbs;
        let registries = match req.service_registries.as_deref() {
            Some(given) => registries::check(&ctx, given, &td)?,
            None => record
                .service
                .service_registries
                .clone()
                .unwrap_or_default(),
        };
        let new_registries = record
            .service
            .service_registries
            .as_deref()
            .unwrap_or_default()
            != registries;

        let new_td = td.task_definition_arn != record.service.task_definition;
        if new_td {
            super::admission::admit_on_cluster(&cluster.value, &td)?;
        }
        let new_placement = record.service.placement_constraints.as_ref() != Some(&constraints)
            || record.service.placement_strategy.as_ref() != Some(&strategies);
        let new_deployment = new_td
            || new_placement
            || new_lbs
            || new_registries
            || new_network
            || new_capacity
            || req.force_new_deployment == Some(true);

        let s = &mut record.service;
        if let Some(n) = req.desired_count {
            s.desired_count = Some(n);
        }
        s.deployment_configuration = Some(config);
        if let Some(c) = capacity {
            s.capacity_provider_strategy = Some(c.items);
            s.launch_type = None;
        }
        s.network_configuration = network;
        s.placement_constraints = Some(constraints);
        s.placement_strategy = Some(strategies);
        s.load_balancers = Some(lbs);
        s.service_registries = Some(registries);
        apply_in_place(s, &req);
        if let Some(v) = &req.availability_zone_rebalancing {
            s.availability_zone_rebalancing = Some(v.clone());
        }
        record.state.steady = false;
        record.state.steady_since = None;

        let now = ctx.now();
        let mut txn = Txn::new().when(Compare::at(&key, current.mod_revision));
        if new_deployment {
            let completed = complete_if_steady(&ctx, &cluster_name, &mut record, now)?;
            let sources = source_revisions(&ctx, &cluster_name, &record)?;
            let superseded =
                superseded_history(&ctx, &cluster_name, &name, &record, completed.as_ref(), now)?;
            txn = begin_deployment(
                &ctx,
                &cluster_name,
                &mut record,
                &td,
                &launch_type,
                sources,
                now,
                txn,
            );
            for (sd_key, sd_revision, sd) in superseded {
                txn = txn
                    .when(Compare::at(&sd_key, sd_revision))
                    .put(&sd_key, encode(&sd));
            }
        }
        txn = txn.put(&key, encode(&record));
        if ctx.commit(txn).await?.succeeded {
            let counts = TaskCounts::of(&ctx, &cluster_name)?;
            return Ok(ServiceResponse {
                service: present(&record, &counts, true),
            });
        }
    }
}

/// Deletes a service: it becomes DRAINING, its tasks are stopped, then it becomes INACTIVE
/// (and stays describable). A REPLICA service still scaled above 0 needs `force`.
pub async fn delete_service(
    ctx: Ctx,
    req: DeleteServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let name = service_name_of(&cluster_name, &req.service)?;
    let key = keys::service(&cluster_name, &name);
    loop {
        let current = load(&ctx, &key)?;
        let mut record = current.value.clone();
        match record.service.status {
            Some(ServiceStatus::Active) => {}
            Some(ServiceStatus::Draining) => {
                let counts = TaskCounts::of(&ctx, &cluster_name)?;
                return Ok(ServiceResponse {
                    service: present(&record, &counts, false),
                });
            }
            _ => return Err(service_not_found()),
        }
        if !record.is_daemon()
            && record.service.desired_count.unwrap_or(0) > 0
            && req.force != Some(true)
        {
            return Err(ApiError::invalid_parameter(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        let now = ctx.now();
        record.service.status = Some(ServiceStatus::Draining);
        record.service.desired_count = Some(0);
        for set in record.service.task_sets.iter_mut().flatten() {
            set.status = Some(berth_core::service::task_sets::DRAINING.into());
        }
        berth_core::service::task_sets::recompute(&mut record, now);
        let mut txn = Txn::new().when(Compare::at(&key, current.mod_revision));
        for (sd_key, sd_revision, mut sd) in
            superseded_history(&ctx, &cluster_name, &name, &record, None, now)?
        {
            sd.status_reason = Some(REASON_SERVICE_DELETED.into());
            txn = txn
                .when(Compare::at(&sd_key, sd_revision))
                .put(&sd_key, encode(&sd));
        }
        txn = txn.put(&key, encode(&record));
        if ctx.commit(txn).await?.succeeded {
            let counts = TaskCounts::of(&ctx, &cluster_name)?;
            return Ok(ServiceResponse {
                service: present(&record, &counts, false),
            });
        }
    }
}

/// Describes up to 10 services by name or ARN, INACTIVE ones included; unknown ones are
/// `MISSING` failures. Tags only with `include: ["TAGS"]`.
pub async fn describe_services(
    ctx: Ctx,
    req: DescribeServicesRequest,
) -> Result<DescribeServicesResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| i.as_str() != "TAGS") {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': use TAGS."
        )));
    }
    // The cluster first, as ECS: an empty list in an unknown cluster is
    // ClusterNotFoundException.
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "services must name 1 to 10 services.",
        ));
    }
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let with_tags = include.iter().any(|i| i == "TAGS");
    let counts = TaskCounts::of(&ctx, &cluster_name)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for reference in &req.services {
        let found = match service_name_of(&cluster_name, reference) {
            Ok(name) => ctx.get::<ServiceRecord>(&keys::service(&cluster_name, &name))?,
            Err(_) => None,
        };
        match found {
            Some(record) => {
                let mut service = present(&record.value, &counts, with_tags);
                // With TAGS, ECS shows `[]` for a service without tags.
                if with_tags {
                    service.tags.get_or_insert_with(Vec::new);
                }
                services.push(service);
            }
            None => {
                let arn = if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    ctx.arns.service(&cluster_name, reference)
                };
                failures.push(Failure::new(arn, "MISSING"));
            }
        }
    }
    Ok(DescribeServicesResponse { services, failures })
}

/// Lists the ARNs of a cluster's services that are not INACTIVE, filtered by launch type and
/// scheduling strategy, 10 a page unless maxResults says otherwise (at most 100).
pub async fn list_services(
    ctx: Ctx,
    req: ListServicesRequest,
) -> Result<ListServicesResponse, ApiError> {
    let cluster = ctx.active_cluster(req.cluster.as_deref())?;
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let page = PageRequest::parse(
        req.next_token.as_deref(),
        Some(req.max_results.unwrap_or(10)),
        100,
    )?;
    if let Some(lt) = req.launch_type.as_deref() {
        if !matches!(lt, "EC2" | "FARGATE" | "EXTERNAL" | "MANAGED_INSTANCES") {
            return Err(ApiError::invalid_parameter(format!(
                "'{lt}' is not a launch type: use EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES."
            )));
        }
    }
    if let Some(s) = req.scheduling_strategy.as_deref() {
        validate::scheduling_strategy(Some(s))?;
    }
    let managed_by_ecs = match req.resource_management_type.as_deref() {
        None | Some("CUSTOMER") => false,
        Some("ECS") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "'{other}' is not a resource management type: use CUSTOMER or ECS."
            )))
        }
    };
    // From after the previous page's last service (tokens are ARNs, which sort as the
    // service keys do), decoding one past the page: O(page) when the filters match.
    let state = ctx.snapshot();
    let prefix = keys::services_of(&cluster_name);
    let after = page
        .after
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .map(|name| keys::service(&cluster_name, name));
    let arns: Vec<String> = state
        .list_after(&prefix, after.as_deref())
        .filter_map(|(key, entry)| {
            match serde_json::from_slice::<ServiceRecord>(&entry.value) {
                Ok(record) => Some(record.service),
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "ListServices: stored service does not decode");
                    None
                }
            }
        })
        .filter(|s| s.status != Some(ServiceStatus::Inactive))
        .filter(|s| req.launch_type.is_none() || s.launch_type == req.launch_type)
        .filter(|s| {
            req.scheduling_strategy.is_none() || s.scheduling_strategy == req.scheduling_strategy
        })
        .filter(|_| !managed_by_ecs)
        .filter_map(|s| s.service_arn)
        .take(page.limit + 1)
        .collect();
    let page = PageRequest {
        after: None,
        limit: page.limit,
    };
    let (service_arns, next_token) = page.page(arns, Clone::clone);
    Ok(ListServicesResponse {
        service_arns,
        next_token,
    })
}

#[cfg(test)]
mod tests;
