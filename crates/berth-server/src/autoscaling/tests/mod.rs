//! Application Auto Scaling on an in-memory server: targets, policies and the alarms target
//! tracking makes, and the controller on synthetic metrics at chosen times.

use super::controller::run_once;
use super::targets::{target_key, Target};
use crate::app::App;
use crate::cloudwatch::alarms::{alarm_key, Alarm};
use serde_json::{json, Value};
use std::sync::Arc;

crate::json_service_calls!(super::dispatch);

const RESOURCE: &str = "service/demo/web";
/// A minute boundary (2026-12-01T00:00:00Z), epoch ms.
const T0: i64 = 1_796_083_200_000;
const MINUTE: i64 = 60_000;

async fn with_service(desired: i64) -> Arc<App> {
    let app = crate::test_support::app().await;
    add_service(&app, desired).await;
    app
}

/// Cluster `demo` and its service `web` of `desired` tasks.
async fn add_service(app: &Arc<App>, desired: i64) {
    let ecs = |op: &'static str, body: Value| {
        let app = app.clone();
        async move { crate::test_support::ok(&app, op, body).await }
    };
    ecs("CreateCluster", json!({"clusterName": "demo"})).await;
    ecs(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 64, "essential": true}]}),
    )
    .await;
    ecs(
        "CreateService",
        json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web", "desiredCount": desired}),
    )
    .await;
}

fn target_body(min: i64, max: i64) -> Value {
    json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
           "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": min, "MaxCapacity": max})
}

fn cpu_policy(target: f64, extra: Value) -> Value {
    let mut config = json!({"TargetValue": target,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
    for (k, v) in extra.as_object().expect("object") {
        config[k] = v.clone();
    }
    json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": RESOURCE,
           "ScalableDimension": "ecs:service:DesiredCount", "PolicyType": "TargetTrackingScaling",
           "TargetTrackingScalingPolicyConfiguration": config})
}

fn desired(app: &App) -> i64 {
    let record = app
        .get::<berth_core::service::ServiceRecord>(&berth_store::keys::service("demo", "web"))
        .expect("read")
        .expect("service");
    i64::from(record.value.service.desired_count.expect("count"))
}

fn cpu(app: &App, at: i64, value: f64) {
    crate::test_support::put_service_cpu(app, "demo", "web", at, value);
}

fn stored_target(app: &App) -> Target {
    app.get::<Target>(&target_key(RESOURCE))
        .expect("read")
        .expect("target")
        .value
}

#[tokio::test]
async fn targets_register_describe_and_refuse_what_berth_cannot_scale() {
    let app = with_service(1).await;
    let registered = ok(&app, "RegisterScalableTarget", target_body(1, 4)).await;
    let arn = registered["ScalableTargetARN"].as_str().expect("arn");
    assert!(
        arn.starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    );
    // An update may give only what changes.
    ok(
        &app,
        "RegisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
               "ScalableDimension": "ecs:service:DesiredCount", "MaxCapacity": 6,
               "SuspendedState": {"DynamicScalingInSuspended": true}}),
    )
    .await;
    let described = ok(
        &app,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs"}),
    )
    .await;
    let target = &described["ScalableTargets"][0];
    assert_eq!(
        (target["MinCapacity"].clone(), target["MaxCapacity"].clone()),
        (json!(1), json!(6))
    );
    assert_eq!(target["SuspendedState"]["DynamicScalingInSuspended"], true);
    assert_eq!(target["ScalableTargetARN"], arn);

    for (body, why) in [
        (
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/demo/nope", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
            "no such service",
        ),
        (
            json!({"ServiceNamespace": "dynamodb", "ResourceId": "table/t", "ScalableDimension": "dynamodb:table:ReadCapacityUnits", "MinCapacity": 1, "MaxCapacity": 2}),
            "not ECS",
        ),
        (
            json!({"ServiceNamespace": "ecs", "ResourceId": "web", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
            "bad resource id",
        ),
        (target_body(5, 2), "min above max"),
    ] {
        let e = err(&app, "RegisterScalableTarget", body).await;
        assert_eq!(e.name, "ValidationException", "{why}: {}", e.message);
    }
    assert_eq!(stored_target(&app).max, 6, "nothing half-written");
    let e = err(
        &app,
        "DeregisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/demo/other", "ScalableDimension": "ecs:service:DesiredCount"}),
    )
    .await;
    assert_eq!(e.name, "ObjectNotFoundException");
}

