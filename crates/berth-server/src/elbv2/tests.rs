//! ELBv2 through the query protocol on an in-memory server: load balancers, target groups,
//! listeners, rules, targets and tags, as `aws elbv2` would drive them, answers read from
//! their XML.

use super::model::{load_balancer_key, sweep_drained, Config, TargetGroup, TARGET_GROUPS};
use crate::app::App;
use crate::auth::{Identity, Principal};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{response, url_encode, QueryRequest};
use std::sync::Arc;

/// Runs `action` with `params` as `caller`; the whole XML answer or the error.
async fn call_as(
    app: &Arc<App>,
    caller: Principal,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, ApiError> {
    let mut body = format!("Action={action}&Version=2015-12-01");
    for (k, v) in params {
        body.push_str(&format!("&{}={}", url_encode(k), url_encode(v)));
    }
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

/// The texts of every `<tag>` of `xml`, in order.
fn texts(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(t, _)| t.to_string()))
        .collect()
}

/// The text of the first `<tag>` of `xml`.
fn text(xml: &str, tag: &str) -> String {
    texts(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

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
async fn a_load_balancer_is_created_with_elb_defaults_and_described() {
    let app = crate::test_support::app().await;
    let xml = ok(&app, "CreateLoadBalancer", &[("Name", "web")]).await;
    let arn = text(&xml, "LoadBalancerArn");
    let prefix = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/";
    let id = arn.strip_prefix(prefix).expect("an ALB ARN");
    assert_eq!(id.len(), 16);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(text(&xml, "Type"), "application");
    assert_eq!(text(&xml, "Scheme"), "internet-facing");
    assert_eq!(text(&xml, "IpAddressType"), "ipv4");
    assert_eq!(text(&xml, "Code"), "active");
    assert_eq!(text(&xml, "ZoneName"), "us-east-1a");
    let dns = text(&xml, "DNSName");
    let digits = dns
        .strip_prefix("web-")
        .and_then(|d| d.strip_suffix(".us-east-1.elb.localhost"))
        .expect("dns name shape");
    assert!(digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit()));

    let net = ok(
        &app,
        "CreateLoadBalancer",
        &[
            ("Name", "tcp"),
            ("Type", "network"),
            ("Scheme", "internal"),
            ("Subnets.member.1", "subnet-a"),
            ("Subnets.member.2", "subnet-b"),
        ],
    )
    .await;
    assert!(text(&net, "LoadBalancerArn").contains(":loadbalancer/net/tcp/"));
    assert_eq!(texts(&net, "ZoneName"), ["us-east-1a", "us-east-1b"]);
    assert_eq!(texts(&net, "SubnetId"), ["subnet-a", "subnet-b"]);

    let all = ok(&app, "DescribeLoadBalancers", &[]).await;
    assert_eq!(texts(&all, "LoadBalancerName"), ["tcp", "web"]);
    let one = ok(&app, "DescribeLoadBalancers", &[("Names.member.1", "web")]).await;
    assert_eq!(texts(&one, "LoadBalancerArn"), [arn.as_str()]);
    let page = ok(&app, "DescribeLoadBalancers", &[("PageSize", "1")]).await;
    assert_eq!(texts(&page, "LoadBalancerName"), ["tcp"]);
    let marker = text(&page, "NextMarker");
    let next = ok(
        &app,
        "DescribeLoadBalancers",
        &[("PageSize", "1"), ("Marker", &marker)],
    )
    .await;
    assert_eq!(texts(&next, "LoadBalancerName"), ["web"]);
    assert!(texts(&next, "NextMarker").is_empty());

    let missing = format!("{prefix}0000000000000000");
    let e = err(
        &app,
        "DescribeLoadBalancers",
        &[("LoadBalancerArns.member.1", &missing)],
    )
    .await;
    assert_eq!(e.name, "LoadBalancerNotFound");
    let e = err(&app, "DescribeLoadBalancers", &[("Names.member.1", "nope")]).await;
    assert_eq!(e.name, "LoadBalancerNotFound");
}

#[tokio::test]
async fn load_balancer_names_follow_elb_rules_and_duplicates_are_refused() {
    let app = crate::test_support::app().await;
    for bad in [
        "-web",
        "web-",
        "internal-web",
        "web_1",
        "a-name-that-is-much-too-long-for-elb",
        "",
    ] {
        let e = err(&app, "CreateLoadBalancer", &[("Name", bad)]).await;
        assert_eq!(e.name, "ValidationError", "{bad}");
    }
    let first = load_balancer(&app, "web").await;
    // The same settings again answer the same load balancer, as ELB's idempotent create does.
    assert_eq!(load_balancer(&app, "web").await, first);
    let e = err(
        &app,
        "CreateLoadBalancer",
        &[("Name", "web"), ("Scheme", "internal")],
    )
    .await;
    assert_eq!(e.name, "DuplicateLoadBalancerName");
    let e = err(
        &app,
        "CreateLoadBalancer",
        &[("Name", "gw"), ("Type", "gateway")],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
    assert!(e.message.contains("gateway"), "{}", e.message);
}

#[tokio::test]
async fn target_groups_get_protocol_dependent_health_check_defaults() {
    let app = crate::test_support::app().await;
    let http = ok(
        &app,
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-1"),
        ],
    )
    .await;
    assert_eq!(text(&http, "HealthCheckProtocol"), "HTTP");
    assert_eq!(text(&http, "HealthCheckPort"), "traffic-port");
    assert_eq!(text(&http, "HealthCheckPath"), "/");
    assert_eq!(text(&http, "HealthCheckIntervalSeconds"), "30");
    assert_eq!(text(&http, "HealthCheckTimeoutSeconds"), "6");
    assert_eq!(text(&http, "HealthyThresholdCount"), "5");
    assert_eq!(text(&http, "UnhealthyThresholdCount"), "2");
    assert_eq!(text(&http, "HttpCode"), "200");
    assert_eq!(text(&http, "TargetType"), "instance");
    assert_eq!(text(&http, "ProtocolVersion"), "HTTP1");
    assert_eq!(text(&http, "VpcId"), "vpc-1");

    let tcp = ok(
        &app,
        "CreateTargetGroup",
        &[
            ("Name", "db"),
            ("Protocol", "TCP"),
            ("Port", "5432"),
            ("TargetType", "ip"),
        ],
    )
    .await;
    assert_eq!(text(&tcp, "HealthCheckProtocol"), "TCP");
    assert_eq!(text(&tcp, "HealthCheckTimeoutSeconds"), "10");
    assert!(texts(&tcp, "HealthCheckPath").is_empty());
    assert!(texts(&tcp, "Matcher").is_empty());

    // Identical settings answer the existing group; different ones are a duplicate.
    let again = ok(
        &app,
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-1"),
        ],
    )
    .await;
    assert_eq!(
        text(&again, "TargetGroupArn"),
        text(&http, "TargetGroupArn")
    );
    let e = err(
        &app,
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "81"),
            ("VpcId", "vpc-1"),
        ],
    )
    .await;
    assert_eq!(e.name, "DuplicateTargetGroupName");

    let modified = ok(
        &app,
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &text(&http, "TargetGroupArn")),
            ("HealthCheckPath", "/healthz"),
            ("HealthCheckIntervalSeconds", "10"),
            ("HealthCheckTimeoutSeconds", "5"),
            ("Matcher.HttpCode", "200-299"),
        ],
    )
    .await;
    assert_eq!(text(&modified, "HealthCheckPath"), "/healthz");
    assert_eq!(text(&modified, "HttpCode"), "200-299");
    let e = err(
        &app,
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &text(&http, "TargetGroupArn")),
            ("HealthCheckTimeoutSeconds", "20"),
        ],
    )
    .await;
    assert_eq!(e.name, "InvalidConfigurationRequest");
    assert_eq!(stored_group(&app, "web").health_check.timeout_seconds, 5);
}

