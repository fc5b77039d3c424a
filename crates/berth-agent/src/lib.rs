//! The Berth host agent: registers its host as a container instance and drives containers to
//! the tasks the server assigns it. [`run`] is the whole agent (used by `berth agent` and, in
//! process, by `berth up`); the task engine, the server client and the container runtimes are
//! its parts.
//!
//! # Faults, and the bounds the agent keeps
//!
//! - **Heartbeats.** The agent heartbeats every 5 s ([`AgentConfig::heartbeat_interval`]). The
//!   server marks an instance `agentConnected=false` when it has not heard from its agent for
//!   its `--agent-grace` (default 20 s); the next heartbeat connects it again.
//! - **Agent restart (crash, kill -9, upgrade).** Containers keep running while the agent is
//!   away. On start the agent reads its identity and registers as the same instance, lists
//!   its containers by their labels and, with the first desired state, re-adopts the running
//!   ones (same container, same task), reports those that exited meanwhile with the exit
//!   code Docker kept, and stops containers of tasks no longer assigned to it. Container names
//!   are unique per task and container, so a second copy of a task cannot be created.
//! - **Lost identity.** The identity is written atomically and durably, with a backup copy;
//!   with neither readable the instance id is recovered from the `com.berth.agent-home`
//!   label of the agent's own containers ([`recovery`]). When nothing says who it was but
//!   files show it registered before, the agent refuses to start rather than register a
//!   second instance.
//! - **Docker daemon restarts, refusals and hangs** ([`engine::bounds`]). Runtime calls are
//!   bounded (30 s), transient failures are retried with backoff for up to 60 s per step;
//!   a task leaves PENDING within the image pull timeout (`--image-pull-timeout`, default
//!   10 min, retries included)
//!   and STOPPING within, per dependency wave, the longest stopTimeout plus 30 s (`docker
//!   stop` escalates to a kill; a container still not stopped is reported STOPPED with
//!   `CannotStopContainerError` while the agent keeps trying in the background). Containers
//!   that died with a daemon restart (exited while the daemon was unreachable) are reported
//!   with their exit codes and a reason saying so; their tasks end STOPPED
//!   (`EssentialContainerExited`), and services replace them.
//! - **Server away.** Registration, the desired-state stream and reports are retried with
//!   backoff (0.1 s doubling to 5 s); reports of a task are delivered in order, and a
//!   restarted agent resends whatever the server has not been told.
//! - **SIGTERM.** `berth agent` stops following the server and exits; containers keep
//!   running, to be re-adopted by the next run.

/// The agent version reported in `versionInfo.agentVersion`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub use agent::{run, AgentConfig, AgentError};

pub mod agent;
pub mod awsvpc;
pub mod backoff;
pub mod cgroups;
pub mod client;
pub mod credentials;
pub mod engine;
pub mod exec;
pub mod host;
pub mod identity;
pub mod logs;
pub mod metadata;
pub mod metrics;
pub mod recovery;
pub mod register;
pub mod registry;
pub mod reporter;
pub mod runtime;
pub mod spec;
pub mod stats;
pub mod websocket;
