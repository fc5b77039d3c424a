//! What one policy asks of a target (`propose`) and what the controller takes of several
//! (`decide`), as pure functions of the target, the alarms firing and the time.

use super::super::controller::{decide, propose, tracked_count, Proposal, Reading};
use super::super::policies::Policy;
use super::super::targets::Target;
use super::RESOURCE;
use crate::cloudwatch::alarms::Alarm;
use serde_json::{json, Value};

fn policy(kind: &str, config: Value) -> Policy {
    Policy {
        name: "p".into(),
        arn: "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:resource/ecs/service/demo/web:policyName/p".into(),
        resource_id: RESOURCE.into(),
        kind: kind.into(),
        config,
        created_alarms: Vec::new(),
        created: 0.0,
    }
}

fn target(min: i64, max: i64) -> Target {
    Target {
        resource_id: RESOURCE.into(),
        cluster: "demo".into(),
        service: "web".into(),
        arn: "arn".into(),
        min,
        max,
        role_arn: "role".into(),
        created: 0.0,
        suspended: Default::default(),
        tags: Default::default(),
        last_scale_out: None,
        last_scale_in: None,
        activities: Vec::new(),
    }
}

fn alarm(operator: &str, threshold: f64) -> Alarm {
    Alarm {
        name: "a".into(),
        arn: "arn".into(),
        description: None,
        actions_enabled: true,
        ok_actions: vec![],
        alarm_actions: vec![],
        insufficient_data_actions: vec![],
        namespace: "AWS/ECS".into(),
        metric_name: "CPUUtilization".into(),
        statistic: "Average".into(),
        dimensions: vec![],
        period: 60,
        unit: None,
        evaluation_periods: 1,
        datapoints_to_alarm: None,
        threshold,
        comparison_operator: operator.into(),
        treat_missing_data: None,
        configuration_updated: 0.0,
        state: "ALARM".into(),
        state_reason: String::new(),
        state_reason_data: None,
        state_updated: 0.0,
        state_transitioned: 0.0,
        held_until: None,
        tags: vec![],
        history: vec![],
    }
}

fn reading(value: f64) -> Reading {
    Reading {
        value,
        since: 900.0,
        window: vec![value],
    }
}

#[test]
fn target_tracking_takes_sampling_noise_above_a_whole_count_as_that_count() {
    // One task at its CPU limit samples as 100.2 %: two tasks bring it to 50 %, not three.
    assert_eq!(tracked_count(1, 100.2, 50.0), 2);
    // Three tasks sharing two tasks' load: 66.8 % asks for four.
    assert_eq!(tracked_count(3, 66.8, 50.0), 4);
    // Real excess is load: 3 % above two tasks' worth needs a third.
    assert_eq!(tracked_count(1, 103.0, 50.0), 3);
    assert_eq!(tracked_count(4, 10.0, 50.0), 1);
    assert_eq!(tracked_count(4, 0.0, 50.0), 0);
    // No task yet counts as one.
    assert_eq!(tracked_count(0, 100.0, 50.0), 2);
}

#[test]
fn step_scaling_applies_the_step_that_holds_the_breach() {
    let steps = json!({"AdjustmentType": "ChangeInCapacity", "Cooldown": 60, "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 3}]});
    let p = policy("StepScaling", steps);
    let high = alarm("GreaterThanThreshold", 50.0);
    let t = target(1, 10);
    // A breach of exactly 20 belongs to the upper step (lower bound inclusive).
    let at =
        |value: f64| propose(&t, &p, &[(&high, reading(value))], 2, 1000.0).map(|p| p.capacity);
    assert_eq!(at(55.0), Some(3));
    assert_eq!(at(70.0), Some(5));
    assert_eq!(at(95.0), Some(5));
    // Within the cooldown of the last scale-out: nothing.
    let mut cooling = target(1, 10);
    cooling.last_scale_out = Some((990.0, 3));
    assert_eq!(
        propose(&cooling, &p, &[(&high, reading(70.0))], 2, 1000.0),
        None
    );
    // Percent change with a minimum magnitude; clamped to max.
    let percent = policy(
        "StepScaling",
        json!({"AdjustmentType": "PercentChangeInCapacity", "MinAdjustmentMagnitude": 2,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 10}]}),
    );
    assert_eq!(
        propose(&t, &percent, &[(&high, reading(60.0))], 4, 1000.0).map(|p| p.capacity),
        Some(6)
    );
    assert_eq!(
        propose(
            &target(1, 5),
            &percent,
            &[(&high, reading(60.0))],
            4,
            1000.0
        )
        .map(|p| p.capacity),
        Some(5)
    );
}

