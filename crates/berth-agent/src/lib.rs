//! The Berth host agent: registers its host as a container instance and drives containers to
//! the tasks the server assigns it. [`run`] is the whole agent (used by `berth agent` and, in
//! process, by `berth up`); the task engine, the server client and the container runtimes are
//! its parts.

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
