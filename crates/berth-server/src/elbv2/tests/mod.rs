//! ELBv2 through the query protocol on an in-memory server: load balancers, target groups,
//! listeners, rules, targets and tags, as `aws elbv2` would drive them, answers read from
//! their XML.

use super::model::{load_balancer_key, sweep_drained, Config, TargetGroup, TARGET_GROUPS};
use crate::app::App;
use crate::auth::Principal;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{response, QueryRequest};
use std::sync::Arc;

/// Runs `action` with `params` as `caller`; the whole XML answer or the error.
async fn call_as(
    app: &Arc<App>,
    caller: Principal,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, ApiError> {
    let body = crate::test_support::form_body(action, "2015-12-01", params);
    let request = QueryRequest::parse(body.as_bytes())?;
    let ctx = Ctx {
        app: app.clone(),
        caller,
    };
    let result = super::dispatch(ctx, request).await?;
    Ok(response(action, super::NAMESPACE, result, "test"))
}

async fn call(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> Result<String, ApiError> {
    let root = crate::auth::root_principal(app).expect("root principal");
    call_as(app, root, action, params).await
}

async fn ok(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> String {
    match call(app, action, params).await {
        Ok(xml) => xml,
        Err(e) => panic!("{action} failed: {e}"),
    }
}

async fn err(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> ApiError {
    match call(app, action, params).await {
        Ok(xml) => panic!("{action} should fail, answered {xml}"),
        Err(e) => e,
    }
}

use crate::test_support::{xml_text as text, xml_texts as texts};

async fn load_balancer(app: &Arc<App>, name: &str) -> String {
    let xml = ok(app, "CreateLoadBalancer", &[("Name", name)]).await;
    text(&xml, "LoadBalancerArn")
}

async fn target_group(app: &Arc<App>, name: &str, protocol: &str, target_type: &str) -> String {
    let xml = ok(
        app,
        "CreateTargetGroup",
        &[
            ("Name", name),
            ("Protocol", protocol),
            ("Port", "8080"),
            ("TargetType", target_type),
        ],
    )
    .await;
    text(&xml, "TargetGroupArn")
}

async fn forward_listener(app: &Arc<App>, lb: &str, port: &str, group: &str) -> String {
    let xml = ok(
        app,
        "CreateListener",
        &[
            ("LoadBalancerArn", lb),
            ("Protocol", "HTTP"),
            ("Port", port),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", group),
        ],
    )
    .await;
    text(&xml, "ListenerArn")
}

fn stored_group(app: &App, name: &str) -> TargetGroup {
    app.get::<TargetGroup>(&format!("{TARGET_GROUPS}{name}"))
        .expect("read")
        .expect("stored")
        .value
}

#[tokio::test]
async fn the_whole_lifecycle_from_load_balancer_to_draining_targets() {
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "web").await;
    let group = target_group(&app, "web", "HTTP", "ip").await;
    ok(
        &app,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
            ("Targets.member.2.Id", "10.0.0.2"),
            ("Targets.member.2.Port", "9090"),
        ],
    )
    .await;
    // Registering again is a no-op.
    ok(
        &app,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
        ],
    )
    .await;
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "Id"), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(texts(&health, "Port"), ["8080", "9090"]);
    assert_eq!(texts(&health, "HealthCheckPort"), ["8080", "9090"]);
    assert_eq!(texts(&health, "State"), ["unused", "unused"]);
    assert_eq!(text(&health, "Reason"), "Target.NotInUse");

    let listener = forward_listener(&app, &lb, "80", &group).await;
    assert!(listener.contains(":listener/app/web/"));
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "State"), ["initial", "initial"]);
    assert_eq!(text(&health, "Reason"), "Elb.RegistrationInProgress");
    app.elb_health.set(
        (group.clone(), "10.0.0.1".into(), 8080),
        super::health::TargetHealth {
            state: "healthy",
            reason: None,
            description: None,
        },
    );
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "State"), ["healthy", "initial"]);
    let groups = ok(&app, "DescribeTargetGroups", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(texts(&groups, "TargetGroupArn"), [group.as_str()]);
    assert!(groups.contains(&format!("<LoadBalancerArns><member>{lb}</member>")));

    let rule = ok(
        &app,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            (
                "Conditions.member.1.PathPatternConfig.Values.member.1",
                "/api/*",
            ),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "404"),
            (
                "Actions.member.1.FixedResponseConfig.ContentType",
                "text/plain",
            ),
            (
                "Actions.member.1.FixedResponseConfig.MessageBody",
                "nothing here",
            ),
        ],
    )
    .await;
    let rule_arn = text(&rule, "RuleArn");
    assert!(rule_arn.contains(":listener-rule/app/web/"));
    assert_eq!(text(&rule, "Priority"), "10");
    let rules = ok(&app, "DescribeRules", &[("ListenerArn", &listener)]).await;
    assert_eq!(texts(&rules, "Priority"), ["10", "default"]);
    assert_eq!(texts(&rules, "IsDefault"), ["false", "true"]);
    assert_eq!(texts(&rules, "Field"), ["path-pattern"]);
    assert!(rules.contains("<Values><member>/api/*</member></Values>"));

    ok(
        &app,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
        ],
    )
    .await;
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "State"), ["draining", "initial"]);
    assert_eq!(text(&health, "Reason"), "Target.DeregistrationInProgress");
    // Registering a draining target again makes it registered again.
    ok(
        &app,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
        ],
    )
    .await;
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "State"), ["healthy", "initial"]);

    // Deregistered with a delay of 0, a target is gone at once and the sweep deletes it.
    ok(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "0"),
        ],
    )
    .await;
    ok(
        &app,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
        ],
    )
    .await;
    let health = ok(&app, "DescribeTargetHealth", &[("TargetGroupArn", &group)]).await;
    assert_eq!(texts(&health, "Id"), ["10.0.0.2"]);
    assert_eq!(stored_group(&app, "web").targets.len(), 2);
    sweep_drained(&app, app.now()).await.expect("sweep");
    assert_eq!(stored_group(&app, "web").targets.len(), 1);
    assert!(app
        .elb_health
        .get(&(group.clone(), "10.0.0.1".into(), 8080))
        .is_none());

    // In use, the group cannot go; the rule, then the load balancer (and its listeners) can.
    let e = err(&app, "DeleteTargetGroup", &[("TargetGroupArn", &group)]).await;
    assert_eq!(e.name, "ResourceInUse");
    ok(&app, "DeleteRule", &[("RuleArn", &rule_arn)]).await;
    let e = err(&app, "DeleteRule", &[("RuleArn", &rule_arn)]).await;
    assert_eq!(e.name, "RuleNotFound");
    ok(&app, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    let e = err(
        &app,
        "DescribeListeners",
        &[("ListenerArns.member.1", &listener)],
    )
    .await;
    assert_eq!(e.name, "ListenerNotFound");
    ok(&app, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    ok(&app, "DeleteTargetGroup", &[("TargetGroupArn", &group)]).await;
    ok(&app, "DeleteTargetGroup", &[("TargetGroupArn", &group)]).await;
    let config = Config::read(&app).expect("read");
    assert!(config.load_balancers.is_empty() && config.listeners.is_empty());
    assert!(config.target_groups.is_empty());
}

#[tokio::test]
async fn targets_are_checked_against_the_target_type() {
    let app = crate::test_support::app().await;
    let ip = target_group(&app, "ips", "HTTP", "ip").await;
    let instance = target_group(&app, "instances", "HTTP", "instance").await;
    for (group, id) in [(&ip, "i-0123"), (&ip, "10.0.0"), (&instance, "10.0.0.1")] {
        let e = err(
            &app,
            "RegisterTargets",
            &[("TargetGroupArn", group), ("Targets.member.1.Id", id)],
        )
        .await;
        assert_eq!(e.name, "InvalidTarget", "{id}");
    }
    ok(
        &app,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &instance),
            ("Targets.member.1.Id", "i-0123abcd"),
        ],
    )
    .await;
    let e = err(
        &app,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &instance),
            ("Targets.member.1.Id", "i-0999"),
        ],
    )
    .await;
    assert_eq!(e.name, "InvalidTarget");
    let named = ok(
        &app,
        "DescribeTargetHealth",
        &[
            ("TargetGroupArn", &instance),
            ("Targets.member.1.Id", "i-0999"),
        ],
    )
    .await;
    assert_eq!(text(&named, "Reason"), "Target.NotRegistered");
    let missing = ip.replace("/ips/", "/nope/");
    let e = err(
        &app,
        "DescribeTargetHealth",
        &[("TargetGroupArn", &missing)],
    )
    .await;
    assert_eq!(e.name, "TargetGroupNotFound");
    let e = err(
        &app,
        "DescribeTargetHealth",
        &[("TargetGroupArn", "arn:nope")],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
}

