//! What a task needs from an instance (CPU units, MiB of memory, host ports) and the
//! bookkeeping of an instance's `remainingResources` as tasks are placed and stop.

use crate::model::container_instance::ContainerInstance;
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

/// Whether `needs` fits in what `instance` has left; the first shortfall otherwise, checked in
/// ECS's order (CPU, MEMORY, PORTS, PORTS_UDP).
pub fn fits(instance: &ContainerInstance, needs: &TaskResources) -> Result<(), Shortfall> {
    let remaining = instance.remaining_resources.as_deref().unwrap_or_default();
    if integer(remaining, "CPU") < needs.cpu {
        return Err(Shortfall::Cpu);
    }
    if integer(remaining, "MEMORY") < needs.memory {
        return Err(Shortfall::Memory);
    }
    let used_tcp = ports(remaining, "PORTS");
    if needs.tcp_ports.iter().any(|p| used_tcp.contains(p)) || has_duplicates(&needs.tcp_ports) {
        return Err(Shortfall::Ports);
    }
    let used_udp = ports(remaining, "PORTS_UDP");
    if needs.udp_ports.iter().any(|p| used_udp.contains(p)) || has_duplicates(&needs.udp_ports) {
        return Err(Shortfall::PortsUdp);
    }
    Ok(())
}

fn has_duplicates(ports: &[u16]) -> bool {
    let mut seen = BTreeSet::new();
    !ports.iter().all(|p| seen.insert(*p))
}

/// Takes `needs` out of the instance's remaining resources (call after `fits`).
pub fn reserve(instance: &mut ContainerInstance, needs: &TaskResources) {
    adjust(instance, needs, -1);
}

/// Gives `needs` back to the instance's remaining resources when a task stops.
pub fn release(instance: &mut ContainerInstance, needs: &TaskResources) {
    adjust(instance, needs, 1);
}

fn adjust(instance: &mut ContainerInstance, needs: &TaskResources, sign: i64) {
    let registered = instance.registered_resources.clone().unwrap_or_default();
    let remaining = instance.remaining_resources.get_or_insert_with(Vec::new);
    for r in remaining.iter_mut() {
        let name = r.name.clone().unwrap_or_default();
        match name.as_str() {
            "CPU" | "MEMORY" => {
                let amount = if name == "CPU" {
                    needs.cpu
                } else {
                    needs.memory
                };
                let cap = integer(&registered, &name);
                let current = r.integer_value.map(i64::from).unwrap_or(0);
                let next = (current + sign * amount).clamp(0, cap.max(0));
                r.integer_value = Some(i32::try_from(next).unwrap_or(i32::MAX));
            }
            "PORTS" | "PORTS_UDP" => {
                let task_ports = if name == "PORTS" {
                    &needs.tcp_ports
                } else {
                    &needs.udp_ports
                };
                let reserved = ports(&registered, &name);
                let set = r.string_set_value.get_or_insert_with(Vec::new);
                for port in task_ports {
                    let text = port.to_string();
                    if sign < 0 {
                        if !set.contains(&text) {
                            set.push(text);
                        }
                    } else if !reserved.contains(port) {
                        set.retain(|p| *p != text);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
