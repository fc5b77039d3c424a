//! One module per ECS resource; each public function is one operation, reading like the ECS
//! documentation of that operation.

pub mod account_settings;
pub mod admission;
pub mod attributes;
pub mod capacity_providers;
pub mod clusters;
pub mod container_instances;
pub mod execute_command;
pub mod poll_endpoint;
pub mod service_deployments;
pub mod services;
pub mod tags;
pub mod task_definitions;
pub mod task_lookup;
pub mod task_protection;
pub mod task_reports;
pub mod task_sets;
pub mod tasks;
