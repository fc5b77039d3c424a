//! Tests of the placement engine: each strategy and constraint, ECS's failure reasons, the
//! request parsing, and randomized property tests (fixed seeds, many cases) that no instance is
//! ever over-committed and that constraints always hold.

use super::*;
use crate::model::container_instance::ContainerInstance;
use crate::model::task::Task;
use crate::model::{ContainerInstanceStatus, Resource, TaskStatus};
use rng::Rng;

fn instance(id: &str, cpu: i64, memory: i64, zone: &str) -> InstanceInfo {
    InstanceInfo {
        id: id.into(),
        arn: format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}"),
        ec2_instance_id: Some(format!("i-{id}")),
        status: Some(ContainerInstanceStatus::Active),
        agent_connected: true,
        attributes: vec![("ecs.availability-zone".into(), Some(zone.into()))],
        cpu,
        memory,
        ..InstanceInfo::default()
    }
}

fn request(memory: i64, count: usize, strategies: Vec<Strategy>) -> TaskRequest {
    TaskRequest {
        resources: TaskResources {
            cpu: 0,
            memory,
            ..TaskResources::default()
        },
        group: "family:web".into(),
        strategies,
        constraints: Vec::new(),
        required_attributes: Vec::new(),
        count,
    }
}

fn member_of(text: &str) -> Constraint {
    Constraint::MemberOf(query::parse(text).expect("parses"))
}

fn zone_spread() -> Vec<Strategy> {
    default_service_strategies()
}

fn per_zone(s: &Snapshot, placements: &[usize]) -> [usize; 3] {
    let mut out = [0; 3];
    for &i in placements {
        let zone = s.fixed[i].attributes[0].1.clone().unwrap_or_default();
        out[usize::from(zone.as_bytes()[0] - b'a')] += 1;
    }
    out
}

#[test]
fn spread_over_three_zones_places_nine_tasks_three_three_three() {
    // Uneven zones: one instance in a, two in b, three in c.
    let ids = [
        ("1", "a"),
        ("2", "b"),
        ("3", "b"),
        ("4", "c"),
        ("5", "c"),
        ("6", "c"),
    ];
    let mut s = Snapshot::new(
        ids.iter()
            .map(|(id, z)| instance(id, 4096, 8192, z))
            .collect(),
    );
    let out = s.place(&request(128, 9, zone_spread()), 1);
    assert_eq!(out.placements.len(), 9);
    assert_eq!(per_zone(&s, &out.placements), [3, 3, 3]);
    // Within a zone, spread(instanceId) balances the instances too.
    assert_eq!(s.group_count(3, "family:web"), 1);
    assert_eq!(s.group_count(1, "family:web"), 2);
    // The next batch of the same group keeps the balance; another group starts afresh.
    let out = s.place(&request(128, 3, zone_spread()), 2);
    assert_eq!(per_zone(&s, &out.placements), [1, 1, 1]);
    let mut other = request(128, 1, zone_spread());
    other.group = "family:other".into();
    assert_eq!(s.place(&other, 3).placements, vec![0]);
}

#[test]
fn spread_counts_tasks_of_the_group_already_running() {
    let mut a = instance("1", 4096, 8192, "a");
    a.groups = vec![("family:web".into(), 2), ("family:db".into(), 5)];
    let b = instance("2", 4096, 8192, "b");
    let mut s = Snapshot::new(vec![a, b]);
    let out = s.place(&request(128, 2, zone_spread()), 0);
    assert_eq!(out.placements, vec![1, 1]);
}

