//! Target groups: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
//! DeleteTargetGroup and their attributes (DescribeTargetGroupAttributes,
//! ModifyTargetGroupAttributes). Their targets are in [`super::targets`].
//!
//! Berth serves HTTP and TCP: a group's protocol is one of those, its targets are instances
//! or IPv4 addresses, and its health checks use HTTP or TCP.

use super::model::{write, Config, HealthCheck, TargetGroup};
use super::tags::tags_of;
use super::{
    arn_parts, arn_prefix, attribute_changes, authorize, boolean, integer_in,
    invalid_configuration, missing, page, port, random_hex, strings, validation, write_attributes,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use std::collections::BTreeMap;

/// `TargetGroupNotFound` for `arn`.
pub(super) fn not_found(arn: &str) -> ApiError {
    ApiError::new(
        "TargetGroupNotFound",
        format!("Target group '{arn}' not found"),
    )
}

/// Target group `arn` of `config`, or `TargetGroupNotFound` (`ValidationError` for what is
/// not a target group ARN at all).
pub(super) fn existing<'a>(
    ctx: &Ctx,
    config: &'a Config,
    arn: &str,
) -> Result<&'a TargetGroup, ApiError> {
    arn_parts(ctx, arn, "targetgroup", 2, "target group")?;
    config.target_group(arn).ok_or_else(|| not_found(arn))
}

/// ELB's rule for target group names: at most 32 alphanumerics and hyphens, not starting or
/// ending with a hyphen.
fn check_name(name: &str) -> Result<(), ApiError> {
    super::check_name(name, "target group")
}

/// A protocol Berth serves (`HTTP`, `TCP`), or an error saying what it does not.
fn served_protocol(protocol: &str, what: &str) -> Result<(), ApiError> {
    match protocol {
        "HTTP" | "TCP" => Ok(()),
        "HTTPS" | "TLS" | "UDP" | "TCP_UDP" | "GENEVE" | "QUIC" | "TCP_QUIC" => {
            Err(validation(format!(
            "Berth serves HTTP and TCP only: the protocol {protocol} is not supported for {what}."
        )))
        }
        other => Err(validation(format!(
            "The protocol '{other}' is not valid for {what}: use HTTP or TCP."
        ))),
    }
}

/// ELB's health check defaults for a group of `protocol` (HTTP groups check HTTP, TCP groups
/// TCP).
fn default_health_check(protocol: &str) -> HealthCheck {
    let http = protocol == "HTTP";
    HealthCheck {
        enabled: true,
        protocol: protocol.to_string(),
        port: "traffic-port".to_string(),
        path: http.then(|| "/".to_string()),
        interval_seconds: 30,
        timeout_seconds: if http { 6 } else { 10 },
        healthy_threshold: 5,
        unhealthy_threshold: 2,
        matcher: http.then(|| "200".to_string()),
    }
}

/// Checks an HTTP code matcher (`200`, `200,202`, `200-299`) whose codes must lie in
/// `low..=high`.
fn check_matcher(matcher: &str, low: u16, high: u16) -> Result<(), ApiError> {
    let code = |text: &str| {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (low..=high).contains(c))
    };
    let valid = matcher.split(',').all(|part| match part.split_once('-') {
        Some((from, to)) => matches!((code(from), code(to)), (Some(a), Some(b)) if a <= b),
        None => code(part).is_some(),
    });
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "The health check matcher '{matcher}' is not valid: give codes from {low} to {high}, as '200', '200,202' or '200-299'."
        )))
    }
}

