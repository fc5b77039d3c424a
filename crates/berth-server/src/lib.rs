//! The Berth control plane: the ECS wire protocol and one handler per operation, over an
//! in-memory view of the store that a watch keeps current.

pub mod app;
pub mod auth;
pub mod authz;
pub mod autoscaling;
pub mod cloudwatch;
pub mod console;
pub mod controllers;
pub mod dispatch;
pub mod dns;
pub mod ec2;
pub mod elbv2;
pub mod error;
pub mod exec;
pub mod gateway;
pub mod group_write;
pub mod handlers;
pub mod http;
pub mod iam;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod protocol;
pub mod replicas;
pub mod secretsmanager;
pub mod servicediscovery;
pub mod ssm;
pub mod state;
pub mod sts;
pub mod task_secrets;
pub mod telemetry;
#[cfg(test)]
pub mod test_support;
pub mod tls;
pub mod vault;

pub use app::{App, ServerConfig};
pub use http::{serve, Server, StartError};
