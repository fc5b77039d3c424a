//! Berth's core: the ECS data model as Rust types, ARNs, name validation and the pure logic
//! (state machines, placement, deployment arithmetic) that the server and agent share.
//! Nothing here does I/O or needs an async runtime.

pub mod arn;
pub mod awsvpc;
pub mod civil;
pub mod exec;
pub mod gateway;
pub mod iam;
pub mod logs;
pub mod model;
pub mod names;
pub mod pagination;
pub mod prometheus;
pub mod resources;
pub mod scheduler;
pub mod security_group;
pub mod service;
pub mod sigv4;
pub mod task_definition;
pub mod task_protection;
pub mod task_state;
pub mod telemetry;
pub mod websocket;

pub use arn::{Arn, ArnContext};