/// Applies the request's health check parameters to `check`, a check of a group of
/// `protocol`.
fn apply_health_check(
    request: &QueryRequest,
    protocol: &str,
    check: &mut HealthCheck,
) -> Result<(), ApiError> {
    if let Some(wanted) = request.get("HealthCheckProtocol") {
        match (protocol, wanted) {
            ("HTTP", "HTTP") | ("TCP", "HTTP") | ("TCP", "TCP") => {}
            ("HTTP", "TCP") => {
                return Err(validation(
                    "TCP health checks are not supported for target groups with the HTTP protocol.",
                ))
            }
            (_, other) => {
                return Err(validation(format!(
                    "Berth's health checks use HTTP or TCP: the health check protocol {other} is not supported."
                )))
            }
        }
        if wanted != check.protocol {
            let http = wanted == "HTTP";
            check.path = http.then(|| "/".to_string());
            check.matcher =
                http.then(|| if protocol == "HTTP" { "200" } else { "200-399" }.to_string());
            check.protocol = wanted.to_string();
        }
    }
    if let Some(port) = request.get("HealthCheckPort") {
        if port != "traffic-port" && !port.parse::<u16>().is_ok_and(|p| p >= 1) {
            return Err(validation(format!(
                "The health check port '{port}' is not valid: use traffic-port or a port from 1 to 65535."
            )));
        }
        check.port = port.to_string();
    }
    if boolean(request.get("HealthCheckEnabled"), "HealthCheckEnabled")? == Some(false) {
        return Err(validation(
            "Health checks are always enabled for target groups of instance and ip targets.",
        ));
    }
    let http = check.protocol == "HTTP";
    if let Some(path) = request.get("HealthCheckPath") {
        if !http {
            return Err(validation(
                "A health check path can only be given for HTTP health checks.",
            ));
        }
        if !path.starts_with('/') || path.len() > 1024 {
            return Err(validation(format!(
                "The health check path '{path}' is not valid: it must begin with '/' and be at most 1024 characters long."
            )));
        }
        check.path = Some(path.to_string());
    }
    let count = |name: &str, at: &str, range| {
        integer_in(request.get(name), at, range).map(|n| n.map(|n| n as u32))
    };
    if let Some(n) = count(
        "HealthCheckIntervalSeconds",
        "healthCheckIntervalSeconds",
        5..=300,
    )? {
        check.interval_seconds = n;
    }
    if let Some(n) = count(
        "HealthCheckTimeoutSeconds",
        "healthCheckTimeoutSeconds",
        2..=120,
    )? {
        check.timeout_seconds = n;
    }
    if let Some(n) = count("HealthyThresholdCount", "healthyThresholdCount", 2..=10)? {
        check.healthy_threshold = n;
    }
    if let Some(n) = count("UnhealthyThresholdCount", "unhealthyThresholdCount", 2..=10)? {
        check.unhealthy_threshold = n;
    }
    if request.get("Matcher.GrpcCode").is_some() {
        return Err(validation(
            "Berth's health checks are HTTP or TCP: a gRPC matcher is not supported.",
        ));
    }
    if let Some(codes) = request.get("Matcher.HttpCode") {
        if !http {
            return Err(validation(
                "A health check matcher can only be given for HTTP health checks.",
            ));
        }
        let high = if protocol == "HTTP" { 499 } else { 599 };
        check_matcher(codes, 200, high)?;
        check.matcher = Some(codes.to_string());
    }
    if check.timeout_seconds >= check.interval_seconds {
        return Err(invalid_configuration(format!(
            "The health check timeout ({} s) must be smaller than the interval ({} s).",
            check.timeout_seconds, check.interval_seconds
        )));
    }
    Ok(())
}

