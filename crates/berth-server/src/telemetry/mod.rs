//! What agents send besides task state (`berth_core::telemetry`): their containers' output,
//! stored in CloudWatch Logs where the tasks' `awslogs` configurations say (`logs`), and
//! their tasks' resource use, published as ECS's `AWS/ECS` CloudWatch metrics (`usage`).

pub mod logs;
pub mod usage;