#[tokio::test]
async fn tags_are_added_described_and_removed_on_every_kind_of_resource() {
    let app = crate::test_support::app().await;
    let lb = ok(
        &app,
        "CreateLoadBalancer",
        &[
            ("Name", "web"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
        ],
    )
    .await;
    let lb = text(&lb, "LoadBalancerArn");
    let group = target_group(&app, "web", "HTTP", "instance").await;
    let listener = forward_listener(&app, &lb, "80", &group).await;
    let described = ok(
        &app,
        "DescribeTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &group),
        ],
    )
    .await;
    assert_eq!(
        texts(&described, "ResourceArn"),
        [lb.clone(), group.clone()]
    );
    assert_eq!(texts(&described, "Key"), ["team"]);
    ok(
        &app,
        "AddTags",
        &[
            ("ResourceArns.member.1", &group),
            ("ResourceArns.member.2", &listener),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "prod"),
        ],
    )
    .await;
    let described = ok(
        &app,
        "DescribeTags",
        &[
            ("ResourceArns.member.1", &group),
            ("ResourceArns.member.2", &listener),
        ],
    )
    .await;
    assert_eq!(texts(&described, "Value"), ["prod", "prod"]);
    ok(
        &app,
        "RemoveTags",
        &[
            ("ResourceArns.member.1", &group),
            ("TagKeys.member.1", "env"),
        ],
    )
    .await;
    let described = ok(&app, "DescribeTags", &[("ResourceArns.member.1", &group)]).await;
    assert!(texts(&described, "Key").is_empty());

    let mut many: Vec<(String, String)> = Vec::new();
    for i in 1..=51 {
        many.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
        many.push((format!("Tags.member.{i}.Value"), "v".to_string()));
    }
    let mut params: Vec<(&str, &str)> = vec![("ResourceArns.member.1", &group)];
    params.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let e = err(&app, "AddTags", &params).await;
    assert_eq!(e.name, "TooManyTags");
    let e = err(
        &app,
        "AddTags",
        &[
            ("ResourceArns.member.1", &group),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.2.Key", "a"),
        ],
    )
    .await;
    assert_eq!(e.name, "DuplicateTagKeys");
    let missing = group.replace("/web/", "/gone/");
    let e = err(
        &app,
        "AddTags",
        &[
            ("ResourceArns.member.1", &missing),
            ("Tags.member.1.Key", "a"),
        ],
    )
    .await;
    assert_eq!(e.name, "TargetGroupNotFound");
}

