//! The Berth host agent: registers its host as a container instance and drives containers to
//! the tasks the server assigns it. Built in the agent issue; this crate holds its place in the
//! workspace so the dependency graph is fixed from the start.

/// The agent version reported in `versionInfo.agentVersion`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub use agent::{run, AgentConfig, AgentError};

pub mod agent;
pub mod backoff;
pub mod client;
pub mod engine;
pub mod host;
pub mod identity;
pub mod register;
pub mod reporter;
pub mod runtime;
pub mod spec;