#[test]
fn binpack_memory_fills_the_fullest_instance_that_fits_first() {
    let mut s = Snapshot::new(vec![
        instance("roomy", 4096, 8000, "a"),
        instance("full", 4096, 300, "a"),
        instance("fuller", 4096, 100, "a"),
        instance("snug", 4096, 1000, "a"),
    ]);
    let binpack = vec![Strategy::Binpack(BinpackField::Memory)];
    // 256 MiB: "fuller" (100) cannot take it; "full" (300) is the fullest that can.
    let out = s.place(&request(256, 1, binpack.clone()), 0);
    assert_eq!(out.placements, vec![1]);
    // Next: "full" has 44 left, so "snug" (1000) is now the fullest that fits, until it is not.
    let out = s.place(&request(256, 4, binpack.clone()), 0);
    assert_eq!(out.placements, vec![3, 3, 3, 0]);
    assert_eq!(s.remaining_memory(3), 1000 - 3 * 256);
    let cpu = vec![Strategy::Binpack(BinpackField::Cpu)];
    let mut t = Snapshot::new(vec![
        instance("a", 2048, 512, "a"),
        instance("b", 1024, 512, "a"),
    ]);
    assert_eq!(t.place(&request(1, 1, cpu), 0).placements, vec![1]);
}

#[test]
fn later_strategies_break_the_ties_of_earlier_ones() {
    let mut s = Snapshot::new(vec![
        instance("1", 4096, 4000, "a"),
        instance("2", 4096, 2000, "a"),
        instance("3", 4096, 3000, "b"),
        instance("4", 4096, 1000, "b"),
    ]);
    let strategies = vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Binpack(BinpackField::Memory),
    ];
    let out = s.place(&request(100, 4, strategies), 0);
    // The zones alternate; within each zone the fuller instance is packed.
    assert_eq!(out.placements, vec![3, 1, 3, 1]);
}

#[test]
fn random_differs_across_seeds_and_repeats_for_a_seed() {
    let make = || {
        Snapshot::new(
            (0..50)
                .map(|i| instance(&i.to_string(), 4096, 8192, "a"))
                .collect(),
        )
    };
    let pick = |seed: u64| {
        make()
            .place(&request(10, 5, default_run_task_strategies()), seed)
            .placements
    };
    assert_eq!(pick(42), pick(42));
    let distinct: std::collections::HashSet<Vec<usize>> = (0..20).map(pick).collect();
    assert!(distinct.len() > 15, "{distinct:?}");
    // Over many seeds every instance gets picked for a single task.
    let mut seen = [false; 50];
    for seed in 0..2000 {
        seen[pick(seed)[0]] = true;
    }
    assert!(seen.iter().all(|s| *s));
    // random after spread only breaks the spread's ties.
    let mut s = Snapshot::new(
        (0..6)
            .map(|i| instance(&i.to_string(), 4096, 8192, ["a", "b"][i % 2]))
            .collect(),
    );
    let strategies = vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Random,
    ];
    let out = s.place(&request(10, 6, strategies), 9);
    let zones: Vec<usize> = out.placements.iter().map(|i| i % 2).collect();
    assert_eq!(zones.iter().filter(|z| **z == 0).count(), 3);
}

#[test]
fn distinct_instance_puts_each_task_of_the_group_on_another_instance() {
    let mut busy = instance("busy", 4096, 8192, "a");
    busy.groups = vec![("family:web".into(), 1)];
    let mut s = Snapshot::new(vec![
        busy,
        instance("1", 4096, 8192, "a"),
        instance("2", 4096, 8192, "b"),
    ]);
    let mut req = request(10, 3, vec![Strategy::Binpack(BinpackField::Memory)]);
    req.constraints = vec![Constraint::DistinctInstance];
    let out = s.place(&req, 0);
    assert_eq!(out.placements, vec![1, 2]);
    assert_eq!(out.unplaced, 1);
    assert!(out
        .failures
        .iter()
        .all(|(_, r)| *r == Reason::DistinctInstance));
    assert_eq!(out.failures.len(), 3);
}

#[test]
fn member_of_restricts_placement_and_names_the_failure_as_ecs_does() {
    let mut s = Snapshot::new(vec![
        instance("1", 4096, 8192, "a"),
        instance("2", 4096, 8192, "b"),
        instance("3", 4096, 8192, "c"),
    ]);
    let mut req = request(10, 6, zone_spread());
    req.constraints = vec![member_of("attribute:ecs.availability-zone == b")];
    assert_eq!(s.place(&req, 0).placements, vec![1; 6]);
    req.constraints = vec![member_of("attribute:ecs.availability-zone == z")];
    let out = s.place(&req, 0);
    assert_eq!(out.unplaced, 6);
    assert_eq!(
        out.failures
            .iter()
            .map(|(i, r)| (*i, r.code()))
            .collect::<Vec<_>>(),
        vec![
            (0, "MemberOf placement constraint unsatisfied."),
            (1, "MemberOf placement constraint unsatisfied."),
            (2, "MemberOf placement constraint unsatisfied."),
        ]
    );
}