#[tokio::test]
async fn target_tracking_makes_its_alarms_and_deleting_it_removes_them() {
    let app = with_service(1).await;
    let e = err(&app, "PutScalingPolicy", cpu_policy(50.0, json!({}))).await;
    assert_eq!(e.name, "ObjectNotFoundException", "no target yet");
    ok(&app, "RegisterScalableTarget", target_body(1, 4)).await;
    let put = ok(&app, "PutScalingPolicy", cpu_policy(50.0, json!({}))).await;
    let policy_arn = put["PolicyARN"].as_str().expect("arn").to_string();
    assert!(
        policy_arn.contains(":scalingPolicy:")
            && policy_arn.ends_with(":resource/ecs/service/demo/web:policyName/cpu")
    );
    let alarms: Vec<String> = put["Alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| a["AlarmName"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(alarms.len(), 2);
    assert!(alarms[0].starts_with("TargetTracking-service/demo/web-AlarmHigh-"));
    assert!(alarms[1].starts_with("TargetTracking-service/demo/web-AlarmLow-"));
    let high = app
        .get::<Alarm>(&alarm_key(&alarms[0]))
        .expect("read")
        .expect("alarm")
        .value;
    assert_eq!(
        (
            high.metric_name.as_str(),
            high.threshold,
            high.evaluation_periods
        ),
        ("CPUUtilization", 50.0, 3)
    );
    assert_eq!(high.alarm_actions, std::slice::from_ref(&policy_arn));
    let low = app
        .get::<Alarm>(&alarm_key(&alarms[1]))
        .expect("read")
        .expect("alarm")
        .value;
    assert_eq!(
        (
            low.threshold,
            low.evaluation_periods,
            low.comparison_operator.as_str()
        ),
        (45.0, 15, "LessThanThreshold")
    );

    // Replacing the policy with scale-in disabled leaves only a new high alarm.
    let replaced = ok(
        &app,
        "PutScalingPolicy",
        cpu_policy(60.0, json!({"DisableScaleIn": true})),
    )
    .await;
    assert_eq!(
        replaced["PolicyARN"],
        policy_arn.as_str(),
        "the same policy"
    );
    assert_eq!(replaced["Alarms"].as_array().expect("alarms").len(), 1);
    for old in &alarms {
        assert!(
            app.get::<Alarm>(&alarm_key(old)).expect("read").is_none(),
            "{old} removed"
        );
    }
    let described = ok(
        &app,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE}),
    )
    .await;
    let policy = &described["ScalingPolicies"][0];
    assert_eq!(
        policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
        60.0
    );
    assert_eq!(policy["PolicyType"], "TargetTrackingScaling");

    // ALBRequestCountPerTarget needs the label of its load balancer and target group.
    let alb = |label: Option<&str>| {
        let mut spec = json!({"PredefinedMetricType": "ALBRequestCountPerTarget"});
        if let Some(label) = label {
            spec["ResourceLabel"] = json!(label);
        }
        json!({"PolicyName": "requests", "ServiceNamespace": "ecs", "ResourceId": RESOURCE,
               "ScalableDimension": "ecs:service:DesiredCount", "PolicyType": "TargetTrackingScaling",
               "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100.0,
                   "PredefinedMetricSpecification": spec}})
    };
    for label in [
        None,
        Some("app/web/1234"),
        Some("net/web/12/targetgroup/tg/34"),
    ] {
        let e = err(&app, "PutScalingPolicy", alb(label)).await;
        assert_eq!(e.name, "ValidationException", "{label:?}");
    }
    let put = ok(
        &app,
        "PutScalingPolicy",
        alb(Some(
            "app/web/50dc6c495c0c9188/targetgroup/api/943f017f100becff",
        )),
    )
    .await;
    let name = put["Alarms"][0]["AlarmName"].as_str().expect("name");
    let high = app
        .get::<Alarm>(&alarm_key(name))
        .expect("read")
        .expect("alarm")
        .value;
    assert_eq!(
        (
            high.namespace.as_str(),
            high.metric_name.as_str(),
            high.statistic.as_str(),
            high.period
        ),
        ("AWS/ApplicationELB", "RequestCountPerTarget", "Sum", 60)
    );
    assert_eq!(
        high.dimensions,
        [
            (
                "LoadBalancer".to_string(),
                "app/web/50dc6c495c0c9188".to_string()
            ),
            (
                "TargetGroup".to_string(),
                "targetgroup/api/943f017f100becff".to_string()
            )
        ]
    );
    ok(&app, "DeleteScalingPolicy", json!({"PolicyName": "requests", "ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount"})).await;
    let labelled = json!({"PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization", "ResourceLabel": "app/x"}});
    let e = err(&app, "PutScalingPolicy", cpu_policy(50.0, labelled)).await;
    assert_eq!(e.name, "ValidationException");

    ok(&app, "DeleteScalingPolicy", json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount"})).await;
    let left = ok(
        &app,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs"}),
    )
    .await;
    assert_eq!(left["ScalingPolicies"], json!([]));
    assert!(app
        .list::<Alarm>(crate::cloudwatch::alarms::ALARMS)
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn the_controller_scales_out_in_proportion_then_in_after_its_cooldown() {
    let app = with_service(1).await;
    ok(&app, "RegisterScalableTarget", target_body(1, 10)).await;
    ok(
        &app,
        "PutScalingPolicy",
        cpu_policy(
            50.0,
            json!({"ScaleOutCooldown": 60, "ScaleInCooldown": 120}),
        ),
    )
    .await;
    // 100 % for three minutes on one task: 2 tasks bring it to 50 %.
    for minute in 0..3 {
        cpu(&app, T0 + minute * MINUTE + 1_000, 100.0);
    }
    let now = T0 + 3 * MINUTE + 1_000;
    crate::cloudwatch::evaluate::evaluate_all(&app, now).await;
    assert_eq!(run_once(&app, now).await, 1);
    assert_eq!(desired(&app), 2);
    let described = crate::test_support::ok(
        &app,
        "DescribeServices",
        json!({"cluster": "demo", "services": ["web"]}),
    )
    .await;
    let event = described["services"][0]["events"][0]["message"]
        .as_str()
        .expect("an event")
        .to_string();
    assert!(
        event.starts_with("(service web) desired count changed from 1 to 2 by Application Auto Scaling: monitor alarm TargetTracking-service/demo/web-AlarmHigh-"),
        "{event}"
    );
    let target = stored_target(&app);
    assert_eq!(target.activities.len(), 1, "one activity, ended in place");
    let activity = target.activities.last().expect("an activity");
    assert_eq!(activity.status, "Successful");
    assert!(
        activity.end.is_some()
            && activity
                .message
                .starts_with("Successfully set desired count to 2.")
    );
    assert!(
        activity.cause.contains("AlarmHigh") && activity.cause.contains("triggered policy cpu"),
        "{}",
        activity.cause
    );
    // Still in ALARM, on the datapoints from before it scaled: nothing more.
    assert_eq!(run_once(&app, now + 5_000).await, 0);
    assert_eq!(desired(&app), 2);

    // Load falls to 10 % for 15 minutes: after the cooldowns, one step in, to ceil(2×10/50)=1.
    for minute in 3..19 {
        cpu(&app, T0 + minute * MINUTE + 1_000, 10.0);
    }
    let later = T0 + 19 * MINUTE + 1_000;
    crate::cloudwatch::evaluate::evaluate_all(&app, later).await;
    assert_eq!(run_once(&app, later).await, 1);
    assert_eq!(desired(&app), 1);
    let activities = ok(
        &app,
        "DescribeScalingActivities",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE}),
    )
    .await;
    let descriptions: Vec<&str> = activities["ScalingActivities"]
        .as_array()
        .expect("activities")
        .iter()
        .map(|a| a["Description"].as_str().expect("description"))
        .collect();
    assert_eq!(
        descriptions,
        [
            "Setting desired count to 1 (from 2).",
            "Setting desired count to 2 (from 1)."
        ]
    );
}