#[test]
fn target_tracking_respects_disable_scale_in_suspension_and_max() {
    let tracking = |extra: Value| {
        let mut config = json!({"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
        for (k, v) in extra.as_object().expect("object") {
            config[k] = v.clone();
        }
        policy("TargetTrackingScaling", config)
    };
    let high = alarm("GreaterThanThreshold", 50.0);
    let low = alarm("LessThanThreshold", 45.0);
    let t = target(1, 3);
    // 4 tasks' worth of load, capped at max 3.
    assert_eq!(
        propose(&t, &tracking(json!({})), &[(&high, reading(200.0))], 1, 0.0).map(|p| p.capacity),
        Some(3)
    );
    assert_eq!(
        propose(
            &t,
            &tracking(json!({"DisableScaleIn": true})),
            &[(&low, reading(5.0))],
            3,
            0.0
        ),
        None
    );
    let mut suspended = target(1, 3);
    suspended.suspended.dynamic_scaling_out_suspended = true;
    assert_eq!(
        propose(
            &suspended,
            &tracking(json!({})),
            &[(&high, reading(200.0))],
            1,
            0.0
        ),
        None
    );
    assert_eq!(
        propose(&t, &tracking(json!({})), &[(&low, reading(10.0))], 3, 0.0).map(|p| p.capacity),
        Some(1)
    );
    // A service held at its target whose high alarm fires on noise (50.2 % > 50 %) stays:
    // one more task would put it under the low alarm, and it would swing back.
    let wide = target(1, 10);
    assert_eq!(
        propose(
            &wide,
            &tracking(json!({})),
            &[(&high, reading(50.2))],
            4,
            0.0
        ),
        None
    );
    assert_eq!(
        propose(
            &wide,
            &tracking(json!({})),
            &[(&high, reading(60.0))],
            4,
            0.0
        )
        .map(|p| p.capacity),
        Some(5)
    );
}

#[test]
fn a_scale_in_needs_every_tracking_policy_to_agree() {
    let out = |c| {
        (
            Proposal {
                capacity: c,
                cause: "out".into(),
                scale_in: false,
            },
            true,
        )
    };
    let inn = |c| {
        (
            Proposal {
                capacity: c,
                cause: "in".into(),
                scale_in: true,
            },
            true,
        )
    };
    assert_eq!(
        decide(&[out(4), out(6), inn(1)], 2).map(|p| p.capacity),
        Some(6)
    );
    assert_eq!(
        decide(&[inn(2)], 2),
        None,
        "the other policy does not agree"
    );
    assert_eq!(
        decide(&[inn(2), inn(3)], 2).map(|p| p.capacity),
        Some(3),
        "the mildest"
    );
}

#[test]
fn step_scaling_aggregates_the_alarms_datapoints_as_its_metric_aggregation_type_says() {
    let steps = |aggregation: Option<&str>| {
        let mut config = json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 3}]});
        if let Some(aggregation) = aggregation {
            config["MetricAggregationType"] = json!(aggregation);
        }
        policy("StepScaling", config)
    };
    let high = alarm("GreaterThanThreshold", 50.0);
    let t = target(1, 10);
    // The latest datapoint is 90; the three evaluated ones average 70, the least is 60.
    let window = Reading {
        value: 90.0,
        since: 900.0,
        window: vec![90.0, 60.0, 60.0],
    };
    let capacity = |aggregation| {
        propose(
            &t,
            &steps(aggregation),
            &[(&high, window.clone())],
            2,
            1000.0,
        )
        .map(|p| p.capacity)
    };
    assert_eq!(
        capacity(None),
        Some(5),
        "Average by default: a breach of 20"
    );
    assert_eq!(capacity(Some("Minimum")), Some(3), "a breach of 10");
    assert_eq!(capacity(Some("Maximum")), Some(5), "a breach of 40");
}