#[test]
fn task_state_constraints_see_the_tasks_placed_earlier_in_the_batch() {
    let mut s = Snapshot::new(
        (0..3)
            .map(|i| instance(&i.to_string(), 4096, 8192, "a"))
            .collect(),
    );
    let mut req = request(10, 4, vec![Strategy::Binpack(BinpackField::Memory)]);
    req.constraints = vec![member_of("runningTasksCount < 1")];
    let out = s.place(&req, 0);
    assert_eq!(out.placements, vec![0, 1, 2]);
    assert_eq!(out.unplaced, 1);
    let mut s = Snapshot::new(
        (0..3)
            .map(|i| instance(&i.to_string(), 4096, 8192, "a"))
            .collect(),
    );
    req.constraints = vec![member_of("not (task:group == family:web)")];
    assert_eq!(s.place(&req, 0).placements, vec![0, 1, 2]);
}

#[test]
fn resource_failures_name_the_first_missing_resource_and_the_agent() {
    let mut ports = instance("ports", 4096, 8192, "a");
    ports.tcp_ports = vec![80];
    let mut udp = instance("udp", 4096, 8192, "a");
    udp.udp_ports = vec![53];
    let mut gone = instance("gone", 4096, 8192, "a");
    gone.agent_connected = false;
    let mut draining = instance("draining", 4096, 8192, "a");
    draining.status = Some(ContainerInstanceStatus::Draining);
    let mut s = Snapshot::new(vec![
        instance("cpu", 100, 8192, "a"),
        instance("mem", 4096, 100, "a"),
        ports,
        udp,
        gone,
        draining,
    ]);
    let req = TaskRequest {
        resources: TaskResources {
            cpu: 256,
            memory: 512,
            tcp_ports: vec![80],
            udp_ports: vec![53],
        },
        ..request(0, 2, vec![])
    };
    let out = s.place(&req, 0);
    let codes: Vec<(usize, &str)> = out.failures.iter().map(|(i, r)| (*i, r.code())).collect();
    assert_eq!(
        codes,
        vec![
            (0, "RESOURCE:CPU"),
            (1, "RESOURCE:MEMORY"),
            (2, "RESOURCE:PORTS"),
            (3, "RESOURCE:PORTS_UDP"),
            (4, "AGENT"),
        ]
    );
    // A task needing the same host port twice fits nowhere; once placed, the port is taken.
    let mut s = Snapshot::new(vec![instance("1", 4096, 8192, "a")]);
    let mut req = request(10, 2, vec![]);
    req.resources.tcp_ports = vec![8080];
    let out = s.place(&req, 0);
    assert_eq!((out.placements.len(), out.unplaced), (1, 1));
    assert_eq!(out.failures, vec![(0, Reason::Resource(Shortfall::Ports))]);
    req.resources.tcp_ports = vec![9090, 9090];
    assert_eq!(s.place(&req, 0).unplaced, 2);
}

#[test]
fn place_on_checks_one_instance_and_release_gives_back() {
    let mut s = Snapshot::new(vec![instance("1", 1024, 1024, "a")]);
    let mut req = request(600, 1, vec![]);
    req.resources.tcp_ports = vec![80];
    assert_eq!(s.place_on(0, &req), Ok(()));
    assert_eq!(
        s.place_on(0, &req),
        Err(Reason::Resource(Shortfall::Memory))
    );
    assert_eq!((s.remaining_memory(0), s.running_tasks_count(0)), (424, 1));
    s.release(0, &req.resources, "family:web");
    assert_eq!(s.remaining_memory(0), 1024);
    assert_eq!(s.used_ports(0).0, &[] as &[u16]);
    assert_eq!(s.group_count(0, "family:web"), 0);
}