#[tokio::test]
async fn bounds_are_kept_whatever_the_policies_say() {
    let app = with_service(1).await;
    ok(&app, "RegisterScalableTarget", target_body(3, 5)).await;
    assert_eq!(run_once(&app, T0).await, 1);
    assert_eq!(desired(&app), 3);
    assert!(stored_target(&app).activities[0]
        .cause
        .starts_with("minimum capacity was set to 3"));
}

#[tokio::test]
async fn a_scheduled_action_sets_the_bounds_when_due_and_then_the_count_follows() {
    let app = with_service(1).await;
    ok(&app, "RegisterScalableTarget", target_body(1, 4)).await;
    let now = app.now() as i64;
    let at = now - now.rem_euclid(60) + 120;
    let civil = berth_core::civil::iso8601(at, None);
    let schedule = format!("at({})", civil.trim_end_matches('Z'));
    let put = |body: Value| {
        let app = app.clone();
        async move { call(&app, "PutScheduledAction", body).await }
    };
    let action = |schedule: &str, extra: Value| {
        let mut body = json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
            "ScalableDimension": "ecs:service:DesiredCount", "ScheduledActionName": "morning",
            "Schedule": schedule, "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 6}});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    for (bad, why) in [
        ("rate(0 minutes)", "bad rate"),
        ("cron(0 8 * * *)", "five fields"),
    ] {
        let e = put(action(bad, json!({}))).await.expect_err(why);
        assert_eq!(e.name, "ValidationException", "{why}");
    }
    let e = put(action(&schedule, json!({"Timezone": "Mars/Olympus"})))
        .await
        .expect_err("zone");
    assert_eq!(e.name, "ValidationException");
    put(action(&schedule, json!({}))).await.expect("put");
    let described = ok(
        &app,
        "DescribeScheduledActions",
        json!({"ServiceNamespace": "ecs"}),
    )
    .await;
    let shown = &described["ScheduledActions"][0];
    assert_eq!(shown["Schedule"], schedule.as_str());
    assert_eq!(
        shown["ScalableTargetAction"],
        json!({"MinCapacity": 3, "MaxCapacity": 6})
    );

    // Not yet: nothing. Five seconds after its time: the bounds move, then the count.
    assert_eq!(run_once(&app, (at - 10) * 1000).await, 0);
    assert_eq!(run_once(&app, (at + 5) * 1000).await, 1);
    let target = stored_target(&app);
    assert_eq!((target.min, target.max), (3, 6));
    let activity = target.activities.last().expect("activity");
    assert_eq!(
        activity.description,
        "Setting min capacity to 3 and max capacity to 6"
    );
    assert!(activity
        .cause
        .starts_with("scheduled action name morning was triggered"));
    assert_eq!(run_once(&app, (at + 10) * 1000).await, 1);
    assert_eq!(desired(&app), 3);
    // It fired once.
    assert_eq!(run_once(&app, (at + 15) * 1000).await, 0);

    ok(
        &app,
        "DeleteScheduledAction",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
        "ScalableDimension": "ecs:service:DesiredCount", "ScheduledActionName": "morning"}),
    )
    .await;
    let e = err(
        &app,
        "DeleteScheduledAction",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
        "ScalableDimension": "ecs:service:DesiredCount", "ScheduledActionName": "morning"}),
    )
    .await;
    assert_eq!(e.name, "ObjectNotFoundException");
}

