//! The statuses of ECS resources as enums: what stored records carry and the code that reads
//! them compares, each (de)serialising to exactly the string the botocore ECS model and the
//! ECS documentation give it, so records written as strings decode unchanged.
//!
//! Inputs that arrive as user strings (ListTasks `desiredStatus`, ListContainerInstances
//! `status`, ...) are checked by their handlers against the subset each operation accepts;
//! [`parse`](ClusterStatus::parse) is there for them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a status enum from one table of variants and their ECS strings, which serde,
/// `as_str`, `parse` and `Display` all use: one place per string. (A derive crate such as
/// strum would spell each string a second time beside serde's rename.)
macro_rules! ecs_status {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The ECS string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value whose ECS string is `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|s| s.as_str() == text)
            }

            /// The ECS strings of `values` joined by ", ", for messages listing what is
            /// allowed.
            pub fn join(values: &[$name]) -> String {
                let names: Vec<&str> = values.iter().map(|s| s.as_str()).collect();
                names.join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

ecs_status! {
    /// A cluster's `status`. Berth's clusters are ACTIVE until deleted, then INACTIVE.
    pub enum ClusterStatus {
        Active = "ACTIVE",
        Provisioning = "PROVISIONING",
        Deprovisioning = "DEPROVISIONING",
        Failed = "FAILED",
        Inactive = "INACTIVE",
    }
}

ecs_status! {
    /// A container instance's `status`; INACTIVE ones are deregistered.
    pub enum ContainerInstanceStatus {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Registering = "REGISTERING",
        Deregistering = "DEREGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Inactive = "INACTIVE",
    }
}

ecs_status! {
    /// A task's or container's `lastStatus` and `desiredStatus`, in lifecycle order (a
    /// container goes only through PENDING, RUNNING and STOPPED; a desired status is RUNNING
    /// or STOPPED).
    #[derive(PartialOrd, Ord)]
    pub enum TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        /// ECS shows it for tasks it has deleted; Berth never sets it.
        Deleted = "DELETED",
    }
}

ecs_status! {
    /// A task's `connectivity` to the control plane.
    pub enum Connectivity {
        Connected = "CONNECTED",
        Disconnected = "DISCONNECTED",
    }
}

ecs_status! {
    /// The `healthStatus` of a task or a container.
    pub enum HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
}

ecs_status! {
    /// A service's `status`: ACTIVE, DRAINING while it is being deleted, INACTIVE once deleted.
    pub enum ServiceStatus {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
}

ecs_status! {
    /// A task definition revision's `status`.
    pub enum TaskDefinitionStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

ecs_status! {
    /// A service deployment's `status`: PRIMARY (the newest), ACTIVE (older, being replaced)
    /// or INACTIVE.
    pub enum DeploymentStatus {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_status! {
    /// A deployment's `rolloutState`.
    pub enum DeploymentRolloutState {
        Completed = "COMPLETED",
        Failed = "FAILED",
        InProgress = "IN_PROGRESS",
    }
}

ecs_status! {
    /// The `status` of a service deployment (the history DescribeServiceDeployments shows).
    pub enum ServiceDeploymentStatus {
        Pending = "PENDING",
        Successful = "SUCCESSFUL",
        Stopped = "STOPPED",
        StopRequested = "STOP_REQUESTED",
        InProgress = "IN_PROGRESS",
        RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED",
    }
}

impl ServiceDeploymentStatus {
    /// Whether nothing changes any more after this status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ServiceDeploymentStatus::Successful
                | ServiceDeploymentStatus::Stopped
                | ServiceDeploymentStatus::RollbackSuccessful
                | ServiceDeploymentStatus::RollbackFailed
        )
    }
}

ecs_status! {
    /// What the circuit breaker or the alarms of a service deployment are doing.
    pub enum RollbackMonitorsStatus {
        Triggered = "TRIGGERED",
        Monitoring = "MONITORING",
        MonitoringComplete = "MONITORING_COMPLETE",
        Disabled = "DISABLED",
    }
}

ecs_status! {
    /// The overall state of a container instance's health, and of each of its checks.
    pub enum InstanceHealthCheckState {
        Ok = "OK",
        Impaired = "IMPAIRED",
        InsufficientData = "INSUFFICIENT_DATA",
        Initializing = "INITIALIZING",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialise_to_their_ecs_strings_and_back() {
        let json = serde_json::to_string(&ContainerInstanceStatus::RegistrationFailed)
            .expect("serialises");
        assert_eq!(json, "\"REGISTRATION_FAILED\"");
        let back: ContainerInstanceStatus = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, ContainerInstanceStatus::RegistrationFailed);
        for status in TaskDefinitionStatus::ALL {
            let json = serde_json::to_value(status).expect("serialises");
            assert_eq!(json, status.as_str());
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(
            TaskDefinitionStatus::join(TaskDefinitionStatus::ALL),
            "ACTIVE, INACTIVE, DELETE_IN_PROGRESS"
        );
    }

    #[test]
    fn unknown_strings_do_not_parse_or_deserialise() {
        assert_eq!(ClusterStatus::parse("active"), None);
        assert_eq!(HealthStatus::parse("HEALTHY"), Some(HealthStatus::Healthy));
        assert!(serde_json::from_str::<ServiceStatus>("\"DELETED\"").is_err());
    }

    #[test]
    fn task_statuses_parse_and_order_as_the_lifecycle() {
        for pair in TaskStatus::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
            assert_eq!(TaskStatus::parse(pair[0].as_str()), Some(pair[0]));
        }
        assert_eq!(TaskStatus::parse("BOGUS"), None);
    }

    #[test]
    fn finished_service_deployments_are_terminal() {
        let terminal: Vec<_> = ServiceDeploymentStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            [
                "SUCCESSFUL",
                "STOPPED",
                "ROLLBACK_SUCCESSFUL",
                "ROLLBACK_FAILED"
            ]
        );
    }
}