fn stored(id: &str, status: ContainerInstanceStatus, zone: &str) -> ContainerInstance {
    let int = |name: &str, v: i32| Resource {
        name: Some(name.into()),
        type_: Some("INTEGER".into()),
        double_value: None,
        long_value: None,
        integer_value: Some(v),
        string_set_value: None,
    };
    ContainerInstance {
        container_instance_arn: Some(format!("arn:aws:ecs:r:1:container-instance/c/{id}")),
        status: Some(status),
        agent_connected: Some(true),
        registered_resources: Some(vec![
            int("CPU", 2048),
            int("MEMORY", 1024),
            Resource {
                string_set_value: Some(vec!["22".into(), "80".into()]),
                ..int("PORTS", 0)
            },
        ]),
        attributes: Some(vec![crate::model::container_instance::stored_attribute(
            "zone",
            Some(zone),
        )]),
        ..ContainerInstance::default()
    }
}

#[test]
fn a_snapshot_of_stored_instances_counts_running_tasks_and_live_groups() {
    let task = |on: &str, last: TaskStatus, desired: TaskStatus, group: &str| Task {
        container_instance_arn: Some(format!("arn:aws:ecs:r:1:container-instance/c/{on}")),
        last_status: Some(last),
        desired_status: Some(desired),
        group: Some(group.into()),
        ..Task::default()
    };
    let instances = [
        stored("a", ContainerInstanceStatus::Active, "x"),
        stored("b", ContainerInstanceStatus::Draining, "y"),
        stored("c", ContainerInstanceStatus::Inactive, "z"),
    ];
    let tasks = [
        task("a", TaskStatus::Running, TaskStatus::Running, "g"),
        task("a", TaskStatus::Pending, TaskStatus::Running, "g"),
        task("a", TaskStatus::Running, TaskStatus::Stopped, "h"),
        task("a", TaskStatus::Stopped, TaskStatus::Stopped, "g"),
    ];
    let s = Snapshot::from_model(&instances, &tasks);
    assert_eq!(s.len(), 2);
    assert_eq!((s.id(0), s.id(1)), ("a", "b"));
    assert_eq!(s.running_tasks_count(0), 2);
    assert_eq!(s.group_count(0, "g"), 2);
    assert_eq!(s.group_count(0, "h"), 0);
    assert_eq!((s.remaining_cpu(0), s.remaining_memory(0)), (2048, 1024));
    assert_eq!(s.used_ports(0).0, &[22, 80]);
    assert!(s.is_schedulable(0) && !s.is_schedulable(1));
    let zone_x = query::parse("attribute:zone == x and task:group == g").expect("parses");
    assert!(zone_x.matches(&s.subjects(0)));
}

#[test]
fn strategies_and_constraints_are_read_and_checked_as_ecs_documents() {
    let strategy = |t: &str, f: Option<&str>| PlacementStrategy {
        type_: Some(t.into()),
        field: f.map(str::to_string),
    };
    assert_eq!(
        parse_strategies(&[
            strategy("spread", Some("attribute:ecs.availability-zone")),
            strategy("spread", Some("host")),
            strategy("binpack", Some("MEMORY")),
            strategy("random", None),
        ]),
        Ok(vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strategy::Spread(SpreadField::InstanceId),
            Strategy::Binpack(BinpackField::Memory),
            Strategy::Random,
        ])
    );
    for bad in [
        vec![strategy("binpack", Some("disk"))],
        vec![strategy("binpack", None)],
        vec![strategy("spread", None)],
        vec![strategy("spread", Some("zone"))],
        vec![strategy("pack", None)],
        vec![strategy("random", None); 6],
    ] {
        assert!(parse_strategies(&bad).is_err(), "{bad:?}");
    }
    assert!(check_daemon_strategies(&[]).is_ok());
    assert!(check_daemon_strategies(&[strategy("random", None)]).is_err());

    let constraint = |t: &str, e: Option<&str>| PlacementConstraint {
        type_: Some(t.into()),
        expression: e.map(str::to_string),
    };
    let td = TaskDefinitionPlacementConstraint {
        type_: Some("memberOf".into()),
        expression: Some("attribute:zone != z".into()),
    };
    let parsed = parse_constraints(
        &[constraint("distinctInstance", None)],
        std::slice::from_ref(&td),
    )
    .expect("valid");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0], Constraint::DistinctInstance);
    let err = parse_constraints(&[constraint("memberOf", Some("attribute:zone = b"))], &[])
        .expect_err("bad expression");
    assert!(err.contains("column 16"), "{err}");
    for bad in [
        vec![constraint("distinctInstance", Some("attribute:a == b"))],
        vec![constraint("memberOf", None)],
        vec![constraint("sameZone", None)],
        vec![constraint("distinctInstance", None); 10],
    ] {
        assert!(
            parse_constraints(&bad, std::slice::from_ref(&td)).is_err(),
            "{bad:?}"
        );
    }
}

