//! CreateService and UpdateService for services whose deployments an external controller runs
//! (EXTERNAL, and CODE_DEPLOY where it reduces to task sets). Such a service has no
//! deployments of its own: it runs task sets (handlers/task_sets), and what a task set
//! configures (task definition, launch type, network, load balancers) is shown on the service
//! from its PRIMARY task set, null while it has none.
//!
//! EXTERNAL, as ECS: only the service name is required; desiredCount defaults to 0; the
//! members a task set carries are ignored by CreateService and refused by UpdateService.
//! CODE_DEPLOY: Berth has no CodeDeploy, so a CODE_DEPLOY service is created with the one
//! PRIMARY task set (scale 100%) CodeDeploy's first deployment would make, from the service's
//! own task definition and configuration; changing that configuration needs a CodeDeploy
//! deployment and is refused, naming what is missing.

use super::{present, service_name_of, validate, CreateServiceRequest, TaskCounts};
use super::{ServiceResponse, UpdateServiceRequest};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::task_sets::{self, NewTaskSet};
use berth_core::model::cluster::Cluster;
use berth_core::model::service::{DeploymentController, Scale, Service};
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::{validate_tags, ServiceStatus};
use berth_core::names::{invalid_name_message, is_valid_name};
use berth_core::service::task_sets::{changed, recompute, PERCENT, PRIMARY};
use berth_core::service::ServiceRecord;
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};

/// Whether a CreateService names a controller that runs task sets.
pub(super) fn wants_task_sets(req: &CreateServiceRequest) -> bool {
    berth_core::service::task_sets::runs_task_sets(
        req.deployment_controller.as_ref().map(|c| c.type_.as_str()),
    )
}

/// Creates an EXTERNAL or CODE_DEPLOY service: ACTIVE, no deployments, its task sets empty
/// (EXTERNAL) or its first PRIMARY task set (CODE_DEPLOY).
pub(super) async fn create(
    ctx: Ctx,
    req: CreateServiceRequest,
    cluster: Versioned<Cluster>,
) -> Result<ServiceResponse, ApiError> {
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let controller = req
        .deployment_controller
        .clone()
        .map(|c| c.type_)
        .unwrap_or_default();
    if !is_valid_name(&req.service_name) {
        return Err(ApiError::invalid_parameter(invalid_name_message(
            "Service name",
            &req.service_name,
        )));
    }
    if validate::scheduling_strategy(req.scheduling_strategy.as_deref())? == "DAEMON" {
        return Err(ApiError::invalid_parameter(format!(
            "The {controller} deployment controller does not support the DAEMON scheduling \
             strategy: use REPLICA."
        )));
    }
    let desired = req.desired_count.unwrap_or(0);
    validate::desired_count(Some(desired), false, true)?;
    validate::grace_period(req.health_check_grace_period_seconds)?;
    validate::propagate_tags(req.propagate_tags.as_deref())?;
    validate::deployment_configuration(req.deployment_configuration.as_ref(), false)?;
    let constraints = req.placement_constraints.clone().unwrap_or_default();
    let strategies = req.placement_strategy.clone().unwrap_or_default();
    validate::placement(&constraints, &strategies, &TaskDefinition::default(), false)?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags).map_err(ApiError::invalid_parameter)?;
    // CodeDeploy's first deployment: the service's own configuration as its PRIMARY task set.
    let first_set = if controller == "CODE_DEPLOY" {
        let reference = req.task_definition.clone().ok_or_else(|| {
            ApiError::invalid_parameter(
                "taskDefinition is required for a service with the CODE_DEPLOY deployment \
                 controller.",
            )
        })?;
        Some(task_sets::prepare(
            &ctx,
            &cluster.value,
            NewTaskSet {
                task_definition: reference,
                launch_type: req.launch_type.clone(),
                capacity_provider_strategy: req.capacity_provider_strategy.clone(),
                platform_version: req.platform_version.clone(),
                network_configuration: req.network_configuration.clone(),
                load_balancers: req.load_balancers.clone(),
                service_registries: req.service_registries.clone(),
                scale: Some(Scale {
                    value: Some(100.0),
                    unit: Some(PERCENT.into()),
                }),
                external_id: None,
                started_by: Some("CODE_DEPLOY".into()),
                tags: None,
            },
        )?)
    } else {
        None
    };

    let key = keys::service(&cluster_name, &req.service_name);
    loop {
        let existing = ctx.get::<ServiceRecord>(&key)?;
        let revision = existing.as_ref().map_or(0, |e| e.mod_revision);
        if let Some(answer) = super::replay_create(
            &ctx,
            &cluster_name,
            existing.as_ref(),
            req.client_token.as_ref(),
        )? {
            return Ok(answer);
        }
        let now = ctx.now();
        let service = Service {
            service_arn: Some(ctx.arns.service(&cluster_name, &req.service_name)),
            service_name: Some(req.service_name.clone()),
            cluster_arn: Some(ctx.arns.cluster(&cluster_name)),
            load_balancers: Some(Vec::new()),
            service_registries: Some(Vec::new()),
            status: Some(ServiceStatus::Active),
            desired_count: Some(desired),
            deployment_configuration: Some(super::with_defaults(
                req.deployment_configuration.clone(),
                false,
            )),
            task_sets: Some(Vec::new()),
            deployments: Some(Vec::new()),
            role_arn: req.role.clone(),
            events: Some(Vec::new()),
            created_at: Some(now),
            placement_constraints: Some(constraints.clone()),
            placement_strategy: Some(strategies.clone()),
            health_check_grace_period_seconds: req.health_check_grace_period_seconds,
            scheduling_strategy: Some("REPLICA".into()),
            deployment_controller: Some(DeploymentController {
                type_: controller.clone(),
            }),
            tags: Some(tags.clone()),
            created_by: Some(format!("arn:aws:iam::{}:root", ctx.arns.account_id)),
            enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
            propagate_tags: Some(req.propagate_tags.clone().unwrap_or_else(|| "NONE".into())),
            enable_execute_command: Some(req.enable_execute_command.unwrap_or(false)),
            ..Service::default()
        };
        let mut record = ServiceRecord {
            service,
            ..ServiceRecord::default()
        };
        record.state.client_token = req.client_token.clone();
        if let Some(prepared) = &first_set {
            let mut set = task_sets::build(&ctx, &cluster_name, &record, prepared, now);
            set.status = Some(PRIMARY.into());
            task_sets::make_primary(&mut record.service, &set);
            record.service.task_sets = Some(vec![set]);
            recompute(&mut record, now);
        }
        let txn = Txn::new()
            .when(Compare::at(&key, revision))
            .put(&key, encode(&record));
        if ctx.commit(txn).await?.succeeded {
            return Ok(ServiceResponse {
                service: present(&record, &TaskCounts::none(), true),
            });
        }
    }
}

