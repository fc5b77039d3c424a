//! Checks of CreateService and UpdateService input that need no store: features Berth does not
//! run are refused with a message naming what to leave out, and enums and ranges are checked as
//! ECS checks them.

use crate::error::ApiError;
use berth_core::model::service::{
    DeploymentConfiguration, DeploymentController, NetworkConfiguration,
};
use berth_core::model::task::{PlacementConstraint, PlacementStrategy};
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::TaskDefinitionStatus;
use berth_core::scheduler::{check_daemon_strategies, parse_constraints, parse_strategies};
use berth_core::service::bounds::validate_deployment_configuration;
use serde_json::Value;

/// The members of CreateService and UpdateService that name features Berth has not got.
#[derive(Debug, Default)]
pub struct Unsupported<'a> {
    pub service_connect_configuration: Option<&'a Value>,
    pub volume_configurations: Option<&'a [Value]>,
    pub vpc_lattice_configurations: Option<&'a [Value]>,
    pub deployment_controller: Option<&'a DeploymentController>,
}

/// Refuses what Berth cannot do. Empty lists are accepted (tools send them).
pub fn refuse_unsupported(u: &Unsupported<'_>) -> Result<(), ApiError> {
    let nonempty = |n: Option<usize>| n.is_some_and(|n| n > 0);
    let connect_enabled = u
        .service_connect_configuration
        .is_some_and(|c| c.get("enabled").and_then(Value::as_bool) != Some(false));
    if connect_enabled {
        return Err(ApiError::invalid_parameter(
            "Berth has no Service Connect: leave serviceConnectConfiguration out.",
        ));
    }
    if nonempty(u.volume_configurations.map(<[_]>::len)) {
        return Err(ApiError::invalid_parameter(
            "Berth has no managed EBS volumes: leave volumeConfigurations out.",
        ));
    }
    if nonempty(u.vpc_lattice_configurations.map(<[_]>::len)) {
        return Err(ApiError::invalid_parameter(
            "Berth has no VPC Lattice: leave vpcLatticeConfigurations out.",
        ));
    }
    if let Some(controller) = u.deployment_controller {
        match controller.type_.as_str() {
            // EXTERNAL and CODE_DEPLOY services run task sets (services/external.rs).
            "ECS" | "CODE_DEPLOY" | "EXTERNAL" => {}
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "'{other}' is not a deployment controller type: use ECS, CODE_DEPLOY or \
                     EXTERNAL."
                )))
            }
        }
    }
    Ok(())
}

/// Checks `platformVersion` against the launch type: only FARGATE services take one
/// (`LATEST` or `1.4.0`).
pub fn platform_version(launch_type: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value.filter(|p| !p.is_empty()) {
        None => Ok(()),
        Some(_) if launch_type != "FARGATE" => Err(ApiError::invalid_parameter(format!(
            "The platform version must be null when specifying an {launch_type} launch type."
        ))),
        Some(version) => crate::handlers::tasks::check_platform_version(launch_type, Some(version)),
    }
}

/// Checks a service's `networkConfiguration` against its task definition's network mode (it
/// is required for awsvpc, refused otherwise).
pub fn network(
    td: &TaskDefinition,
    launch_type: &str,
    config: Option<&NetworkConfiguration>,
) -> Result<(), ApiError> {
    berth_core::awsvpc::check_configuration(
        td.network_mode.as_deref().unwrap_or("bridge"),
        launch_type,
        config,
    )
    .map(|_| ())
    .map_err(ApiError::invalid_parameter)
}

/// The scheduling strategy a request names (REPLICA when absent).
pub fn scheduling_strategy(value: Option<&str>) -> Result<String, ApiError> {
    match value.unwrap_or("REPLICA") {
        s @ ("REPLICA" | "DAEMON") => Ok(s.to_string()),
        other => Err(ApiError::invalid_parameter(format!(
            "'{other}' is not a scheduling strategy: use REPLICA or DAEMON."
        ))),
    }
}

/// The launch type a request names (EC2 when absent).
pub fn launch_type(value: Option<&str>) -> Result<String, ApiError> {
    match value.unwrap_or("EC2") {
        t @ ("EC2" | "EXTERNAL" | "FARGATE") => Ok(t.to_string()),
        "MANAGED_INSTANCES" => Err(ApiError::invalid_parameter(
            "Berth runs tasks on registered container instances: use launchType EC2, FARGATE or \
             EXTERNAL, not MANAGED_INSTANCES.",
        )),
        other => Err(ApiError::invalid_parameter(format!(
            "'{other}' is not a launch type: use EC2, FARGATE or EXTERNAL."
        ))),
    }
}

/// Checks `propagateTags`.
pub fn propagate_tags(value: Option<&str>) -> Result<(), ApiError> {
    match value {
        None | Some("TASK_DEFINITION" | "SERVICE" | "NONE") => Ok(()),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "'{other}' is not a propagateTags value: use TASK_DEFINITION, SERVICE or NONE."
        ))),
    }
}

