//! Placement honours a task definition's required attributes: instances lacking one are
//! skipped, and when none carries them the failures say `ATTRIBUTE` with the attribute named.

use super::super::*;
use crate::model::{Attribute, ContainerInstanceStatus};
use crate::resources::TaskResources;

const SPLUNK: &str = "com.amazonaws.ecs.capability.logging-driver.splunk";

fn instance(id: &str, attributes: &[(&str, Option<&str>)]) -> InstanceInfo {
    InstanceInfo {
        id: id.into(),
        arn: format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}"),
        status: Some(ContainerInstanceStatus::Active),
        agent_connected: true,
        attributes: attributes
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect(),
        cpu: 4096,
        memory: 4096,
        ..InstanceInfo::default()
    }
}

fn requiring(required: &[(&str, Option<&str>)], count: usize) -> TaskRequest {
    TaskRequest {
        resources: TaskResources {
            cpu: 128,
            memory: 128,
            ..TaskResources::default()
        },
        group: "family:web".into(),
        strategies: default_run_task_strategies(),
        constraints: Vec::new(),
        required_attributes: required
            .iter()
            .map(|(n, v)| RequiredAttribute {
                name: n.to_string(),
                value: v.map(str::to_string),
                target: None,
            })
            .collect(),
        count,
    }
}

#[test]
fn placement_skips_instances_lacking_a_required_attribute() {
    let mut s = Snapshot::new(vec![
        instance("1", &[("ecs.os-type", Some("linux"))]),
        instance("2", &[(SPLUNK, None), ("ecs.os-type", Some("linux"))]),
        instance("3", &[]),
    ]);
    let out = s.place(&requiring(&[(SPLUNK, None)], 5), 7);
    assert_eq!(out.placements, vec![1; 5]);
    assert_eq!(out.unplaced, 0);
    assert!(out.failures.is_empty());
}

#[test]
fn no_instance_with_the_attribute_fails_with_attribute_naming_it() {
    let mut s = Snapshot::new(vec![
        instance("1", &[("ecs.os-type", Some("linux"))]),
        instance("2", &[]),
    ]);
    let request = requiring(&[("ecs.os-type", None), (SPLUNK, None)], 2);
    let out = s.place(&request, 0);
    assert!(out.placements.is_empty());
    assert_eq!(out.unplaced, 2);
    // Instance 1 has the OS type but not splunk; instance 2 has neither: each is refused for
    // the first requirement it lacks.
    assert_eq!(
        out.failures,
        vec![(0, Reason::Attribute(1)), (1, Reason::Attribute(0))]
    );
    let described: Vec<(&str, Option<String>)> = out
        .failures
        .iter()
        .map(|(_, r)| (r.code(), request.failure_detail(*r)))
        .collect();
    assert_eq!(
        described,
        vec![
            ("ATTRIBUTE", Some(SPLUNK.to_string())),
            ("ATTRIBUTE", Some("ecs.os-type".to_string())),
        ]
    );
    assert_eq!(s.remaining_memory(0), 4096, "nothing was reserved");
}

#[test]
fn a_requirement_with_a_value_needs_that_value() {
    let mut s = Snapshot::new(vec![
        instance("1", &[("stack", Some("dev"))]),
        instance("2", &[("stack", None)]),
        instance("3", &[("stack", Some("prod"))]),
    ]);
    let out = s.place(&requiring(&[("stack", Some("prod"))], 3), 1);
    assert_eq!(out.placements, vec![2, 2, 2]);
    let request = requiring(&[("stack", Some("staging"))], 1);
    let out = s.place(&request, 1);
    assert_eq!(out.unplaced, 1);
    assert_eq!(out.failures.len(), 3);
    assert!(out
        .failures
        .iter()
        .all(|(_, r)| request.failure_detail(*r).as_deref() == Some("stack=staging")));
}

#[test]
fn a_targeted_requirement_is_met_only_by_its_target() {
    let both = [("gpu", None)];
    let mut s = Snapshot::new(vec![instance("1", &both), instance("2", &both)]);
    let required = required_attributes(&[Attribute {
        name: "gpu".into(),
        value: None,
        target_type: Some("container-instance".into()),
        target_id: Some("arn:aws:ecs:us-east-1:1:container-instance/c/2".into()),
    }]);
    let mut request = requiring(&[], 2);
    request.required_attributes = required;
    assert_eq!(s.place(&request, 3).placements, vec![1, 1]);
    request.required_attributes[0].target = Some("1".into());
    assert_eq!(s.place(&request, 3).placements, vec![0, 0]);
}

#[test]
fn attribute_failures_come_after_agent_and_before_resources() {
    let mut disconnected = instance("1", &[]);
    disconnected.agent_connected = false;
    let mut small = instance("2", &[]);
    small.memory = 10;
    let mut carries_but_small = instance("3", &[(SPLUNK, None)]);
    carries_but_small.memory = 10;
    let mut s = Snapshot::new(vec![disconnected, small, carries_but_small]);
    let request = requiring(&[(SPLUNK, None)], 1);
    let codes: Vec<&str> = s
        .place(&request, 0)
        .failures
        .iter()
        .map(|(_, r)| r.code())
        .collect();
    assert_eq!(codes, ["AGENT", "ATTRIBUTE", "RESOURCE:MEMORY"]);
}

#[test]
fn start_task_on_an_instance_lacking_the_attribute_is_refused() {
    let mut s = Snapshot::new(vec![instance("1", &[]), instance("2", &[(SPLUNK, None)])]);
    let request = requiring(&[(SPLUNK, None)], 1);
    assert_eq!(s.place_on(0, &request), Err(Reason::Attribute(0)));
    assert_eq!(s.remaining_memory(0), 4096);
    assert_eq!(s.place_on(1, &request), Ok(()));
    assert_eq!(s.remaining_memory(1), 4096 - 128);
}

#[test]
fn required_attributes_combine_with_member_of_constraints() {
    let mut s = Snapshot::new(vec![
        instance("1", &[(SPLUNK, None), ("tier", Some("db"))]),
        instance("2", &[("tier", Some("web"))]),
        instance("3", &[(SPLUNK, None), ("tier", Some("web"))]),
    ]);
    let mut request = requiring(&[(SPLUNK, None)], 2);
    request.constraints = vec![Constraint::MemberOf(
        query::parse("attribute:tier == web").expect("parses"),
    )];
    assert_eq!(s.place(&request, 5).placements, vec![2, 2]);
    // A cached answer serves the next batch: the same again.
    assert_eq!(s.place(&request, 6).placements, vec![2, 2]);
    request.constraints = vec![Constraint::MemberOf(
        query::parse("attribute:tier == db and runningTasksCount == 0").expect("parses"),
    )];
    let out = s.place(&request, 0);
    assert_eq!(out.placements, vec![0]);
    let codes: Vec<(usize, &str)> = out.failures.iter().map(|(i, r)| (*i, r.code())).collect();
    assert_eq!(
        codes,
        vec![
            (0, "MemberOf placement constraint unsatisfied."),
            (1, "ATTRIBUTE"),
            (2, "MemberOf placement constraint unsatisfied."),
        ]
    );
}