/// Refuses what UpdateService may not change on a service whose deployments an external
/// controller runs: for EXTERNAL, what a new task set carries; for CODE_DEPLOY, what a new
/// CodeDeploy deployment would.
pub(super) fn refuse_for_task_sets(
    record: &ServiceRecord,
    req: &UpdateServiceRequest,
) -> Result<(), ApiError> {
    let controller = record
        .service
        .deployment_controller
        .as_ref()
        .map(|c| c.type_.clone())
        .unwrap_or_default();
    let refused = [
        ("taskDefinition", req.task_definition.is_some()),
        (
            "capacityProviderStrategy",
            req.capacity_provider_strategy
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
        ),
        ("networkConfiguration", req.network_configuration.is_some()),
        ("platformVersion", req.platform_version.is_some()),
        ("loadBalancers", req.load_balancers.is_some()),
        ("serviceRegistries", req.service_registries.is_some()),
        ("forceNewDeployment", req.force_new_deployment == Some(true)),
    ];
    let Some((member, _)) = refused.iter().find(|(_, given)| *given) else {
        return Ok(());
    };
    Err(ApiError::invalid_parameter(
        if controller == "CODE_DEPLOY" {
            format!(
            "Unable to update {member} on a service with the CODE_DEPLOY deployment controller: \
             that needs a CodeDeploy deployment, and Berth has no CodeDeploy. Use the EXTERNAL \
             deployment controller and CreateTaskSet to deploy a new configuration."
        )
        } else {
            format!(
                "Unable to update {member} on a service with the EXTERNAL deployment controller: \
             create a new task set (CreateTaskSet) with it."
            )
        },
    ))
}

/// Updates a service that runs task sets: desired count (every task set's
/// computedDesiredCount follows), deployment configuration, health check grace period,
/// placement, managed tags and tag propagation. No deployment starts.
pub(super) async fn update(
    ctx: Ctx,
    req: UpdateServiceRequest,
    cluster_name: &str,
) -> Result<ServiceResponse, ApiError> {
    let name = service_name_of(cluster_name, &req.service)?;
    validate::desired_count(req.desired_count, false, false)?;
    let key = keys::service(cluster_name, &name);
    let now = ctx.now();
    let record = ctx
        .update::<ServiceRecord, _>(&key, |current| {
            let mut record = current.ok_or_else(super::service_not_found)?;
            if record.service.status != Some(ServiceStatus::Active) {
                return Err(ApiError::new(
                    "ServiceNotActiveException",
                    "Service was not ACTIVE.",
                ));
            }
            refuse_for_task_sets(&record, &req)?;
            let s = &mut record.service;
            let mut config = s.deployment_configuration.clone().unwrap_or_default();
            if let Some(update) = &req.deployment_configuration {
                super::merge_configuration(&mut config, update);
            }
            validate::deployment_configuration(Some(&config), false)?;
            let constraints = req
                .placement_constraints
                .clone()
                .or_else(|| s.placement_constraints.clone())
                .unwrap_or_default();
            let strategies = req
                .placement_strategy
                .clone()
                .or_else(|| s.placement_strategy.clone())
                .unwrap_or_default();
            validate::placement(&constraints, &strategies, &TaskDefinition::default(), false)?;
            s.deployment_configuration = Some(config);
            s.placement_constraints = Some(constraints);
            s.placement_strategy = Some(strategies);
            if let Some(n) = req.desired_count {
                s.desired_count = Some(n);
            }
            super::apply_in_place(s, &req);
            changed(&mut record, now);
            Ok(record)
        })
        .await?;
    let counts = TaskCounts::of(&ctx, cluster_name)?;
    Ok(ServiceResponse {
        service: present(&record, &counts, true),
    })
}
