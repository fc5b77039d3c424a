//! The ECS data model: request and response shapes with exactly ECS's JSON field names
//! (camelCase), enums and optionality, as the botocore ECS service model defines them.

pub mod capacity_provider;
pub mod cluster;
pub mod common;
pub mod container_instance;
pub mod iam;
pub mod service;
pub mod settings;
pub mod status;
pub mod task;
pub mod task_definition;

pub use common::*;
pub use status::*;
