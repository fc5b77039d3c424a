//! The `loadBalancers` of CreateService and UpdateService, checked as ECS checks them: each
//! names a target group that exists and that a load balancer uses, a container of the task
//! definition and one of its container ports; target groups of type `ip` need the awsvpc
//! network mode; Classic Load Balancers (`loadBalancerName`) are not served by Berth.

use crate::app::App;
use crate::elbv2::model::Config;
use crate::error::ApiError;
use berth_core::model::service::LoadBalancer;
use berth_core::model::task_definition::TaskDefinition;

/// How many target groups one service may register its tasks in.
pub const MAX: usize = 5;

/// Checks `lbs` against the stored target groups and `td`; the list to store.
pub fn check(
    app: &App,
    lbs: &[LoadBalancer],
    td: &TaskDefinition,
) -> Result<Vec<LoadBalancer>, ApiError> {
    if lbs.is_empty() {
        return Ok(Vec::new());
    }
    if lbs.len() > MAX {
        return Err(ApiError::invalid_parameter(format!(
            "A service can have at most {MAX} load balancers (target groups); {} were given.",
            lbs.len()
        )));
    }
    let config = Config::read(app)?;
    let mut checked: Vec<LoadBalancer> = Vec::new();
    for lb in lbs {
        let group_arn = match (&lb.target_group_arn, &lb.load_balancer_name) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_parameter(
                    "loadBalancerName and targetGroupArn cannot both be specified. You must \
                     specify either a loadBalancerName or a targetGroupArn.",
                ))
            }
            (None, Some(name)) => {
                return Err(ApiError::invalid_parameter(format!(
                    "Berth has no Classic Load Balancers ('{name}'): give the targetGroupArn of \
                     an application or network load balancer's target group instead."
                )))
            }
            (None, None) => {
                return Err(ApiError::invalid_parameter(
                    "targetGroupArn is required: name the target group the service's tasks \
                     register in.",
                ))
            }
            (Some(arn), None) => arn,
        };
        let container = match lb.container_name.as_deref() {
            Some(name) if !name.trim().is_empty() => name,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "Container Name can not be blank.",
                ))
            }
        };
        if lb.advanced_configuration.is_some() {
            return Err(ApiError::invalid_parameter(
                "advancedConfiguration is for blue/green deployments, which Berth does not run: \
                 leave it out.",
            ));
        }
        let Some(port) = lb.container_port else {
            return Err(ApiError::invalid_parameter(
                "Container Port can not be blank.",
            ));
        };
        let Some(group) = config.target_group(group_arn) else {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {group_arn} does not exist."
            )));
        };
        if config.load_balancers_using(group_arn).is_empty() {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {group_arn} does not have an associated \
                 load balancer."
            )));
        }
        let mode = td.network_mode.as_deref().unwrap_or("bridge");
        if group.target_type == "ip" && mode != "awsvpc" {
            return Err(ApiError::invalid_parameter(format!(
                "The provided target group {group_arn} has target type ip, which is \
                 incompatible with the {mode} network mode specified in the task definition."
            )));
        }
        if group.target_type == "instance" && mode == "awsvpc" {
            return Err(ApiError::invalid_parameter(format!(
                "The provided target group {group_arn} has target type instance, which is \
                 incompatible with the awsvpc network mode specified in the task definition."
            )));
        }
        if group.target_type == "ip" {
            // Accepted, it would not be acted on: task addresses are not registered yet.
            return Err(ApiError::invalid_parameter(format!(
                "The provided target group {group_arn} has target type ip: Berth does not yet \
                 register awsvpc tasks' addresses as targets of a service's load balancer."
            )));
        }
        if group.target_type != "instance" && group.target_type != "ip" {
            return Err(ApiError::invalid_parameter(format!(
                "The provided target group {group_arn} has target type {}: ECS tasks register \
                 as instance or ip targets.",
                group.target_type
            )));
        }
        let Some(definition) = td
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(container))
        else {
            return Err(ApiError::invalid_parameter(format!(
                "The container {container} does not exist in the task definition."
            )));
        };
        let maps_port = definition
            .port_mappings
            .iter()
            .flatten()
            .any(|m| m.container_port == Some(port));
        if !maps_port {
            return Err(ApiError::invalid_parameter(format!(
                "The container {container} did not have a container port {port} defined."
            )));
        }
        let duplicate = checked.iter().any(|c| {
            c.target_group_arn.as_deref() == Some(group_arn)
                && c.container_name.as_deref() == Some(container)
                && c.container_port == Some(port)
        });
        if duplicate {
            return Err(ApiError::invalid_parameter(format!(
                "The target group {group_arn} is given twice for container {container} port \
                 {port}."
            )));
        }
        checked.push(LoadBalancer {
            target_group_arn: Some(group_arn.clone()),
            load_balancer_name: None,
            container_name: Some(container.to_string()),
            container_port: Some(port),
            advanced_configuration: None,
        });
    }
    Ok(checked)
}