#[tokio::test]
async fn protocols_and_target_types_berth_does_not_serve_are_refused_clearly() {
    let app = crate::test_support::app().await;
    for protocol in ["HTTPS", "UDP", "TLS", "TCP_UDP"] {
        let e = err(
            &app,
            "CreateTargetGroup",
            &[("Name", "x"), ("Protocol", protocol), ("Port", "80")],
        )
        .await;
        assert_eq!(e.name, "ValidationError");
        assert!(e.message.contains("HTTP and TCP"), "{}", e.message);
    }
    let e = err(
        &app,
        "CreateTargetGroup",
        &[("Name", "fn"), ("TargetType", "lambda")],
    )
    .await;
    assert!(e.message.contains("lambda"), "{}", e.message);
    let e = err(
        &app,
        "CreateTargetGroup",
        &[("Name", "bad-"), ("Protocol", "HTTP"), ("Port", "80")],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
    assert!(Config::read(&app).expect("read").target_groups.is_empty());

    let lb = load_balancer(&app, "web").await;
    let group = target_group(&app, "web", "HTTP", "instance").await;
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTPS"),
            ("Port", "443"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &group),
        ],
    )
    .await;
    assert_eq!(e.name, "UnsupportedProtocol");
    let tcp_group = target_group(&app, "tcp", "TCP", "instance").await;
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tcp_group),
        ],
    )
    .await;
    assert_eq!(e.name, "IncompatibleProtocols");
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
async fn listeners_are_unique_per_port_and_target_groups_per_load_balancer() {
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "one").await;
    let other = load_balancer(&app, "two").await;
    let group = target_group(&app, "web", "HTTP", "instance").await;
    let listener = forward_listener(&app, &lb, "80", &group).await;
    // The same listener again is the same listener.
    assert_eq!(forward_listener(&app, &lb, "80", &group).await, listener);
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "fixed-response"),
            (
                "DefaultActions.member.1.FixedResponseConfig.StatusCode",
                "200",
            ),
        ],
    )
    .await;
    assert_eq!(e.name, "DuplicateListener");
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &other),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            (
                "DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn",
                &group,
            ),
        ],
    )
    .await;
    assert_eq!(e.name, "TargetGroupAssociationLimit");
    // Every load balancer is served on the server's one address: a port serves one listener.
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &other),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "fixed-response"),
            (
                "DefaultActions.member.1.FixedResponseConfig.StatusCode",
                "200",
            ),
        ],
    )
    .await;
    assert_eq!(e.name, "DuplicateListener");
    assert!(e.message.contains(&lb), "{}", e.message);
    // A second listener of the same load balancer may forward to it.
    let second = ok(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "8080"),
            ("DefaultActions.member.1.Type", "redirect"),
            ("DefaultActions.member.1.RedirectConfig.Port", "80"),
            (
                "DefaultActions.member.1.RedirectConfig.StatusCode",
                "HTTP_301",
            ),
        ],
    )
    .await;
    assert_eq!(text(&second, "Path"), "/#{path}");
    assert_eq!(text(&second, "Host"), "#{host}");
    let second = text(&second, "ListenerArn");
    let e = err(
        &app,
        "ModifyListener",
        &[("ListenerArn", &second), ("Port", "80")],
    )
    .await;
    assert_eq!(e.name, "DuplicateListener");
    let modified = ok(
        &app,
        "ModifyListener",
        &[
            ("ListenerArn", &second),
            ("Port", "81"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &group),
        ],
    )
    .await;
    assert_eq!(text(&modified, "Port"), "81");
    assert_eq!(text(&modified, "Weight"), "1");
    let listed = ok(&app, "DescribeListeners", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(texts(&listed, "Port"), ["80", "81"]);
    let e = err(
        &app,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "82"),
            ("DefaultActions.member.1.Type", "redirect"),
            (
                "DefaultActions.member.1.RedirectConfig.StatusCode",
                "HTTP_302",
            ),
        ],
    )
    .await;
    assert_eq!(e.name, "InvalidLoadBalancerAction");
    ok(&app, "DeleteListener", &[("ListenerArn", &second)]).await;
    let e = err(&app, "DeleteListener", &[("ListenerArn", &second)]).await;
    assert_eq!(e.name, "ListenerNotFound");
}

