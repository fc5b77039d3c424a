//! Tests of the pure parts of the glue: which targets a task has, where they stand, and
//! which stops drain first.

use super::*;
use crate::elbv2::health::TargetHealth;
use crate::elbv2::model::{
    Action, ActionKind, ForwardStickiness, HealthCheck, Listener, LoadBalancer as Elb, TargetGroup,
    WeightedTargetGroup,
};
use berth_core::model::task::{Container, NetworkBinding};
use std::collections::BTreeMap;

const GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/web/1";

fn lb(container: &str, port: i32) -> LoadBalancer {
    LoadBalancer {
        target_group_arn: Some(GROUP.into()),
        container_name: Some(container.into()),
        container_port: Some(port),
        ..LoadBalancer::default()
    }
}

fn task(bindings: &[(i32, i32)]) -> Task {
    with_ip(bindings, "0.0.0.0")
}

fn with_ip(bindings: &[(i32, i32)], ip: &str) -> Task {
    Task {
        task_arn: Some("arn:aws:ecs:us-east-1:0:task/demo/t1".into()),
        last_status: Some(TaskStatus::Running),
        containers: Some(vec![Container {
            name: Some("web".into()),
            network_bindings: Some(
                bindings
                    .iter()
                    .map(|(container, host)| NetworkBinding {
                        bind_ip: Some(ip.into()),
                        container_port: Some(*container),
                        host_port: Some(*host),
                        ..NetworkBinding::default()
                    })
                    .collect(),
            ),
            ..Container::default()
        }]),
        ..Task::default()
    }
}

fn config(targets: Vec<Target>, used: bool) -> Config {
    let group = TargetGroup {
        arn: GROUP.into(),
        name: "web".into(),
        protocol: "HTTP".into(),
        protocol_version: Some("HTTP1".into()),
        port: 80,
        vpc_id: None,
        target_type: "instance".into(),
        ip_address_type: "ipv4".into(),
        health_check: HealthCheck {
            enabled: true,
            protocol: "HTTP".into(),
            port: "traffic-port".into(),
            path: Some("/".into()),
            interval_seconds: 5,
            timeout_seconds: 2,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            matcher: Some("200".into()),
        },
        attributes: BTreeMap::new(),
        targets,
        created: 0.0,
        tags: Vec::new(),
    };
    let listeners = if used {
        vec![Listener {
            arn: "arn:listener".into(),
            load_balancer_arn: "arn:lb".into(),
            port: 8080,
            protocol: "HTTP".into(),
            default_actions: vec![Action {
                order: 1,
                kind: ActionKind::Forward {
                    target_groups: vec![WeightedTargetGroup {
                        target_group_arn: GROUP.into(),
                        weight: 1,
                    }],
                    stickiness: ForwardStickiness {
                        enabled: false,
                        duration_seconds: None,
                    },
                },
            }],
            default_rule_arn: "arn:rule".into(),
            rules: Vec::new(),
            tags: Vec::new(),
            default_rule_tags: Vec::new(),
        }]
    } else {
        Vec::new()
    };
    Config {
        load_balancers: Vec::<Elb>::new(),
        target_groups: vec![group],
        listeners,
    }
}

fn owned(port: u16, draining: bool) -> Target {
    Target {
        id: "mi-1".into(),
        port,
        availability_zone: None,
        draining_since: draining.then_some(5.0),
        owner: Some("arn:aws:ecs:us-east-1:0:task/demo/t1".into()),
    }
}

fn health(state: &'static str, description: Option<&str>) -> TargetHealth {
    TargetHealth {
        state,
        reason: None,
        description: description.map(str::to_string),
    }
}

#[test]
fn a_bridge_task_is_its_instance_and_the_host_port_bound_to_the_container_port() {
    let t = task(&[(443, 32000), (80, 32768)]);
    assert_eq!(
        targets_of(&t, &[lb("web", 80)], "mi-1"),
        vec![(GROUP.to_string(), "mi-1".to_string(), 32768)]
    );
    // IPv4 before IPv6, which Docker may bind on another port.
    let mut both = with_ip(&[(80, 32769)], "::");
    let v4 = task(&[(80, 32768)]).containers.unwrap_or_default();
    if let Some(c) = both.containers.as_mut().and_then(|c| c.first_mut()) {
        let mut bindings = c.network_bindings.clone().unwrap_or_default();
        bindings.extend(v4[0].network_bindings.clone().unwrap_or_default());
        c.network_bindings = Some(bindings);
    }
    assert_eq!(targets_of(&both, &[lb("web", 80)], "mi-1")[0].2, 32768);
    // Host mode reports no binding: the container port is the host's.
    assert_eq!(
        targets_of(&task(&[]), &[lb("web", 8080)], "mi-1")[0].2,
        8080
    );
    // A container the task has not got gives no target.
    assert!(targets_of(&t, &[lb("api", 80)], "mi-1").is_empty());
}

#[test]
fn targets_are_pending_until_registered_and_healthy_then_unhealthy_with_the_reason() {
    let board = HealthBoard::default();
    let key = (GROUP.to_string(), "mi-1".to_string(), 32768);
    let keys = [key.clone()];
    assert_eq!(
        target_state(&config(Vec::new(), true), &board, &keys),
        Targets::Pending,
        "not registered yet"
    );
    let registered = config(vec![owned(32768, false)], true);
    assert_eq!(target_state(&registered, &board, &keys), Targets::Pending);
    board.set(key.clone(), health("initial", None));
    assert_eq!(target_state(&registered, &board, &keys), Targets::Pending);
    board.set(key.clone(), health("healthy", None));
    assert_eq!(target_state(&registered, &board, &keys), Targets::Healthy);
    board.set(
        key.clone(),
        health(
            "unhealthy",
            Some("Health checks failed with these codes: [500]"),
        ),
    );
    match target_state(&registered, &board, &keys) {
        Targets::Unhealthy(target) => {
            assert_eq!(
                (target.id.as_str(), target.port, target.reason.as_str()),
                (
                    "mi-1",
                    32768,
                    "Health checks failed with these codes: [500]"
                )
            );
        }
        other => panic!("unhealthy expected, got {other:?}"),
    }
    // A draining registration is not a registration.
    board.set(key, health("healthy", None));
    let draining = config(vec![owned(32768, true)], true);
    assert_eq!(target_state(&draining, &board, &keys), Targets::Pending);
    // A group no load balancer uses is not checked: it holds nothing back.
    let unused = config(vec![owned(32768, false)], false);
    assert_eq!(
        target_state(&unused, &HealthBoard::default(), &keys),
        Targets::Healthy
    );
}

#[test]
fn only_a_running_registered_task_drains_before_it_stops() {
    let owners: HashSet<String> = ["arn:aws:ecs:us-east-1:0:task/demo/t1".to_string()].into();
    let mut registered = task(&[(80, 32768)]);
    assert!(deactivate_first(&mut registered, &owners));
    assert_eq!(registered.last_status, Some(TaskStatus::Deactivating));
    let mut unregistered = task(&[(80, 32768)]);
    assert!(!deactivate_first(&mut unregistered, &HashSet::new()));
    assert_eq!(unregistered.last_status, Some(TaskStatus::Running));
    let mut pending = task(&[]);
    pending.last_status = Some(TaskStatus::Pending);
    assert!(!deactivate_first(&mut pending, &owners));
}
