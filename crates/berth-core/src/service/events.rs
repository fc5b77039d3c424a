//! The messages of a service's `events[]` and of its deployments' `rolloutStateReason`, in
//! the wording ECS users know and grep for.

use super::facts::UnhealthyTarget;

/// `(service NAME) has reached a steady state.`
pub fn steady_state(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

/// `(service NAME) has started N tasks: (task ID) (task ID).`
pub fn started_tasks(service: &str, task_ids: &[String]) -> String {
    format!(
        "(service {service}) has started {} tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

/// `(service NAME) has stopped N running tasks: (task ID).`
pub fn stopped_tasks(service: &str, task_ids: &[String]) -> String {
    format!(
        "(service {service}) has stopped {} running tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

fn task_list(task_ids: &[String]) -> String {
    task_ids
        .iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(service NAME) was unable to place a task because no container instance met all of its
/// requirements. ...` with the reason the closest instance gave, as ECS words it.
pub fn unable_to_place(service: &str, reason: &str) -> String {
    format!(
        "(service {service}) was unable to place a task because no container instance met all \
         of its requirements. {reason} For more information, see the Troubleshooting section \
         of the Amazon ECS Developer Guide."
    )
}

/// The `unable_to_place` reason for a shortfall of the closest matching instance:
/// `The closest matching (container-instance ID) has insufficient memory available.`
pub fn closest_instance_short_of(instance_id: &str, what: &str) -> String {
    format!("The closest matching (container-instance {instance_id}) has insufficient {what} available.")
}

/// The `unable_to_place` reason when the cluster has no usable instance.
pub const NO_INSTANCES: &str = "Reason: No Container Instances were found in your cluster.";

/// `(service NAME) was unable to scale in due to (reason N tasks under protection).`: tasks
/// the scheduler would stop to scale in or to finish a deployment are protected from scale-in.
pub fn unable_to_scale_in(service: &str, protected_tasks: usize) -> String {
    format!(
        "(service {service}) was unable to scale in due to (reason {protected_tasks} tasks under \
         protection)."
    )
}

/// `(service NAME) is unable to consistently start tasks successfully. ...`
pub fn unable_to_start(service: &str) -> String {
    format!(
        "(service {service}) is unable to consistently start tasks successfully. For more \
         information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
}

/// `(service NAME) (task ID) failed container health checks.`
pub fn failed_health_checks(service: &str, task_id: &str) -> String {
    format!("(service {service}) (task {task_id}) failed container health checks.")
}

/// `(service NAME) (instance ID) (port N) is unhealthy in (target-group ARN) due to (reason
/// WHY).`: a task's load balancer target failed its health checks.
pub fn unhealthy_target(service: &str, target: &UnhealthyTarget) -> String {
    format!(
        "(service {service}) (instance {}) (port {}) is unhealthy in (target-group {}) due to \
         (reason {}).",
        target.id, target.port, target.target_group_arn, target.reason
    )
}

/// stoppedReason of a task whose load balancer target failed its health checks.
pub fn failed_elb_health_checks(target_group_arn: &str) -> String {
    format!("{REASON_FAILED_ELB_HEALTH_CHECKS} (target-group {target_group_arn})")
}

/// The start of the stoppedReason of tasks that failed their load balancer's health checks.
pub const REASON_FAILED_ELB_HEALTH_CHECKS: &str = "Task failed ELB health checks in";

/// `(service NAME) (deployment ecs-svc/ID) deployment completed.`
pub fn deployment_completed(service: &str, deployment_id: &str) -> String {
    format!("(service {service}) (deployment {deployment_id}) deployment completed.")
}

/// `(service NAME) (deployment ecs-svc/ID) deployment failed: tasks failed to start.`
pub fn deployment_failed(service: &str, deployment_id: &str) -> String {
    format!("(service {service}) (deployment {deployment_id}) deployment failed: tasks failed to start.")
}

/// `(service NAME) rolling back to deployment ecs-svc/ID.`
pub fn rolling_back(service: &str, deployment_id: &str) -> String {
    format!("(service {service}) rolling back to deployment {deployment_id}.")
}

/// `(service NAME) (deployment ecs-svc/ID) was stopped: rolling back to deployment ecs-svc/ID.`
pub fn deployment_stopped(service: &str, deployment_id: &str, target: &str) -> String {
    format!(
        "(service {service}) (deployment {deployment_id}) was stopped: rolling back to \
         deployment {target}."
    )
}

/// rolloutStateReason of a deployment under way.
pub fn reason_in_progress(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} in progress.")
}

/// rolloutStateReason of a completed deployment.
pub fn reason_completed(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} completed.")
}

/// rolloutStateReason of a deployment the circuit breaker failed.
pub const REASON_BREAKER_FAILED: &str = "ECS deployment circuit breaker: tasks failed to start.";

/// rolloutStateReason of the deployment a circuit breaker rollback starts.
pub fn reason_rolling_back(target_deployment_id: &str) -> String {
    format!("ECS deployment circuit breaker: rolling back to deploymentId {target_deployment_id}.")
}

/// rolloutStateReason of the deployment StopServiceDeployment rolls back to.
pub fn reason_stopped_rolling_back(target_deployment_id: &str) -> String {
    format!("ECS deployment stopped: rolling back to deploymentId {target_deployment_id}.")
}

/// stoppedReason of tasks the scheduler stops to scale in or to replace them.
pub fn scaling_reason(deployment_id: &str) -> String {
    format!("Scaling activity initiated by (deployment {deployment_id})")
}

/// stoppedReason of tasks stopped for failing their container health checks.
pub const REASON_FAILED_HEALTH_CHECKS: &str = "Task failed container health checks.";

/// stoppedReason of tasks whose container instance is gone or has lost its agent.
pub const REASON_INSTANCE_LOST: &str =
    "Task stopped because its container instance was deregistered or lost its agent.";

/// stoppedReason of tasks of a service being deleted.
pub const REASON_SERVICE_DELETED: &str = "Service deleted.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_ecs_wording() {
        assert_eq!(
            steady_state("web"),
            "(service web) has reached a steady state."
        );
        assert_eq!(
            started_tasks("web", &["a1".into(), "b2".into()]),
            "(service web) has started 2 tasks: (task a1) (task b2)."
        );
        assert_eq!(
            stopped_tasks("web", &["a1".into()]),
            "(service web) has stopped 1 running tasks: (task a1)."
        );
        assert_eq!(
            deployment_completed("web", "ecs-svc/1"),
            "(service web) (deployment ecs-svc/1) deployment completed."
        );
        assert_eq!(
            deployment_failed("web", "ecs-svc/2"),
            "(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start."
        );
        assert_eq!(
            rolling_back("web", "ecs-svc/1"),
            "(service web) rolling back to deployment ecs-svc/1."
        );
        assert_eq!(
            unable_to_scale_in("web", 1),
            "(service web) was unable to scale in due to (reason 1 tasks under protection)."
        );
        assert!(unable_to_place("web", NO_INSTANCES).starts_with(
            "(service web) was unable to place a task because no container instance met all of its requirements. Reason:"
        ));
    }
}