#[tokio::test]
async fn targets_carry_tags() {
    let app = with_service(1).await;
    let mut body = target_body(1, 2);
    body["Tags"] = json!({"team": "web"});
    let arn = ok(&app, "RegisterScalableTarget", body).await["ScalableTargetARN"]
        .as_str()
        .expect("arn")
        .to_string();
    ok(
        &app,
        "TagResource",
        json!({"ResourceARN": arn, "Tags": {"env": "prod"}}),
    )
    .await;
    ok(
        &app,
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["team"]}),
    )
    .await;
    let listed = ok(&app, "ListTagsForResource", json!({"ResourceARN": arn})).await;
    assert_eq!(listed["Tags"], json!({"env": "prod"}));
    let e = err(&app, "ListTagsForResource", json!({"ResourceARN": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/nope"})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_cooldown_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || crate::app::ServerConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..crate::app::ServerConfig::default()
    };
    let app = App::open(config()).await.expect("app");
    add_service(&app, 4).await;
    ok(&app, "RegisterScalableTarget", target_body(1, 10)).await;
    ok(
        &app,
        "PutScalingPolicy",
        cpu_policy(50.0, json!({"ScaleInCooldown": 600, "ScaleOutCooldown": 0})),
    )
    .await;
    // 30 % for 16 minutes on 4 tasks: in to ceil(4 × 30 ÷ 50) = 3.
    for minute in 0..16 {
        cpu(&app, T0 + minute * MINUTE + 1_000, 30.0);
    }
    let first = T0 + 16 * MINUTE + 1_000;
    crate::cloudwatch::evaluate::evaluate_all(&app, first).await;
    assert_eq!(run_once(&app, first).await, 1);
    assert_eq!(desired(&app), 3);
    app.close();
    drop(app);

    // A new server on the same data: still 30 %, now on 3 tasks, which asks for 2.
    let app = App::open(config()).await.expect("reopened");
    for minute in 16..30 {
        cpu(&app, T0 + minute * MINUTE + 1_000, 30.0);
    }
    let within = T0 + 20 * MINUTE + 1_000;
    crate::cloudwatch::evaluate::evaluate_all(&app, within).await;
    assert_eq!(
        run_once(&app, within).await,
        0,
        "the scale-in cooldown outlives the restart"
    );
    assert_eq!(desired(&app), 3);
    let after = T0 + 27 * MINUTE + 1_000;
    crate::cloudwatch::evaluate::evaluate_all(&app, after).await;
    assert_eq!(run_once(&app, after).await, 1);
    assert_eq!(desired(&app), 2);
}

mod proposals;

/// On a real etcd, whose transactions take 128 writes: a target with more scheduled actions
/// than that is deregistered with all of them.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_more_actions_than_one_etcd_transaction_takes_is_deregistered_whole() {
    let etcd = berth_store::etcd::local::LocalEtcd::start(1).expect("a local etcd");
    let app = crate::test_support::app_on_etcd(&etcd).await;
    add_service(&app, 1).await;
    ok(&app, "RegisterScalableTarget", target_body(1, 4)).await;
    for i in 0..150 {
        ok(
            &app,
            "PutScheduledAction",
            json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
                   "ScalableDimension": "ecs:service:DesiredCount",
                   "ScheduledActionName": format!("a{i}"), "Schedule": "rate(1 hour)",
                   "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 4}}),
        )
        .await;
    }
    let scope = json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE,
                       "ScalableDimension": "ecs:service:DesiredCount"});
    ok(&app, "DeregisterScalableTarget", scope).await;
    let (left, _) = app
        .store
        .list(super::scheduled::SCHEDULED)
        .await
        .expect("list");
    assert!(left.is_empty(), "{} scheduled actions left", left.len());
    assert!(app
        .store
        .get(&target_key(RESOURCE))
        .await
        .expect("get")
        .is_none());
}
