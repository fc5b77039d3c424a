//! The pieces of a state report: container statuses, changes, bindings and timestamps in the
//! shapes of SubmitTaskStateChange.

use crate::runtime::{Health, PortBinding};
use berth_core::model::common::Timestamp;
use berth_core::model::task::{ContainerStateChange, NetworkBinding};
use berth_core::model::{HealthStatus, TaskStatus};
use std::time::{SystemTime, UNIX_EPOCH};

/// The task `reason` when an essential container exits, as ECS words it.
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";

/// A change of container `name` to `status` (PENDING, RUNNING or STOPPED).
pub fn container_change(
    name: &str,
    status: TaskStatus,
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

/// The ECS health of a runtime health.
pub fn health_status(health: Health) -> HealthStatus {
    match health {
        Health::Healthy => HealthStatus::Healthy,
        Health::Unhealthy => HealthStatus::Unhealthy,
        Health::Starting | Health::Unknown => HealthStatus::Unknown,
    }
}

/// Now, in epoch seconds.
pub fn epoch_now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