#[tokio::test]
async fn rule_priorities_are_unique_and_can_be_swapped() {
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "web").await;
    let group = target_group(&app, "web", "HTTP", "instance").await;
    let listener = forward_listener(&app, &lb, "80", &group).await;
    let rule = |priority: &'static str, host: &'static str| {
        let app = app.clone();
        let listener = listener.clone();
        let group = group.clone();
        async move {
            call(
                &app,
                "CreateRule",
                &[
                    ("ListenerArn", &listener),
                    ("Priority", priority),
                    ("Conditions.member.1.Field", "host-header"),
                    ("Conditions.member.1.Values.member.1", host),
                    ("Actions.member.1.Type", "forward"),
                    ("Actions.member.1.TargetGroupArn", &group),
                ],
            )
            .await
        }
    };
    let a = text(
        &rule("1", "a.example.com").await.expect("rule a"),
        "RuleArn",
    );
    let b = text(
        &rule("2", "*.example.com").await.expect("rule b"),
        "RuleArn",
    );
    let e = rule("2", "c.example.com")
        .await
        .expect_err("priority in use");
    assert_eq!(e.name, "PriorityInUse");
    let e = rule("3", "bad host!").await.expect_err("bad host");
    assert_eq!(e.name, "ValidationError");
    let e = rule("50001", "c.example.com").await.expect_err("too high");
    assert_eq!(e.name, "ValidationError");

    let swapped = ok(
        &app,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &a),
            ("RulePriorities.member.1.Priority", "2"),
            ("RulePriorities.member.2.RuleArn", &b),
            ("RulePriorities.member.2.Priority", "1"),
        ],
    )
    .await;
    assert_eq!(texts(&swapped, "RuleArn"), [b.clone(), a.clone()]);
    let e = err(
        &app,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &a),
            ("RulePriorities.member.1.Priority", "1"),
        ],
    )
    .await;
    assert_eq!(e.name, "PriorityInUse");

    let modified = ok(
        &app,
        "ModifyRule",
        &[
            ("RuleArn", &a),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/v2/*"),
        ],
    )
    .await;
    assert_eq!(text(&modified, "Field"), "path-pattern");
    assert!(modified.contains("<PathPatternConfig><Values><member>/v2/*</member>"));

    let rules = ok(&app, "DescribeRules", &[("ListenerArn", &listener)]).await;
    let default = texts(&rules, "RuleArn").pop().expect("the default rule");
    let e = err(&app, "DeleteRule", &[("RuleArn", &default)]).await;
    assert_eq!(e.name, "OperationNotPermitted");
    let e = err(
        &app,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "5"),
            ("Conditions.member.1.Field", "http-header"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &group),
        ],
    )
    .await;
    assert!(e.message.contains("http-header"), "{}", e.message);
}

#[tokio::test]
async fn attributes_have_defaults_are_checked_and_deletion_protection_holds() {
    let app = crate::test_support::app().await;
    let lb = load_balancer(&app, "web").await;
    let attributes = ok(
        &app,
        "DescribeLoadBalancerAttributes",
        &[("LoadBalancerArn", &lb)],
    )
    .await;
    assert!(attributes.contains("<Key>idle_timeout.timeout_seconds</Key><Value>60</Value>"));
    assert!(attributes.contains("<Key>deletion_protection.enabled</Key><Value>false</Value>"));
    for (key, value) in [
        ("idle_timeout.timeout_seconds", "0"),
        ("deletion_protection.enabled", "yes"),
        ("no.such.attribute", "1"),
    ] {
        let e = err(
            &app,
            "ModifyLoadBalancerAttributes",
            &[
                ("LoadBalancerArn", &lb),
                ("Attributes.member.1.Key", key),
                ("Attributes.member.1.Value", value),
            ],
        )
        .await;
        assert_eq!(e.name, "ValidationError", "{key}");
    }
    ok(
        &app,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .await;
    let e = err(&app, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(e.name, "OperationNotPermitted");
    assert!(app
        .get::<super::model::LoadBalancer>(&load_balancer_key("web"))
        .expect("read")
        .is_some());

    let group = target_group(&app, "web", "HTTP", "instance").await;
    let attributes = ok(
        &app,
        "DescribeTargetGroupAttributes",
        &[("TargetGroupArn", &group)],
    )
    .await;
    assert!(
        attributes.contains("<Key>deregistration_delay.timeout_seconds</Key><Value>300</Value>")
    );
    assert!(attributes.contains("<Key>stickiness.type</Key><Value>lb_cookie</Value>"));
    for (key, value) in [
        ("deregistration_delay.timeout_seconds", "3601"),
        ("slow_start.duration_seconds", "10"),
        ("stickiness.enabled", "maybe"),
        ("stickiness.type", "app_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "0"),
        ("load_balancing.algorithm.type", "weighted_random"),
    ] {
        let e = err(
            &app,
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &group),
                ("Attributes.member.1.Key", key),
                ("Attributes.member.1.Value", value),
            ],
        )
        .await;
        assert_eq!(e.name, "ValidationError", "{key}={value}");
    }
    // Nothing half-applied: a good change with a bad one leaves both out.
    let e = err(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            ("Attributes.member.1.Key", "stickiness.enabled"),
            ("Attributes.member.1.Value", "true"),
            ("Attributes.member.2.Key", "slow_start.duration_seconds"),
            ("Attributes.member.2.Value", "1000"),
        ],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
    assert_eq!(
        stored_group(&app, "web").attributes["stickiness.enabled"],
        "false"
    );
    let changed = ok(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            ("Attributes.member.1.Key", "slow_start.duration_seconds"),
            ("Attributes.member.1.Value", "30"),
            ("Attributes.member.2.Key", "load_balancing.algorithm.type"),
            ("Attributes.member.2.Value", "round_robin"),
        ],
    )
    .await;
    assert!(changed.contains("<Key>slow_start.duration_seconds</Key><Value>30</Value>"));
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
    let user = Principal {
        arn: "arn:aws:iam::000000000000:user/nobody".into(),
        access_key_id: "AKIANOBODY".into(),
        identity: Identity::User {
            name: "nobody".into(),
            id: "AIDANOBODY".into(),
        },
        secure_transport: false,
        host: None,
    };
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