/// The attributes a new group of `protocol` with targets of `target_type` has, with ELB's
/// defaults.
fn default_attributes(protocol: &str, target_type: &str) -> BTreeMap<String, String> {
    let http = [
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        ("slow_start.duration_seconds", "0"),
        ("load_balancing.algorithm.type", "round_robin"),
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
    ];
    // Client IP preservation is off by default for ip targets of TCP groups, on otherwise.
    let preserve = if target_type == "ip" { "false" } else { "true" };
    let tcp = [
        ("deregistration_delay.timeout_seconds", "300"),
        (
            "deregistration_delay.connection_termination.enabled",
            "false",
        ),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "source_ip"),
        ("preserve_client_ip.enabled", preserve),
        ("proxy_protocol_v2.enabled", "false"),
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
    ];
    let pairs: &[(&str, &str)] = if protocol == "HTTP" { &http } else { &tcp };
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks `value` for attribute `key` of `group`.
fn check_attribute(group: &TargetGroup, key: &str, value: &str) -> Result<(), ApiError> {
    let bad = |what: &str| {
        validation(format!(
            "The value '{value}' of target group attribute '{key}' is not valid: {what}."
        ))
    };
    let number = || value.parse::<i64>().ok();
    let one_of = |allowed: &[&str], what: &str| {
        allowed
            .contains(&value)
            .then_some(())
            .ok_or_else(|| bad(what))
    };
    if !default_attributes(&group.protocol, &group.target_type).contains_key(key) {
        return Err(validation(format!(
            "'{key}' is not an attribute of {} target groups that Berth supports.",
            group.protocol
        )));
    }
    match key {
        "deregistration_delay.timeout_seconds" => number()
            .filter(|n| (0..=3600).contains(n))
            .map(|_| ())
            .ok_or_else(|| bad("it must be an integer from 0 to 3600")),
        "slow_start.duration_seconds" => number()
            .filter(|n| *n == 0 || (30..=900).contains(n))
            .map(|_| ())
            .ok_or_else(|| bad("it must be 0 (off) or an integer from 30 to 900")),
        "stickiness.app_cookie.cookie_name" => {
            let reserved = ["AWSALB", "AWSALBAPP", "AWSALBTG"]
                .iter()
                .any(|prefix| value.starts_with(prefix));
            let token = value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if value.len() <= 256 && token && !reserved {
                Ok(())
            } else {
                Err(bad("it must be a cookie name of at most 256 characters (letters, digits and !#$%&'*+-.^_`|~), not starting with AWSALB, AWSALBAPP or AWSALBTG"))
            }
        }
        "stickiness.app_cookie.duration_seconds" | "stickiness.lb_cookie.duration_seconds" => number()
            .filter(|n| (1..=604_800).contains(n))
            .map(|_| ())
            .ok_or_else(|| bad("it must be an integer from 1 to 604800")),
        "stickiness.type" if group.protocol == "HTTP" => {
            one_of(&["lb_cookie", "app_cookie"], "use lb_cookie or app_cookie")
        }
        "stickiness.type" => one_of(
            &["source_ip"],
            "TCP target groups support source_ip stickiness only",
        ),
        "load_balancing.algorithm.type" => one_of(
            &["round_robin", "least_outstanding_requests"],
            "use round_robin or least_outstanding_requests (Berth does not support weighted_random)",
        ),
        "load_balancing.cross_zone.enabled" => one_of(
            &["true", "false", "use_load_balancer_configuration"],
            "use true, false or use_load_balancer_configuration",
        ),
        // Features of NLB's data plane that Berth's TCP splice does not have.
        "proxy_protocol_v2.enabled" | "deregistration_delay.connection_termination.enabled"
            if value == "true" =>
        {
            Err(invalid_configuration(format!(
                "Berth's TCP listeners do not support {key}: it must stay false."
            )))
        }
        _ => one_of(&["true", "false"], "use true or false"),
    }
}

/// What of a target group its creation settles; CreateTargetGroup with the same name and
/// these answers the existing group, as ELB's idempotent create does.
fn same_settings(a: &TargetGroup, b: &TargetGroup) -> bool {
    a.protocol == b.protocol
        && a.protocol_version == b.protocol_version
        && a.port == b.port
        && a.vpc_id == b.vpc_id
        && a.target_type == b.target_type
        && a.ip_address_type == b.ip_address_type
        && a.health_check == b.health_check
}

pub(super) fn write_target_group(xml: &mut Xml, group: &TargetGroup, load_balancers: &[String]) {
    let check = &group.health_check;
    xml.field("TargetGroupArn", &group.arn)
        .field("TargetGroupName", &group.name)
        .field("Protocol", &group.protocol)
        .field("Port", &group.port.to_string())
        .optional("VpcId", group.vpc_id.as_deref())
        .field("HealthCheckProtocol", &check.protocol)
        .field("HealthCheckPort", &check.port)
        .field(
            "HealthCheckEnabled",
            if check.enabled { "true" } else { "false" },
        )
        .field(
            "HealthCheckIntervalSeconds",
            &check.interval_seconds.to_string(),
        )
        .field(
            "HealthCheckTimeoutSeconds",
            &check.timeout_seconds.to_string(),
        )
        .field(
            "HealthyThresholdCount",
            &check.healthy_threshold.to_string(),
        )
        .field(
            "UnhealthyThresholdCount",
            &check.unhealthy_threshold.to_string(),
        )
        .optional("HealthCheckPath", check.path.as_deref());
    if let Some(matcher) = &check.matcher {
        xml.nest("Matcher", |xml| {
            xml.field("HttpCode", matcher);
        });
    }
    xml.list("LoadBalancerArns", load_balancers, |xml, arn| {
        xml.text(arn);
    })
    .field("TargetType", &group.target_type)
    .optional("ProtocolVersion", group.protocol_version.as_deref())
    .field("IpAddressType", &group.ip_address_type);
}

