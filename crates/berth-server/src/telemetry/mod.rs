//! What agents send besides task state (`berth_core::telemetry`): their containers' output,
//! stored in CloudWatch Logs where the tasks' `awslogs` configurations say (`logs`), and
//! their tasks' resource use, published as ECS's `AWS/ECS` CloudWatch metrics (`usage`).

pub mod logs;
pub mod usage;

use crate::app::App;
use crate::error::ApiError;
use crate::handlers::task_lookup::task_key_of;
use crate::state::TaskEntry;
use std::sync::Arc;

/// Task `task` of `cluster`, which must run on the agent's instance `instance_arn`.
fn task_on_instance(
    app: &App,
    cluster: &str,
    task: &str,
    instance_arn: &str,
) -> Result<Arc<TaskEntry>, ApiError> {
    let key = task_key_of(cluster, task)?;
    app.snapshot()
        .task(&key)
        .filter(|entry| entry.task.container_instance_arn.as_deref() == Some(instance_arn))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                "AccessDeniedException",
                format!("Task {task} does not run on container instance {instance_arn}."),
            )
        })
}
