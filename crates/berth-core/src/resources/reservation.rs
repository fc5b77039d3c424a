//! What an instance's unstopped tasks hold, summed, and the `remainingResources` that leaves:
//! derived from the tasks rather than kept in the instance's record, so placing or stopping a
//! task writes only the task.

use super::TaskResources;
use crate::model::container_instance::{integer_resource, string_set_resource};
use crate::model::Resource;
use std::collections::BTreeMap;

/// The sum of the resources that an instance's tasks hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// CPU units.
    pub cpu: i64,
    /// MiB of memory.
    pub memory: i64,
    /// Static TCP host ports, with how many tasks hold each.
    pub tcp: BTreeMap<u16, u32>,
    /// Static UDP host ports, with how many tasks hold each.
    pub udp: BTreeMap<u16, u32>,
}

/// What an instance has left for placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remaining {
    pub cpu: i64,
    pub memory: i64,
    /// TCP ports in use: those reserved at registration and those tasks hold, sorted.
    pub tcp: Vec<u16>,
    /// UDP ports in use, sorted.
    pub udp: Vec<u16>,
}

impl Reservation {
    /// Adds (`sign` 1) or takes away (`sign` -1) one task's resources.
    pub fn add(&mut self, needs: &TaskResources, sign: i64) {
        self.cpu += sign * needs.cpu;
        self.memory += sign * needs.memory;
        for (held, ports) in [
            (&mut self.tcp, &needs.tcp_ports),
            (&mut self.udp, &needs.udp_ports),
        ] {
            for port in ports {
                let count = held.entry(*port).or_default();
                *count = u32::try_from(i64::from(*count) + sign).unwrap_or(0);
                if *count == 0 {
                    held.remove(port);
                }
            }
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.cpu == 0 && self.memory == 0 && self.tcp.is_empty() && self.udp.is_empty()
    }

    /// What an instance with `registered` resources has left.
    pub fn remaining(&self, registered: &[Resource]) -> Remaining {
        let ports = |name: &str, held: &BTreeMap<u16, u32>| -> Vec<u16> {
            let mut all: Vec<u16> = super::ports(registered, name).into_iter().collect();
            all.extend(held.keys());
            all.sort_unstable();
            all.dedup();
            all
        };
        Remaining {
            cpu: (super::integer(registered, "CPU") - self.cpu).max(0),
            memory: (super::integer(registered, "MEMORY") - self.memory).max(0),
            tcp: ports("PORTS", &self.tcp),
            udp: ports("PORTS_UDP", &self.udp),
        }
    }

    /// `remainingResources` as ECS shows it, in the order of `registered`.
    pub fn remaining_resources(&self, registered: &[Resource]) -> Vec<Resource> {
        let left = self.remaining(registered);
        let text = |ports: &[u16]| ports.iter().map(u16::to_string).collect();
        registered
            .iter()
            .map(|r| {
                let name = r.name.as_deref().unwrap_or_default();
                let int = |v: i64| integer_resource(name, i32::try_from(v).unwrap_or(i32::MAX));
                match name {
                    "CPU" => int(left.cpu),
                    "MEMORY" => int(left.memory),
                    "PORTS" => string_set_resource(name, text(&left.tcp)),
                    "PORTS_UDP" => string_set_resource(name, text(&left.udp)),
                    _ => r.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> Vec<Resource> {
        vec![
            integer_resource("CPU", 2048),
            integer_resource("MEMORY", 4000),
            string_set_resource("PORTS", vec!["22".into()]),
            string_set_resource("PORTS_UDP", Vec::new()),
        ]
    }

    fn needs(cpu: i64, memory: i64, tcp: &[u16]) -> TaskResources {
        TaskResources {
            cpu,
            memory,
            tcp_ports: tcp.to_vec(),
            udp_ports: Vec::new(),
        }
    }

    #[test]
    fn remaining_is_registered_less_what_tasks_hold_and_comes_back_when_they_go() {
        let mut held = Reservation::default();
        held.add(&needs(512, 1000, &[80]), 1);
        held.add(&needs(256, 500, &[]), 1);
        let left = held.remaining(&registered());
        assert_eq!((left.cpu, left.memory), (1280, 2500));
        assert_eq!(left.tcp, vec![22, 80]);
        let shown = held.remaining_resources(&registered());
        assert_eq!(shown[0].integer_value, Some(1280));
        assert_eq!(
            shown[2].string_set_value,
            Some(vec!["22".into(), "80".into()])
        );
        held.add(&needs(512, 1000, &[80]), -1);
        held.add(&needs(256, 500, &[]), -1);
        assert!(held.is_empty());
        assert_eq!(held.remaining(&registered()).tcp, vec![22]);
    }

    #[test]
    fn a_port_two_tasks_hold_stays_in_use_until_both_let_go() {
        let mut held = Reservation::default();
        held.add(&needs(0, 0, &[8080]), 1);
        held.add(&needs(0, 0, &[8080]), 1);
        held.add(&needs(0, 0, &[8080]), -1);
        assert_eq!(held.remaining(&registered()).tcp, vec![22, 8080]);
    }

    #[test]
    fn an_overcommitted_instance_has_nothing_left_rather_than_less_than_nothing() {
        let mut held = Reservation::default();
        held.add(&needs(4096, 9000, &[]), 1);
        let left = held.remaining(&registered());
        assert_eq!((left.cpu, left.memory), (0, 0));
    }
}
