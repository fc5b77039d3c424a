//! The pieces of a state report: container statuses, changes, bindings and timestamps in the
//! shapes of SubmitTaskStateChange.

use crate::runtime::{Health, PortBinding};
use berth_core::model::common::Timestamp;
use berth_core::model::task::{ContainerStateChange, NetworkBinding};
use std::time::{SystemTime, UNIX_EPOCH};

/// The task `reason` when an essential container exits, as ECS words it.
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";

/// A container's `lastStatus`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    /// The ECS name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }

    /// Parses an ECS container status; anything unknown counts as PENDING.
    pub fn parse(text: &str) -> ContainerStatus {
        match text {
            "RUNNING" => ContainerStatus::Running,
            "STOPPED" => ContainerStatus::Stopped,
            _ => ContainerStatus::Pending,
        }
    }
}

/// A change of container `name` to `status`.
pub fn container_change(
    name: &str,
    status: ContainerStatus,
    runtime_id: Option<String>,
) -> ContainerStateChange {
    ContainerStateChange {
        container_name: Some(name.to_string()),
        status: Some(status.as_str().to_string()),
        runtime_id,
        ..ContainerStateChange::default()
    }
}

/// A runtime port binding as an ECS network binding.
pub fn binding(port: &PortBinding) -> NetworkBinding {
    NetworkBinding {
        bind_ip: Some(port.host_ip.clone()),
        container_port: Some(i32::from(port.container_port)),
        host_port: Some(i32::from(port.host_port)),
        protocol: Some(port.protocol.clone()),
        ..NetworkBinding::default()
    }
}

/// The ECS name of a runtime health.
pub fn health_name(health: Health) -> &'static str {
    match health {
        Health::Healthy => "HEALTHY",
        Health::Unhealthy => "UNHEALTHY",
        Health::Starting | Health::Unknown => "UNKNOWN",
    }
}

/// Now, in epoch seconds.
pub fn epoch_now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
