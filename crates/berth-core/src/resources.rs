//! What a task needs from an instance (CPU units, MiB of memory, host ports), and (in
//! [`reservation`]) what an instance's tasks hold and the `remainingResources` that leaves.

use crate::model::task::TaskOverride;
use crate::model::task_definition::TaskDefinition;
use crate::model::Resource;
use crate::task_definition::{parse_task_cpu, parse_task_memory};
use crate::task_state::container_override;
use std::collections::BTreeSet;

pub mod reservation;
pub use reservation::{Remaining, Reservation};

/// What one task reserves on its instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskResources {
    /// CPU units (1024 = one vCPU).
    pub cpu: i64,
    /// Memory in MiB.
    pub memory: i64,
    /// Static host TCP ports.
    pub tcp_ports: Vec<u16>,
    /// Static host UDP ports.
    pub udp_ports: Vec<u16>,
}

/// The resources a task of `td` with `overrides` reserves: task-level cpu/memory when set,
/// else the sum over containers (memory, or memoryReservation when memory is absent), and the
/// static host ports of its port mappings (bridge: explicit non-zero hostPort; host mode: the
/// hostPort or containerPort; awsvpc and none: no host ports).
pub fn task_resources(td: &TaskDefinition, overrides: &TaskOverride) -> TaskResources {
    let containers = td.container_definitions.as_deref().unwrap_or_default();
    let mut cpu = 0i64;
    let mut memory = 0i64;
    let mut tcp_ports = Vec::new();
    let mut udp_ports = Vec::new();
    let network_mode = td.network_mode.as_deref().unwrap_or("bridge");
    for def in containers {
        let o = container_override(overrides, def.name.as_deref().unwrap_or(""));
        cpu += i64::from(o.and_then(|o| o.cpu).or(def.cpu).unwrap_or(0).max(0));
        let hard = o.and_then(|o| o.memory).or(def.memory);
        let soft = o
            .and_then(|o| o.memory_reservation)
            .or(def.memory_reservation);
        memory += i64::from(hard.or(soft).unwrap_or(0).max(0));
        for mapping in def.port_mappings.iter().flatten() {
            let host_port = match network_mode {
                "host" => mapping
                    .host_port
                    .filter(|p| *p > 0)
                    .or(mapping.container_port),
                "bridge" => mapping.host_port.filter(|p| *p > 0),
                _ => None,
            };
            let Some(port) = host_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            if mapping.protocol.as_deref() == Some("udp") {
                udp_ports.push(port);
            } else {
                tcp_ports.push(port);
            }
        }
    }
    let task_cpu = overrides.cpu.as_deref().or(td.cpu.as_deref());
    if let Some(task_cpu) = task_cpu.and_then(|t| parse_task_cpu(t).ok()) {
        cpu = i64::from(task_cpu);
    }
    let task_memory = overrides.memory.as_deref().or(td.memory.as_deref());
    if let Some(task_memory) = task_memory.and_then(|t| parse_task_memory(t).ok()) {
        memory = i64::from(task_memory);
    }
    TaskResources {
        cpu,
        memory,
        tcp_ports,
        udp_ports,
    }
}

/// Why a task does not fit an instance: ECS's failure reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    Cpu,
    Memory,
    Ports,
    PortsUdp,
}

impl Shortfall {
    /// The reason ECS puts in a RunTask failure.
    pub fn reason(self) -> &'static str {
        match self {
            Shortfall::Cpu => "RESOURCE:CPU",
            Shortfall::Memory => "RESOURCE:MEMORY",
            Shortfall::Ports => "RESOURCE:PORTS",
            Shortfall::PortsUdp => "RESOURCE:PORTS_UDP",
        }
    }
}

fn resource<'a>(resources: &'a [Resource], name: &str) -> Option<&'a Resource> {
    resources.iter().find(|r| r.name.as_deref() == Some(name))
}

fn integer(resources: &[Resource], name: &str) -> i64 {
    resource(resources, name)
        .map(|r| r.integer_value.map(i64::from).or(r.long_value).unwrap_or(0))
        .unwrap_or(0)
}

fn ports(resources: &[Resource], name: &str) -> BTreeSet<u16> {
    resource(resources, name)
        .and_then(|r| r.string_set_value.as_ref())
        .map(|set| set.iter().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