/// Checks `availabilityZoneRebalancing`.
pub fn az_rebalancing(value: Option<&str>) -> Result<(), ApiError> {
    match value {
        None | Some("ENABLED" | "DISABLED") => Ok(()),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "'{other}' is not an availabilityZoneRebalancing value: use ENABLED or DISABLED."
        ))),
    }
}

/// Checks the desired count for the scheduling strategy.
pub fn desired_count(value: Option<i32>, daemon: bool, creating: bool) -> Result<(), ApiError> {
    match (value, daemon) {
        (Some(_), true) => Err(ApiError::invalid_parameter(
            "The daemon scheduling strategy does not support a desired count for services: \
             leave desiredCount out; Berth runs one task on each container instance.",
        )),
        (None, false) if creating => Err(ApiError::invalid_parameter(
            "desiredCount is required for a REPLICA service: pass the number of tasks to keep \
             running.",
        )),
        (Some(n), false) if !(0..=10_000).contains(&n) => Err(ApiError::invalid_parameter(
            format!("desiredCount must be between 0 and 10000, got {n}."),
        )),
        _ => Ok(()),
    }
}

/// Checks `healthCheckGracePeriodSeconds`.
pub fn grace_period(value: Option<i32>) -> Result<(), ApiError> {
    match value {
        Some(n) if n < 0 => Err(ApiError::invalid_parameter(format!(
            "healthCheckGracePeriodSeconds must not be negative, got {n}."
        ))),
        _ => Ok(()),
    }
}

/// Checks a deployment configuration for the scheduling strategy.
pub fn deployment_configuration(
    config: Option<&DeploymentConfiguration>,
    daemon: bool,
) -> Result<(), ApiError> {
    match config {
        Some(c) => {
            validate_deployment_configuration(c, daemon).map_err(ApiError::invalid_parameter)
        }
        None => Ok(()),
    }
}

/// Checks placement constraints and strategies with the scheduler's own reading of them
/// (the task definition's constraints included); DAEMON services take no strategies.
pub fn placement(
    constraints: &[PlacementConstraint],
    strategies: &[PlacementStrategy],
    td: &TaskDefinition,
    daemon: bool,
) -> Result<(), ApiError> {
    if daemon {
        check_daemon_strategies(strategies).map_err(ApiError::invalid_parameter)?;
    }
    parse_strategies(strategies).map_err(ApiError::invalid_parameter)?;
    parse_constraints(
        constraints,
        td.placement_constraints.as_deref().unwrap_or_default(),
    )
    .map_err(ApiError::invalid_parameter)?;
    Ok(())
}

/// Checks that a task definition can run as a service here: ACTIVE, compatible with the
/// launch type.
pub fn task_definition(td: &TaskDefinition, reference: &str, launch: &str) -> Result<(), ApiError> {
    if td.status != Some(TaskDefinitionStatus::Active) {
        return Err(ApiError::client(format!(
            "TaskDefinition is inactive: {} cannot run new tasks; register or name an ACTIVE \
             revision.",
            td.task_definition_arn.as_deref().unwrap_or(reference)
        )));
    }
    let compatibilities = td.compatibilities.clone().unwrap_or_default();
    if !compatibilities.is_empty() && !compatibilities.iter().any(|c| c == launch) {
        return Err(ApiError::invalid_parameter(format!(
            "Task definition does not support launch_type {launch}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_of_unsupported_features_are_accepted() {
        let empty: Vec<Value> = Vec::new();
        assert!(refuse_unsupported(&Unsupported {
            volume_configurations: Some(&empty),
            ..Unsupported::default()
        })
        .is_ok());
        let one = vec![Value::Null];
        assert!(refuse_unsupported(&Unsupported {
            volume_configurations: Some(&one),
            ..Unsupported::default()
        })
        .is_err());
    }

    #[test]
    fn daemon_services_take_no_desired_count_and_replica_services_need_one() {
        assert!(desired_count(Some(1), true, true).is_err());
        assert!(desired_count(None, true, true).is_ok());
        assert!(desired_count(None, false, true).is_err());
        assert!(desired_count(None, false, false).is_ok());
        assert!(desired_count(Some(-1), false, false).is_err());
        assert!(desired_count(Some(3), false, true).is_ok());
    }

    #[test]
    fn enums_outside_ecs_values_are_invalid_parameters() {
        assert_eq!(scheduling_strategy(None).ok().as_deref(), Some("REPLICA"));
        assert!(scheduling_strategy(Some("BATCH")).is_err());
        assert_eq!(launch_type(None).ok().as_deref(), Some("EC2"));
        assert_eq!(
            launch_type(Some("FARGATE")).ok().as_deref(),
            Some("FARGATE")
        );
        assert!(launch_type(Some("MANAGED_INSTANCES")).is_err());
        assert!(platform_version("EC2", Some("LATEST")).is_err());
        assert!(platform_version("FARGATE", Some("LATEST")).is_ok());
        assert!(platform_version("FARGATE", Some("1.3.0")).is_err());
        assert!(propagate_tags(Some("ALL")).is_err());
        assert!(az_rebalancing(Some("MAYBE")).is_err());
    }
}