/// A random cluster: instances of varied size, status, zone and ports, some with tasks.
fn random_cluster(rng: &mut Rng, n: usize) -> Vec<InstanceInfo> {
    (0..n)
        .map(|i| {
            let mut info = instance(
                &format!("{i:04}"),
                256 * (1 + rng.below(16) as i64),
                512 * (1 + rng.below(16) as i64),
                ["a", "b", "c"][rng.below(3) as usize],
            );
            info.status = Some(if rng.below(8) == 0 {
                ContainerInstanceStatus::Draining
            } else {
                ContainerInstanceStatus::Active
            });
            info.agent_connected = rng.below(10) != 0;
            if rng.below(3) == 0 {
                info.tcp_ports = vec![80];
            }
            if rng.below(4) == 0 {
                info.groups = vec![(format!("family:g{}", rng.below(3)), 1)];
            }
            if rng.below(2) == 0 {
                info.attributes.push((
                    "tier".into(),
                    Some(["web", "db"][rng.below(2) as usize].into()),
                ));
            }
            info
        })
        .collect()
}

fn random_request(rng: &mut Rng) -> TaskRequest {
    let all = [
        Strategy::Random,
        Strategy::Binpack(BinpackField::Cpu),
        Strategy::Binpack(BinpackField::Memory),
        Strategy::Spread(SpreadField::InstanceId),
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Spread(SpreadField::Attribute("tier".into())),
    ];
    let expressions = [
        "attribute:tier == web",
        "attribute:ecs.availability-zone in [a, b]",
        "not (task:group == family:g1)",
        "runningTasksCount <= 2",
        "attribute:tier !exists or attribute:ecs.availability-zone =~ [bc]",
    ];
    let mut constraints = Vec::new();
    if rng.below(3) == 0 {
        constraints.push(Constraint::DistinctInstance);
    }
    for _ in 0..rng.below(3) {
        constraints.push(member_of(expressions[rng.below(5) as usize]));
    }
    let required = |value: Option<&str>| RequiredAttribute {
        name: "tier".into(),
        value: value.map(str::to_string),
        target: None,
    };
    let required_attributes = match rng.below(4) {
        0 => vec![required(None)],
        1 => vec![required(Some("web"))],
        _ => Vec::new(),
    };
    TaskRequest {
        resources: TaskResources {
            cpu: 128 * rng.below(8) as i64,
            memory: 256 * (1 + rng.below(8) as i64),
            tcp_ports: if rng.below(4) == 0 { vec![80] } else { vec![] },
            udp_ports: if rng.below(8) == 0 { vec![53] } else { vec![] },
        },
        group: format!("family:g{}", rng.below(3)),
        strategies: (0..rng.below(4))
            .map(|_| all[rng.below(6) as usize].clone())
            .collect(),
        constraints,
        required_attributes,
        count: 1 + rng.below(10) as usize,
    }
}

