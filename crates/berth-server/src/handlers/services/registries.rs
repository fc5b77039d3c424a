//! The `serviceRegistries` of CreateService and UpdateService, checked as ECS checks them: at
//! most one, naming a Cloud Map service that exists; a registry whose service has SRV records
//! needs the container and port to register (bridge and host network modes), and `A` records
//! need the awsvpc network mode, which Berth does not run yet.

use crate::app::App;
use crate::error::ApiError;
use crate::servicediscovery::ecs::service_by_arn;
use berth_core::model::service::ServiceRegistry;
use berth_core::model::task_definition::TaskDefinition;

/// Checks `registries` against Cloud Map and `td`; the list to store.
pub fn check(
    app: &App,
    registries: &[ServiceRegistry],
    td: &TaskDefinition,
) -> Result<Vec<ServiceRegistry>, ApiError> {
    if registries.is_empty() {
        return Ok(Vec::new());
    }
    if registries.len() > 1 {
        return Err(ApiError::invalid_parameter(
            "A service can have only one service registry.",
        ));
    }
    let registry = &registries[0];
    let Some(arn) = registry.registry_arn.as_deref() else {
        return Err(ApiError::invalid_parameter(
            "registryArn is required: give the ARN of the Cloud Map service to register the \
             tasks in.",
        ));
    };
    let Some(service) = service_by_arn(app, arn)? else {
        return Err(ApiError::invalid_parameter(format!(
            "The service registry {arn} does not exist: create it with Cloud Map's \
             CreateService first."
        )));
    };
    let mode = td.network_mode.as_deref().unwrap_or("bridge");
    let kinds: Vec<&str> = service
        .dns_records
        .iter()
        .map(|r| r.kind.as_str())
        .collect();
    if kinds.contains(&"A") || kinds.contains(&"AAAA") {
        return Err(ApiError::invalid_parameter(format!(
            "The service registry {arn} has A records, which need the awsvpc network mode; the \
             task definition uses {mode}. Give the Cloud Map service SRV records instead."
        )));
    }
    match (&registry.container_name, registry.container_port) {
        (Some(container), Some(port)) => {
            let Some(definition) = td
                .container_definitions
                .iter()
                .flatten()
                .find(|c| c.name.as_deref() == Some(container.as_str()))
            else {
                return Err(ApiError::invalid_parameter(format!(
                    "The container {container} does not exist in the task definition."
                )));
            };
            let mapped = definition
                .port_mappings
                .iter()
                .flatten()
                .any(|m| m.container_port == Some(port));
            if !mapped {
                return Err(ApiError::invalid_parameter(format!(
                    "The container {container} did not have a container port {port} defined."
                )));
            }
        }
        (None, None) if kinds.contains(&"SRV") => {
            return Err(ApiError::invalid_parameter(format!(
                "The service registry {arn} has SRV records: with the {mode} network mode give \
                 containerName and containerPort, the container port whose host port is \
                 registered."
            )))
        }
        (None, None) => {}
        _ => {
            return Err(ApiError::invalid_parameter(
                "containerName and containerPort go together: give both or neither.",
            ))
        }
    }
    if registry.port.is_some() && registry.container_name.is_some() {
        return Err(ApiError::invalid_parameter(
            "port is for the awsvpc network mode: with containerName and containerPort, leave \
             it out.",
        ));
    }
    Ok(vec![registry.clone()])
}
