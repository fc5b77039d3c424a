//! ECS services with `serviceRegistries`: each RUNNING task of the service is an instance of
//! the registry's Cloud Map service, as ECS registers it — its id is the task's id, and its
//! attributes the address and port it is reached on (`AWS_INSTANCE_IPV4`, the host's
//! address, and `AWS_INSTANCE_PORT`, the host port bound to the registry's container port),
//! `AWS_INIT_HEALTH_STATUS`, `AVAILABILITY_ZONE`, `EC2_INSTANCE_ID`, `ECS_CLUSTER_NAME`,
//! `ECS_SERVICE_NAME`, `ECS_TASK_DEFINITION_FAMILY` and `REGION`. Its health follows the task's
//! container health checks. A task asked to stop is deregistered at once (before its agent
//! stops it), so name lookups stop returning it while it shuts down.
//!
//! The host's address is the container instance's `berth.host-address` attribute (what its
//! agent found other hosts and its containers reach it at), `127.0.0.1` when it has none.
//! The glue runs every second and whenever a task or service changes.

use super::instances::{put_instance, remove_instance};
use super::model::{instance_key, Instance, Service, INSTANCES, SERVICES};
use crate::app::App;
use crate::controllers::services::observe;
use crate::error::ApiError;
use crate::state::TaskEntry;
use berth_core::arn::id_of;
use berth_core::model::container_instance::{ContainerInstance, HOST_ADDRESS_ATTRIBUTE};
use berth_core::model::service::ServiceRegistry;
use berth_core::model::HealthStatus;
use berth_core::task_state::TaskStatus;
use berth_store::keys;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often the glue looks when nothing changes.
const EVERY: Duration = Duration::from_secs(1);

/// The Cloud Map service whose ARN is `arn`, if it exists.
pub fn service_by_arn(app: &App, arn: &str) -> Result<Option<Service>, ApiError> {
    Ok(app
        .list::<Service>(SERVICES)?
        .into_iter()
        .map(|s| s.value)
        .find(|s| s.arn == arn))
}

/// The host port a task's `container` binds its `port` on (IPv4 first), or the port itself
/// (host mode).
fn host_port(entry: &TaskEntry, container: &str, port: i32) -> Option<u16> {
    let found = entry
        .task
        .containers
        .iter()
        .flatten()
        .find(|c| c.name.as_deref() == Some(container))?;
    let bound = found
        .network_bindings
        .iter()
        .flatten()
        .filter(|b| b.container_port == Some(port))
        .min_by_key(|b| b.bind_ip.as_deref().is_some_and(|ip| ip.contains(':')))
        .and_then(|b| b.host_port)
        .unwrap_or(port);
    u16::try_from(bound).ok()
}

/// The attribute `name` of `instance`, if it has a value.
fn attribute<'a>(instance: &'a ContainerInstance, name: &str) -> Option<&'a str> {
    instance
        .attributes
        .iter()
        .flatten()
        .find(|a| a.name == name)?
        .value
        .as_deref()
}

/// The Cloud Map instance `entry` (a RUNNING task of service `service` in `cluster`) is for
/// `registry`.
fn instance_of(
    app: &App,
    cluster: &str,
    service: &str,
    registry: &ServiceRegistry,
    cloud_map: &Service,
    entry: &TaskEntry,
) -> Option<Instance> {
    let task = &entry.task;
    let instance_id = id_of(
        task.container_instance_arn.as_deref()?,
        "container-instance",
    )?;
    let state = app.snapshot();
    let host = state.instance(&keys::instance(cluster, &instance_id))?;
    let host = &host.value;
    let mut attributes = BTreeMap::new();
    let ip = attribute(host, HOST_ADDRESS_ATTRIBUTE).unwrap_or("127.0.0.1");
    attributes.insert("AWS_INSTANCE_IPV4".to_string(), ip.to_string());
    if let (Some(container), Some(port)) = (&registry.container_name, registry.container_port) {
        attributes.insert(
            "AWS_INSTANCE_PORT".to_string(),
            host_port(entry, container, port)?.to_string(),
        );
    } else if let Some(port) = registry.port {
        attributes.insert("AWS_INSTANCE_PORT".to_string(), port.to_string());
    }
    attributes.insert("AWS_INIT_HEALTH_STATUS".to_string(), "HEALTHY".to_string());
    if let Some(zone) = attribute(host, "ecs.availability-zone") {
        attributes.insert("AVAILABILITY_ZONE".to_string(), zone.to_string());
    }
    if let Some(ec2) = &host.ec2_instance_id {
        attributes.insert("EC2_INSTANCE_ID".to_string(), ec2.clone());
    }
    attributes.insert("ECS_CLUSTER_NAME".to_string(), cluster.to_string());
    attributes.insert("ECS_SERVICE_NAME".to_string(), service.to_string());
    if let Some(family) = entry.family() {
        attributes.insert("ECS_TASK_DEFINITION_FAMILY".to_string(), family.to_string());
    }
    attributes.insert("REGION".to_string(), app.arns.region.clone());
    let health = if task.health_status == Some(HealthStatus::Unhealthy) {
        "UNHEALTHY"
    } else {
        "HEALTHY"
    };
    Some(Instance {
        id: entry.id().to_string(),
        service_id: cloud_map.id.clone(),
        attributes,
        health: health.to_string(),
        creator_request_id: None,
        created: task.started_at.unwrap_or_else(|| app.now()),
        owner: Some(entry.arn().to_string()),
    })
}

