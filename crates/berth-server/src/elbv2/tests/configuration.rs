//! Load balancers, target groups, listeners, rules and attributes: their defaults, names,
//! uniqueness and the protocols Berth refuses.

use super::*;

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
    // More priorities than a listener has rules: refused before anything is read.
    let many: Vec<(String, String)> = (1..=101)
        .flat_map(|i| {
            [
                (
                    format!("RulePriorities.member.{i}.RuleArn"),
                    format!("{a}-{i}"),
                ),
                (
                    format!("RulePriorities.member.{i}.Priority"),
                    format!("{}", 1000 + i),
                ),
            ]
        })
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let e = err(&app, "SetRulePriorities", &many).await;
    assert_eq!(e.name, "ValidationError", "{}", e.message);
    assert!(e.message.contains("At most 100"), "{}", e.message);

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
        .get::<crate::elbv2::model::LoadBalancer>(&load_balancer_key("web"))
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
        ("stickiness.type", "source_ip"),
        ("stickiness.app_cookie.cookie_name", "AWSALBAPP-1"),
        ("stickiness.app_cookie.cookie_name", "two words"),
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
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "10"),
            ("Attributes.member.2.Key", "slow_start.duration_seconds"),
            ("Attributes.member.2.Value", "1000"),
        ],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
    assert_eq!(
        stored_group(&app, "web").attributes["deregistration_delay.timeout_seconds"],
        "300"
    );
    // NLB features the TCP splice does not have are refused, not stored.
    let tcp = target_group(&app, "tcp", "TCP", "instance").await;
    for key in [
        "proxy_protocol_v2.enabled",
        "deregistration_delay.connection_termination.enabled",
    ] {
        let e = err(
            &app,
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &tcp),
                ("Attributes.member.1.Key", key),
                ("Attributes.member.1.Value", "true"),
            ],
        )
        .await;
        assert_eq!(e.name, "InvalidConfigurationRequest", "{key}");
        assert_eq!(stored_group(&app, "tcp").attributes[key], "false");
    }
    // Sticky sessions (lb_cookie) are stored and reach the data plane's config.
    let sticky = ok(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            ("Attributes.member.1.Key", "stickiness.enabled"),
            ("Attributes.member.1.Value", "true"),
            (
                "Attributes.member.2.Key",
                "stickiness.lb_cookie.duration_seconds",
            ),
            ("Attributes.member.2.Value", "600"),
        ],
    )
    .await;
    assert!(sticky.contains("<Key>stickiness.enabled</Key><Value>true</Value>"));
    let stored = stored_group(&app, "web");
    let config =
        crate::elbv2::dataplane::target_group_config(&stored, &Default::default(), app.now());
    assert_eq!(
        config.stickiness,
        crate::elbv2::proxy::Stickiness::LbCookie(std::time::Duration::from_secs(600))
    );
    // app_cookie needs the application's cookie name; with it, it reaches the data plane.
    let e = err(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            ("Attributes.member.1.Key", "stickiness.type"),
            ("Attributes.member.1.Value", "app_cookie"),
        ],
    )
    .await;
    assert_eq!(e.name, "ValidationError");
    assert!(e.message.contains("cookie_name"), "{}", e.message);
    ok(
        &app,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &group),
            ("Attributes.member.1.Key", "stickiness.type"),
            ("Attributes.member.1.Value", "app_cookie"),
            (
                "Attributes.member.2.Key",
                "stickiness.app_cookie.cookie_name",
            ),
            ("Attributes.member.2.Value", "SESSION"),
        ],
    )
    .await;
    let config = crate::elbv2::dataplane::target_group_config(
        &stored_group(&app, "web"),
        &Default::default(),
        app.now(),
    );
    assert_eq!(
        config.stickiness,
        crate::elbv2::proxy::Stickiness::AppCookie {
            name: "SESSION".into(),
            duration: std::time::Duration::from_secs(86_400),
        }
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