/// `<TargetGroups>` of `groups`, each with the load balancers that forward to it.
fn write_target_groups(xml: &mut Xml, config: &Config, groups: &[TargetGroup]) {
    xml.list("TargetGroups", groups, |xml, group| {
        let users: Vec<String> = config
            .load_balancers_using(&group.arn)
            .into_iter()
            .collect();
        write_target_group(xml, group, &users);
    });
}

/// CreateTargetGroup: a group of instance (default) or ip targets served over HTTP or TCP.
pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.get("Name").ok_or_else(|| missing("name"))?;
    check_name(name)?;
    let target_type = request.get("TargetType").unwrap_or("instance");
    match target_type {
        "instance" | "ip" => {}
        "lambda" | "alb" => {
            return Err(validation(format!(
                "Berth does not support target groups of {target_type} targets: use TargetType instance or ip."
            )))
        }
        other => {
            return Err(validation(format!(
                "The target type '{other}' is not valid: use instance or ip."
            )))
        }
    }
    let protocol = request.get("Protocol").ok_or_else(|| {
        validation("A protocol must be specified for target groups of instance and ip targets.")
    })?;
    served_protocol(protocol, "target groups")?;
    let port = port(request.get("Port"), "port")?.ok_or_else(|| {
        validation("A port must be specified for target groups of instance and ip targets.")
    })?;
    let protocol_version = match (protocol, request.get("ProtocolVersion")) {
        ("HTTP", None | Some("HTTP1")) => Some("HTTP1".to_string()),
        ("HTTP", Some(other)) => {
            return Err(validation(format!(
                "Berth forwards HTTP/1.1 to targets: the protocol version {other} is not supported, use HTTP1."
            )))
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(validation(
                "A protocol version can only be given for HTTP target groups.",
            ))
        }
    };
    let ip_address_type = request.get("IpAddressType").unwrap_or("ipv4");
    if ip_address_type != "ipv4" {
        return Err(validation(format!(
            "Berth's target groups hold IPv4 targets only: IpAddressType '{ip_address_type}' is not supported, use ipv4."
        )));
    }
    if request.get("TargetControlPort").is_some() {
        return Err(validation("Berth does not support target control ports."));
    }
    let mut health_check = default_health_check(protocol);
    apply_health_check(request, protocol, &mut health_check)?;
    let tags = tags_of(request)?;
    let arn = format!("{}targetgroup/{name}/{}", arn_prefix(ctx), random_hex(16)?);
    authorize(ctx, "CreateTargetGroup", &[&arn])?;
    let group = TargetGroup {
        arn,
        name: name.to_string(),
        protocol: protocol.to_string(),
        protocol_version,
        port,
        vpc_id: request.get("VpcId").map(str::to_string),
        target_type: target_type.to_string(),
        ip_address_type: ip_address_type.to_string(),
        health_check,
        attributes: default_attributes(protocol, target_type),
        targets: Vec::new(),
        created: ctx.now().floor(),
        tags,
    };
    let (config, made) = write(ctx, |config| {
        let key = group.key();
        match config
            .target_groups
            .iter()
            .find(|old| old.name == group.name)
        {
            Some(old) if same_settings(old, &group) => {
                Ok((Txn::new(), (config.clone(), old.clone())))
            }
            Some(_) => Err(ApiError::new(
                "DuplicateTargetGroupName",
                format!("A target group with the name '{name}' already exists."),
            )),
            None => Ok((
                Txn::new()
                    .when(Compare::absent(&key))
                    .put(&key, encode(&group)),
                (config.clone(), group.clone()),
            )),
        }
    })
    .await?;
    let mut xml = Xml::new();
    write_target_groups(&mut xml, &config, &[made]);
    Ok(Some(xml))
}