#[test]
fn no_placement_ever_overcommits_breaks_a_constraint_or_uses_an_unschedulable_instance() {
    let mut rng = Rng::new(2024);
    for case in 0..300 {
        let n = 1 + rng.below(40) as usize;
        let infos = random_cluster(&mut rng, n);
        let mut s = Snapshot::new(infos.clone());
        let mut used_cpu = vec![0i64; infos.len()];
        let mut used_memory = vec![0i64; infos.len()];
        for batch in 0..20 {
            let req = random_request(&mut rng);
            let before = s.clone();
            let out = s.place(&req, rng.next_u64());
            assert_eq!(out.placements.len() + out.unplaced, req.count);
            assert_eq!(out.failures.is_empty(), out.unplaced == 0);
            let mut batch_on = vec![0u32; infos.len()];
            for &i in &out.placements {
                let ctx = format!("case {case} batch {batch} instance {i}");
                assert!(before.is_schedulable(i), "{ctx}");
                used_cpu[i] += req.resources.cpu;
                used_memory[i] += req.resources.memory;
                assert!(used_cpu[i] <= infos[i].cpu, "{ctx}: CPU overcommitted");
                assert!(
                    used_memory[i] <= infos[i].memory,
                    "{ctx}: memory overcommitted"
                );
                assert!(
                    s.remaining_cpu(i) >= 0 && s.remaining_memory(i) >= 0,
                    "{ctx}"
                );
                batch_on[i] += 1;
                if req.constraints.contains(&Constraint::DistinctInstance) {
                    assert_eq!(before.group_count(i, &req.group), 0, "{ctx}");
                    assert_eq!(batch_on[i], 1, "{ctx}: distinctInstance broken");
                }
                if !req.resources.tcp_ports.is_empty() {
                    assert!(!before.used_ports(i).0.contains(&80), "{ctx}: port clash");
                    assert_eq!(batch_on[i], 1, "{ctx}: one port, one task");
                }
                for c in &req.constraints {
                    if let Constraint::MemberOf(e) = c {
                        if e.is_static() {
                            assert!(e.matches(&before.subjects(i)), "{ctx}: {e}");
                        }
                    }
                }
                for r in &req.required_attributes {
                    let carried = before.attribute(i, &r.name);
                    assert!(
                        carried.is_some_and(|v| r.value.is_none() || v == r.value.as_deref()),
                        "{ctx}: lacks required attribute {r}"
                    );
                }
            }
            for (i, reason) in &out.failures {
                assert!(
                    before.state[*i] & snapshot::ACTIVE != 0,
                    "failures name ACTIVE instances only: {reason:?}"
                );
                if let Reason::Attribute(k) = reason {
                    let r = &req.required_attributes[usize::from(*k)];
                    let carried = before.attribute(*i, &r.name);
                    assert!(
                        !carried.is_some_and(|v| r.value.is_none() || v == r.value.as_deref()),
                        "instance {i} refused for {r}, which it carries"
                    );
                }
            }
        }
    }
}

#[test]
fn a_snapshot_refreshed_with_set_load_places_as_a_fresh_one_would() {
    let fresh_infos = || {
        vec![
            instance("1", 4096, 1000, "a"),
            instance("2", 4096, 1000, "b"),
            instance("3", 4096, 1000, "c"),
        ]
    };
    let mut kept = Snapshot::new(fresh_infos());
    let mut distinct = request(100, 3, vec![Strategy::Binpack(BinpackField::Memory)]);
    distinct.constraints = vec![Constraint::DistinctInstance];
    // A first batch fills the cached group counts; then instance 2 is found busy elsewhere.
    assert_eq!(kept.place(&distinct, 0).placements.len(), 3);
    let groups = vec![("family:web".to_string(), 1u32)];
    for i in [0, 2] {
        kept.set_load(i, Occupancy::default_for(4096, 1000));
    }
    kept.set_load(
        1,
        Occupancy {
            cpu: 4096,
            memory: 50,
            running_tasks_count: 1,
            groups: &groups,
            ..Occupancy::default()
        },
    );
    let mut fresh_infos = fresh_infos();
    fresh_infos[1].memory = 50;
    fresh_infos[1].running_tasks_count = 1;
    fresh_infos[1].groups = groups.clone();
    let mut fresh = Snapshot::new(fresh_infos);
    let from_kept = kept.place(&distinct, 0);
    let from_fresh = fresh.place(&distinct, 0);
    assert_eq!(from_kept.placements, from_fresh.placements);
    assert_eq!(from_kept.placements, vec![0, 2]);
    assert_eq!(kept.group_count(1, "family:web"), 1);
    assert_eq!(kept.remaining_memory(1), 50);
}
