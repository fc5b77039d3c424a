//! The references Docker enforces between containers and volumes, so that fast tests catch an
//! engine that creates or starts containers in an order Docker would refuse: `volumes_from`
//! sources and link targets must exist at create; link targets and the containers whose PID or
//! IPC namespace is joined must run at start; a volume in use cannot be removed. Named volumes
//! are created by the first container that mounts them, with that mount's options.

use super::{FakeContainer, State};
use crate::runtime::{ContainerSpec, MountSpec, Result, RuntimeError};
use std::collections::BTreeMap;

/// A named volume of the fake, as the first container that mounted it created it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeVolume {
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The container a `volumes_from` entry names (`name`, `name:ro` or `name:rw`).
fn volumes_from_source(entry: &str) -> &str {
    match entry.rsplit_once(':') {
        Some((source, "ro" | "rw")) => source,
        _ => entry,
    }
}

/// The container a link `name:alias` points at.
fn link_target(link: &str) -> &str {
    link.split_once(':').map_or(link, |(target, _)| target)
}

/// The container whose namespace a mode `container:NAME` joins.
fn joined(mode: Option<&String>) -> Option<&str> {
    mode.and_then(|m| m.strip_prefix("container:"))
}

impl State {
    /// The container whose runtime name or id is `reference`.
    fn find(&self, reference: &str) -> Option<&FakeContainer> {
        let name = reference.trim_start_matches('/');
        self.containers
            .values()
            .find(|c| c.spec.name == name || c.id == reference)
    }

    /// Docker's checks when `spec` is created; on success, the named volumes the container
    /// will use: its own mounts', then those of its `volumes_from` sources.
    pub(super) fn check_create(&self, spec: &ContainerSpec) -> Result<Vec<String>> {
        let mut volumes: Vec<String> = spec
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountSpec::Volume { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        for entry in &spec.volumes_from {
            let source = volumes_from_source(entry);
            let found = self
                .find(source)
                .ok_or_else(|| RuntimeError::Create(format!("No such container: {source}")))?;
            for volume in &found.volumes {
                if !volumes.contains(volume) {
                    volumes.push(volume.clone());
                }
            }
        }
        for link in &spec.links {
            let target = link_target(link);
            if self.find(target).is_none() {
                return Err(RuntimeError::Create(format!(
                    "Could not get container for {target}"
                )));
            }
        }
        Ok(volumes)
    }

    /// Creates the named volumes `spec` mounts that do not exist yet, with its options.
    pub(super) fn provision_volumes(&mut self, spec: &ContainerSpec) {
        for mount in &spec.mounts {
            if let MountSpec::Volume {
                name,
                driver,
                driver_opts,
                labels,
                ..
            } = mount
            {
                self.volumes
                    .entry(name.clone())
                    .or_insert_with(|| FakeVolume {
                        driver: driver.clone(),
                        driver_opts: driver_opts.clone(),
                        labels: labels.clone(),
                    });
            }
        }
    }

    /// Docker's checks when the container of `spec` starts: what it links to and the
    /// containers whose namespaces it joins must be running.
    pub(super) fn check_start(&self, spec: &ContainerSpec) -> Result<()> {
        let running = |name: &str| self.find(name).is_some_and(|c| c.running);
        for link in &spec.links {
            let target = link_target(link);
            if !running(target) {
                return Err(RuntimeError::Start(format!(
                    "Cannot link to a non running container: /{target} AS /{}/{}",
                    spec.name,
                    link.split_once(':').map_or(target, |(_, alias)| alias)
                )));
            }
        }
        for (kind, mode) in [("PID", &spec.pid_mode), ("IPC", &spec.ipc_mode)] {
            if let Some(donor) = joined(mode.as_ref()) {
                if !running(donor) {
                    return Err(RuntimeError::Start(format!(
                        "cannot join {kind} of a non running container: {donor}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes the named volume `name` unless a container (running or not) uses it.
    pub(super) fn remove_volume(&mut self, name: &str) -> Result<()> {
        if !self.volumes.contains_key(name) {
            return Err(RuntimeError::NotFound(name.to_string()));
        }
        let users: Vec<&str> = self
            .containers
            .values()
            .filter(|c| c.volumes.iter().any(|v| v == name))
            .map(|c| c.id.as_str())
            .collect();
        if !users.is_empty() {
            return Err(RuntimeError::Other(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(name);
        Ok(())
    }
}