/// The instances that should be registered now, by store key.
fn wanted(app: &App) -> Result<BTreeMap<String, Instance>, ApiError> {
    let mut wanted = BTreeMap::new();
    let cloud_map: HashMap<String, Service> = app
        .list::<Service>(SERVICES)?
        .into_iter()
        .map(|s| (s.value.arn.clone(), s.value))
        .collect();
    for (cluster, record) in observe::active_services(app)? {
        let registries = record
            .service
            .service_registries
            .clone()
            .unwrap_or_default();
        if registries.is_empty() {
            continue;
        }
        let name = record.name().to_string();
        let tasks = observe::service_tasks(app, &cluster, &name)?;
        for registry in &registries {
            let Some(target) = registry
                .registry_arn
                .as_deref()
                .and_then(|arn| cloud_map.get(arn))
            else {
                continue;
            };
            for entry in tasks.values() {
                let running = TaskStatus::of(&entry.task) == TaskStatus::Running
                    && entry.task.desired_status != Some(TaskStatus::Stopped);
                if !running {
                    continue;
                }
                if let Some(instance) = instance_of(app, &cluster, &name, registry, target, entry) {
                    wanted.insert(instance_key(&target.id, &instance.id), instance);
                }
            }
        }
    }
    Ok(wanted)
}

/// One pass: registers (or updates) the wanted instances and deregisters the instances ECS
/// registered whose task is no longer RUNNING and wanted, through Cloud Map's own
/// registration (its checks, operations and instances revision). Returns how many it changed.
pub async fn pass(app: &App) -> Result<usize, ApiError> {
    let wanted = wanted(app)?;
    let mut changed = 0;
    for existing in app.list::<Instance>(INSTANCES)? {
        let instance = &existing.value;
        if instance.owner.is_none() {
            continue;
        }
        let key = instance_key(&instance.service_id, &instance.id);
        if !wanted.contains_key(&key) {
            match remove_instance(app, &instance.service_id, &instance.id).await {
                Ok(_) => changed += 1,
                Err(e) => {
                    tracing::warn!(instance = %instance.id, error = %e.message, "cannot deregister a task from Cloud Map")
                }
            }
        }
    }
    for (key, instance) in wanted {
        let current = app.get::<Instance>(&key)?;
        let same = current.as_ref().is_some_and(|c| {
            c.value.attributes == instance.attributes
                && c.value.health == instance.health
                && c.value.owner == instance.owner
        });
        if same {
            continue;
        }
        let id = instance.id.clone();
        match put_instance(app, instance).await {
            Ok(_) => changed += 1,
            Err(e) => {
                tracing::warn!(instance = %id, error = %e.message, "cannot register a task in Cloud Map")
            }
        }
    }
    Ok(changed)
}

/// Runs the glue for as long as the app lives: a pass whenever a service or a task changes
/// and every [`EVERY`].
pub fn spawn(app: Arc<App>) {
    crate::controllers::on_changes(app, EVERY, |app| async move {
        if let Err(e) = pass(&app).await {
            tracing::warn!(error = %e.message, "Cloud Map registrations of services");
        }
    });
}