#[tokio::test]
async fn a_user_without_elasticloadbalancing_permissions_is_denied() {
    let app = crate::test_support::app().await;
    let user = crate::test_support::user_without_policies();
    let e = call_as(&app, user.clone(), "DescribeLoadBalancers", &[])
        .await
        .expect_err("denied");
    assert_eq!(e.name, "AccessDenied");
    assert!(e
        .message
        .contains("elasticloadbalancing:DescribeLoadBalancers"));
    let e = call_as(&app, user, "CreateLoadBalancer", &[("Name", "web")])
        .await
        .expect_err("denied");
    assert_eq!(e.name, "AccessDenied");
    assert!(Config::read(&app).expect("read").load_balancers.is_empty());
}

#[tokio::test]
async fn request_counts_become_request_count_and_request_count_per_target() {
    use crate::elbv2::health::TargetHealth;
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "web").await;
    let group = target_group(&app, "api", "HTTP", "ip").await;
    let idle = target_group(&app, "idle", "HTTP", "ip").await;
    forward_listener(&app, &lb, "80", &group).await;
    ok(
        &app,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &group),
            ("Targets.member.1.Id", "10.0.0.1"),
            ("Targets.member.2.Id", "10.0.0.2"),
            ("Targets.member.3.Id", "10.0.0.3"),
        ],
    )
    .await;
    let config = Config::read(&app).expect("config");
    let lb_dim = lb
        .split_once(":loadbalancer/")
        .expect("lb arn")
        .1
        .to_string();
    let tg_dim = format!(
        "targetgroup/{}",
        group.split_once(":targetgroup/").expect("tg arn").1
    );
    let value = |data: &[crate::cloudwatch::Datum], name: &str, dims: &[(&str, &str)]| {
        data.iter()
            .find(|d| {
                d.metric_name == name
                    && d.dimensions
                        == dims
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect::<Vec<_>>()
            })
            .map(|d| d.statistics.sum)
    };
    // No target healthy yet: the count is shared by all three.
    let counts = [(group.clone(), 30), (idle.clone(), 5)];
    let data = super::dataplane::request_data(&config, &app.elb_health, &counts, 1_000);
    assert_eq!(
        value(&data, "RequestCount", &[("LoadBalancer", &lb_dim)]),
        Some(30.0)
    );
    assert_eq!(
        value(
            &data,
            "RequestCount",
            &[("LoadBalancer", &lb_dim), ("TargetGroup", &tg_dim)]
        ),
        Some(30.0)
    );
    assert_eq!(
        value(&data, "RequestCountPerTarget", &[("TargetGroup", &tg_dim)]),
        Some(10.0)
    );
    // A group no load balancer forwards to publishes nothing.
    assert_eq!(data.len(), 4);
    // Two healthy targets: the count is theirs.
    for id in ["10.0.0.1", "10.0.0.2"] {
        app.elb_health.set(
            (group.clone(), id.to_string(), 8080),
            TargetHealth {
                state: "healthy",
                reason: None,
                description: None,
            },
        );
    }
    let data = super::dataplane::request_data(&config, &app.elb_health, &counts, 1_000);
    assert_eq!(
        value(
            &data,
            "RequestCountPerTarget",
            &[("LoadBalancer", &lb_dim), ("TargetGroup", &tg_dim)]
        ),
        Some(15.0)
    );
}

mod configuration;
#[tokio::test]
async fn a_load_balancer_takes_fifty_listeners_and_goes_with_all_of_them() {
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "many").await;
    let group = target_group(&app, "many", "HTTP", "ip").await;
    for port in 8000..8050 {
        forward_listener(&app, &lb, &port.to_string(), &group).await;
    }
    let fifty_first = [
        ("LoadBalancerArn", lb.as_str()),
        ("Protocol", "HTTP"),
        ("Port", "8050"),
        ("DefaultActions.member.1.Type", "forward"),
        ("DefaultActions.member.1.TargetGroupArn", group.as_str()),
    ];
    let e = err(&app, "CreateListener", &fifty_first).await;
    assert_eq!(e.name, "TooManyListeners");
    ok(&app, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    let e = err(&app, "DescribeListeners", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(e.name, "LoadBalancerNotFound");
    let config = Config::read(&app).expect("config");
    assert_eq!(config.listeners.len(), 0, "no listener left behind");
}

#[cfg(feature = "etcd")]
mod on_etcd;