/// DescribeTargetGroups: those a load balancer forwards to (`LoadBalancerArn`), those named by
/// `TargetGroupArns` or `Names` (each must exist), or all, a page at a time.
pub(super) fn describe(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let lb_arn = request.get("LoadBalancerArn");
    let arns = strings(request, "TargetGroupArns");
    let names = strings(request, "Names");
    let given = [lb_arn.is_some(), !arns.is_empty(), !names.is_empty()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(validation(
            "Give at most one of LoadBalancerArn, TargetGroupArns and Names.",
        ));
    }
    let mut resources: Vec<&str> = arns.iter().map(String::as_str).collect();
    resources.extend(lb_arn);
    authorize(ctx, "DescribeTargetGroups", &resources)?;
    let config = Config::read(ctx)?;
    let found: Vec<TargetGroup> = if let Some(lb_arn) = lb_arn {
        super::load_balancers::existing(ctx, &config, lb_arn)?;
        config
            .target_groups
            .iter()
            .filter(|g| config.load_balancers_using(&g.arn).contains(lb_arn))
            .cloned()
            .collect()
    } else if !arns.is_empty() {
        arns.iter()
            .map(|arn| existing(ctx, &config, arn).cloned())
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|name| {
                config
                    .target_groups
                    .iter()
                    .find(|g| &g.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::new(
                            "TargetGroupNotFound",
                            format!("Target groups '[{name}]' not found"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?
    } else {
        config.target_groups.clone()
    };
    let (found, marker) = page(request, found, |g| g.name.clone())?;
    let mut xml = Xml::new();
    write_target_groups(&mut xml, &config, &found);
    xml.optional("NextMarker", marker.as_deref());
    Ok(Some(xml))
}

fn target_group_arn(request: &QueryRequest) -> Result<&str, ApiError> {
    request
        .get("TargetGroupArn")
        .ok_or_else(|| missing("targetGroupArn"))
}

/// ModifyTargetGroup: changes the health check settings given.
pub(super) async fn modify(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    authorize(ctx, "ModifyTargetGroup", &[arn])?;
    let (config, group) = write(ctx, |config| {
        let mut group = existing(ctx, config, arn)?.clone();
        let protocol = group.protocol.clone();
        apply_health_check(request, &protocol, &mut group.health_check)?;
        Ok((
            Txn::new().put(group.key(), encode(&group)),
            (config.clone(), group),
        ))
    })
    .await?;
    let mut xml = Xml::new();
    write_target_groups(&mut xml, &config, &[group]);
    Ok(Some(xml))
}

/// DeleteTargetGroup: refused while a listener or rule forwards to the group; a group that
/// does not exist is no error (as on AWS).
pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    arn_parts(ctx, arn, "targetgroup", 2, "target group")?;
    authorize(ctx, "DeleteTargetGroup", &[arn])?;
    write(ctx, |config| {
        let Some(group) = config.target_group(arn) else {
            return Ok((Txn::new(), ()));
        };
        if let Some(user) = config.load_balancers_using(arn).into_iter().next() {
            return Err(ApiError::new(
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule of load balancer '{user}'"),
            ));
        }
        Ok((Txn::new().delete(group.key()), ()))
    })
    .await?;
    ctx.elb_health.retain(|(group, _, _)| group != arn);
    Ok(Some(Xml::new()))
}

/// DescribeTargetGroupAttributes: every attribute with its value.
pub(super) fn describe_attributes(
    ctx: &Ctx,
    request: &QueryRequest,
) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    authorize(ctx, "DescribeTargetGroupAttributes", &[arn])?;
    let config = Config::read(ctx)?;
    let group = existing(ctx, &config, arn)?;
    let mut xml = Xml::new();
    write_attributes(&mut xml, &group.attributes);
    Ok(Some(xml))
}

/// ModifyTargetGroupAttributes: sets the attributes given (all checked before any is); the
/// answer has them all.
pub(super) async fn modify_attributes(
    ctx: &Ctx,
    request: &QueryRequest,
) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    let changes = attribute_changes(request)?;
    authorize(ctx, "ModifyTargetGroupAttributes", &[arn])?;
    let group = write(ctx, |config| {
        let mut group = existing(ctx, config, arn)?.clone();
        for (key, value) in &changes {
            check_attribute(&group, key, value)?;
            group.attributes.insert(key.clone(), value.clone());
        }
        let attribute = |k: &str| group.attributes.get(k).map(String::as_str);
        if attribute("load_balancing.algorithm.type") == Some("least_outstanding_requests")
            && attribute("slow_start.duration_seconds").is_some_and(|s| s != "0")
        {
            return Err(invalid_configuration(
                "Slow start cannot be combined with the least_outstanding_requests algorithm.",
            ));
        }
        if attribute("stickiness.enabled") == Some("true")
            && attribute("stickiness.type") == Some("app_cookie")
            && attribute("stickiness.app_cookie.cookie_name").is_none_or(str::is_empty)
        {
            return Err(validation(
                "The stickiness.app_cookie.cookie_name attribute must name the application's cookie when app_cookie stickiness is enabled.",
            ));
        }
        Ok((Txn::new().put(group.key(), encode(&group)), group))
    })
    .await?;
    let mut xml = Xml::new();
    write_attributes(&mut xml, &group.attributes);
    Ok(Some(xml))
}
