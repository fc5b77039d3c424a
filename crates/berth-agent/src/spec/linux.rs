//! The Linux-specific settings of a container definition in Docker's terms: `linuxParameters`
//! devices, shared memory size and swap, and the container's `systemControls`.

use super::SpecError;
use crate::runtime::DeviceSpec;
use berth_core::model::task_definition::{ContainerDefinition, LinuxParameters};
use std::collections::BTreeMap;

/// Swappiness ECS gives a container that sets `maxSwap` but no `swappiness`.
pub const DEFAULT_SWAPPINESS: u8 = 60;

/// What `linuxParameters` and `systemControls` come to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct LinuxSettings {
    pub devices: Vec<DeviceSpec>,
    pub shm_size_mib: Option<u64>,
    pub memory_swap_mib: Option<u64>,
    pub memory_swappiness: Option<u8>,
    pub sysctls: BTreeMap<String, String>,
}

/// The container's Linux settings. `memory_mib` is its hard memory limit, which `maxSwap`
/// adds to (Docker's `MemorySwap` counts memory and swap together).
pub(super) fn linux_settings(
    def: &ContainerDefinition,
    container: &str,
    memory_mib: Option<u64>,
) -> Result<LinuxSettings, SpecError> {
    let invalid = |field: &'static str, message: String| SpecError::Invalid {
        container: container.to_string(),
        field,
        message,
    };
    let mut settings = LinuxSettings {
        sysctls: sysctls(def, container)?,
        ..LinuxSettings::default()
    };
    let Some(linux) = def.linux_parameters.as_ref() else {
        return Ok(settings);
    };
    settings.devices = devices(linux, container)?;
    settings.shm_size_mib = match linux.shared_memory_size {
        None => None,
        Some(size) => Some(u64::try_from(size).ok().filter(|s| *s > 0).ok_or_else(|| {
            invalid(
                "linuxParameters.sharedMemorySize",
                format!("{size} MiB is not a size above 0"),
            )
        })?),
    };
    // Without maxSwap the host's swap settings apply and ECS ignores swappiness.
    if let Some(max_swap) = linux.max_swap {
        let max_swap = u64::try_from(max_swap).map_err(|_| {
            invalid(
                "linuxParameters.maxSwap",
                format!("{max_swap} MiB is negative"),
            )
        })?;
        let memory = memory_mib.filter(|m| *m > 0).ok_or_else(|| {
            invalid(
                "linuxParameters.maxSwap",
                "needs a hard memory limit (memory) to add the swap to".to_string(),
            )
        })?;
        settings.memory_swap_mib = Some(memory.saturating_add(max_swap));
        settings.memory_swappiness = Some(match linux.swappiness {
            None => DEFAULT_SWAPPINESS,
            Some(s) => u8::try_from(s).ok().filter(|s| *s <= 100).ok_or_else(|| {
                invalid(
                    "linuxParameters.swappiness",
                    format!("{s} is not between 0 and 100"),
                )
            })?,
        });
    }
    Ok(settings)
}

/// Host devices: `containerPath` defaults to the host path, `permissions` (read, write, mknod)
/// become cgroup permissions `rwm`; none listed means all three, as in ECS.
fn devices(linux: &LinuxParameters, container: &str) -> Result<Vec<DeviceSpec>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        container: container.to_string(),
        field: "linuxParameters.devices",
        message,
    };
    let mut out = Vec::new();
    for device in linux.devices.iter().flatten() {
        if device.host_path.is_empty() {
            return Err(invalid("a device has no hostPath".to_string()));
        }
        let listed = device.permissions.as_deref().unwrap_or_default();
        let mut permissions = String::new();
        for (name, letter) in [("read", 'r'), ("write", 'w'), ("mknod", 'm')] {
            if listed.is_empty() || listed.iter().any(|p| p == name) {
                permissions.push(letter);
            }
        }
        if let Some(unknown) = listed
            .iter()
            .find(|p| !matches!(p.as_str(), "read" | "write" | "mknod"))
        {
            return Err(invalid(format!(
                "permission '{unknown}' of {} is not read, write or mknod",
                device.host_path
            )));
        }
        out.push(DeviceSpec {
            host_path: device.host_path.clone(),
            container_path: device
                .container_path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| device.host_path.clone()),
            permissions,
        });
    }
    Ok(out)
}

/// `systemControls` as Docker sysctls (`namespace` = `value`).
fn sysctls(
    def: &ContainerDefinition,
    container: &str,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    for control in def.system_controls.iter().flatten() {
        let namespace = control
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SpecError::Missing {
                container: container.to_string(),
                field: "systemControls.namespace",
            })?;
        let value = control.value.clone().ok_or_else(|| SpecError::Invalid {
            container: container.to_string(),
            field: "systemControls",
            message: format!("{namespace} has no value"),
        })?;
        out.insert(namespace.to_string(), value);
    }
    Ok(out)
}
