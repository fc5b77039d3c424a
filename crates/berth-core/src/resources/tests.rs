use super::*;
use crate::model::task::ContainerOverride;
use crate::model::task_definition::{ContainerDefinition, PortMapping};

fn container(
    name: &str,
    memory: Option<i32>,
    reservation: Option<i32>,
    cpu: i32,
) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some("busybox".into()),
        memory,
        memory_reservation: reservation,
        cpu: Some(cpu),
        ..ContainerDefinition::default()
    }
}

fn td(containers: Vec<ContainerDefinition>) -> TaskDefinition {
    TaskDefinition {
        container_definitions: Some(containers),
        ..TaskDefinition::default()
    }
}

#[test]
fn task_needs_sum_container_memory_or_reservation_and_cpu() {
    let def = td(vec![
        container("a", Some(64), None, 128),
        container("b", None, Some(32), 0),
    ]);
    let needs = task_resources(&def, &TaskOverride::default());
    assert_eq!(needs.memory, 96);
    assert_eq!(needs.cpu, 128);
}

#[test]
fn task_level_values_and_overrides_win() {
    let mut def = td(vec![container("a", Some(64), None, 128)]);
    def.cpu = Some("1 vCPU".into());
    def.memory = Some("1 GB".into());
    // Registration stores these as "1024"; the unit forms still parse when given directly.
    assert_eq!(
        task_resources(&def, &TaskOverride::default()),
        TaskResources {
            cpu: 1024,
            memory: 1024,
            ..TaskResources::default()
        }
    );
    let overrides = TaskOverride {
        memory: Some("512".into()),
        ..TaskOverride::default()
    };
    assert_eq!(task_resources(&def, &overrides).memory, 512);
    let plain = td(vec![container("a", Some(64), None, 128)]);
    let per_container = TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: Some("a".into()),
            memory: Some(300),
            ..ContainerOverride::default()
        }]),
        ..TaskOverride::default()
    };
    assert_eq!(task_resources(&plain, &per_container).memory, 300);
}

#[test]
fn only_static_host_ports_are_reserved() {
    let mut web = container("web", Some(64), None, 0);
    web.port_mappings = Some(vec![
        PortMapping {
            container_port: Some(80),
            host_port: Some(8080),
            ..PortMapping::default()
        },
        PortMapping {
            container_port: Some(81),
            host_port: Some(0),
            ..PortMapping::default()
        },
        PortMapping {
            container_port: Some(53),
            host_port: Some(5353),
            protocol: Some("udp".into()),
            ..PortMapping::default()
        },
    ]);
    let needs = task_resources(&td(vec![web.clone()]), &TaskOverride::default());
    assert_eq!(needs.tcp_ports, vec![8080]);
    assert_eq!(needs.udp_ports, vec![5353]);
    let mut host = td(vec![web]);
    host.network_mode = Some("host".into());
    assert_eq!(
        task_resources(&host, &TaskOverride::default()).tcp_ports,
        vec![8080, 81]
    );
}

#[test]
fn shortfalls_are_named_as_ecs_names_them() {
    assert_eq!(Shortfall::Cpu.reason(), "RESOURCE:CPU");
    assert_eq!(Shortfall::Memory.reason(), "RESOURCE:MEMORY");
    assert_eq!(Shortfall::Ports.reason(), "RESOURCE:PORTS");
    assert_eq!(Shortfall::PortsUdp.reason(), "RESOURCE:PORTS_UDP");
}
