//! The actions of listeners and rules (forward, fixed-response, redirect) and the conditions of
//! rules (path-pattern, host-header): read from a request, checked against the load balancer
//! and its target groups, and written as ELB's XML. Berth supports no authenticate actions
//! and no header, method, query-string or source-ip conditions: they are refused by name.

use super::model::{
    Action, ActionKind, Condition, Config, ForwardStickiness, LoadBalancer, WeightedTargetGroup,
};
use super::{boolean, has_sub, integer_in, missing, sub, sub_members, sub_strings, Fields};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::Xml;

/// The most target groups one forward action may send to.
const MAX_FORWARD_GROUPS: usize = 5;
/// The most condition values a rule may have in all.
const MAX_CONDITION_VALUES: usize = 5;
/// Content types a fixed response may have.
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

fn invalid_action(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidLoadBalancerAction", message)
}

fn validation(message: impl Into<String>) -> ApiError {
    super::validation(message)
}

/// The actions `items` (a request's `Actions` or `DefaultActions`, named `at`) for a listener
/// of `lb`: one forward, fixed-response or redirect action, its target groups existing, of the
/// listener's protocol and forwarded to by no other load balancer.
pub(super) fn parse_actions(
    ctx: &Ctx,
    config: &Config,
    lb: &LoadBalancer,
    items: &[Fields],
    at: &str,
) -> Result<Vec<Action>, ApiError> {
    if items.is_empty() {
        return Err(missing(at));
    }
    if items.len() > 1 {
        return Err(invalid_action(
            "Give exactly one forward, redirect or fixed-response action: Berth supports no authenticate actions to come before it.",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, fields)| parse_action(ctx, config, lb, fields, &format!("{at}.member.{}", i + 1)))
        .collect()
}

fn parse_action(
    ctx: &Ctx,
    config: &Config,
    lb: &LoadBalancer,
    fields: &Fields,
    at: &str,
) -> Result<Action, ApiError> {
    let kind = fields
        .get("Type")
        .ok_or_else(|| missing(&format!("{at}.type")))?;
    let order = integer_in(
        fields.get("Order").map(String::as_str),
        &format!("{at}.order"),
        1..=50_000,
    )?
    .unwrap_or(1) as u32;
    if lb.kind == "network" && kind != "forward" {
        return Err(invalid_action(format!(
            "Listeners of network load balancers support forward actions only, not {kind}."
        )));
    }
    let kind = match kind.as_str() {
        "forward" => parse_forward(ctx, config, lb, fields)?,
        "fixed-response" => parse_fixed_response(fields)?,
        "redirect" => parse_redirect(fields)?,
        "authenticate-oidc" | "authenticate-cognito" | "jwt-validation" => {
            return Err(invalid_action(format!(
                "Berth does not support {kind} actions: use forward, redirect or fixed-response."
            )))
        }
        other => {
            return Err(validation(format!(
                "The action type '{other}' is not valid: use forward, redirect or fixed-response."
            )))
        }
    };
    Ok(Action { order, kind })
}

fn parse_forward(
    ctx: &Ctx,
    config: &Config,
    lb: &LoadBalancer,
    fields: &Fields,
) -> Result<ActionKind, ApiError> {
    let single = fields.get("TargetGroupArn");
    let forward = sub(fields, "ForwardConfig");
    let mut groups = Vec::new();
    for (i, tuple) in sub_members(&forward, "TargetGroups").iter().enumerate() {
        let arn = tuple.get("TargetGroupArn").ok_or_else(|| {
            missing(&format!(
                "forwardConfig.targetGroups.member.{}.targetGroupArn",
                i + 1
            ))
        })?;
        let weight = integer_in(tuple.get("Weight").map(String::as_str), "weight", 0..=999)?
            .unwrap_or(1) as u32;
        if groups
            .iter()
            .any(|g: &WeightedTargetGroup| &g.target_group_arn == arn)
        {
            return Err(validation(format!(
                "The target group '{arn}' is given more than once in a forward action."
            )));
        }
        groups.push(WeightedTargetGroup {
            target_group_arn: arn.clone(),
            weight,
        });
    }
    match (single, groups.is_empty()) {
        (None, true) => {
            return Err(validation(
                "A forward action needs a TargetGroupArn or ForwardConfig.TargetGroups.",
            ))
        }
        (Some(arn), true) => groups.push(WeightedTargetGroup {
            target_group_arn: arn.clone(),
            weight: 1,
        }),
        (Some(arn), false) => {
            if groups.len() != 1 || &groups[0].target_group_arn != arn {
                return Err(validation(
                    "When a forward action has both TargetGroupArn and ForwardConfig, ForwardConfig must name that one target group only.",
                ));
            }
        }
        (None, false) => {}
    }
    if groups.len() > MAX_FORWARD_GROUPS {
        return Err(validation(format!(
            "A forward action can send to at most {MAX_FORWARD_GROUPS} target groups."
        )));
    }
    let wanted_protocol = if lb.kind == "network" { "TCP" } else { "HTTP" };
    for weighted in &groups {
        let arn = &weighted.target_group_arn;
        let group = super::target_groups::existing(ctx, config, arn)?;
        if group.protocol != wanted_protocol {
            return Err(ApiError::new(
                "IncompatibleProtocols",
                format!(
                    "The target group '{}' has the protocol {}, which {} load balancers cannot forward to: use a {wanted_protocol} target group.",
                    group.name, group.protocol, lb.kind
                ),
            ));
        }
        if let Some(other) = config
            .load_balancers_using(arn)
            .into_iter()
            .find(|user| user != &lb.arn)
        {
            return Err(ApiError::new(
                "TargetGroupAssociationLimit",
                format!("The target group '{}' is already used by load balancer '{other}': a target group can be associated with one load balancer only.", group.name),
            ));
        }
    }
    let sticky = sub(&forward, "TargetGroupStickinessConfig");
    let enabled = boolean(sticky.get("Enabled").map(String::as_str), "Enabled")?.unwrap_or(false);
    let duration = integer_in(
        sticky.get("DurationSeconds").map(String::as_str),
        "durationSeconds",
        1..=604_800,
    )?
    .map(|d| d as u32);
    if enabled && duration.is_none() {
        return Err(validation(
            "Target group stickiness needs DurationSeconds (1 to 604800) when enabled.",
        ));
    }
    Ok(ActionKind::Forward {
        target_groups: groups,
        stickiness: ForwardStickiness {
            enabled,
            duration_seconds: if enabled { duration } else { None },
        },
    })
}

fn parse_fixed_response(fields: &Fields) -> Result<ActionKind, ApiError> {
    if !has_sub(fields, "FixedResponseConfig") {
        return Err(validation(
            "A fixed-response action needs a FixedResponseConfig.",
        ));
    }
    let config = sub(fields, "FixedResponseConfig");
    let status = config
        .get("StatusCode")
        .ok_or_else(|| missing("fixedResponseConfig.statusCode"))?;
    let valid_status = status.len() == 3
        && status.starts_with(['2', '4', '5'])
        && status.bytes().all(|b| b.is_ascii_digit());
    if !valid_status {
        return Err(validation(format!(
            "The fixed response status code '{status}' is not valid: use a 2XX, 4XX or 5XX code."
        )));
    }
    let content_type = config.get("ContentType").cloned();
    if let Some(t) = &content_type {
        if !CONTENT_TYPES.contains(&t.as_str()) {
            return Err(validation(format!(
                "The fixed response content type '{t}' is not valid: use {}.",
                CONTENT_TYPES.join(", ")
            )));
        }
    }
    let body = config.get("MessageBody").cloned();
    if body.as_ref().is_some_and(|b| b.len() > 1024) {
        return Err(validation(
            "A fixed response message body can be at most 1024 characters long.",
        ));
    }
    Ok(ActionKind::FixedResponse {
        status_code: status.clone(),
        content_type,
        message_body: body,
    })
}

fn parse_redirect(fields: &Fields) -> Result<ActionKind, ApiError> {
    if !has_sub(fields, "RedirectConfig") {
        return Err(validation("A redirect action needs a RedirectConfig."));
    }
    let config = sub(fields, "RedirectConfig");
    let get = |name: &str, default: &str| {
        config
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let status = config
        .get("StatusCode")
        .ok_or_else(|| missing("redirectConfig.statusCode"))?;
    if !["HTTP_301", "HTTP_302"].contains(&status.as_str()) {
        return Err(validation(format!(
            "The redirect status code '{status}' is not valid: use HTTP_301 or HTTP_302."
        )));
    }
    let protocol = get("Protocol", "#{protocol}");
    if !["HTTP", "HTTPS", "#{protocol}"].contains(&protocol.as_str()) {
        return Err(validation(format!(
            "The redirect protocol '{protocol}' is not valid: use HTTP, HTTPS or #{{protocol}}."
        )));
    }
    let port = get("Port", "#{port}");
    if port != "#{port}" && !port.parse::<u16>().is_ok_and(|p| p >= 1) {
        return Err(validation(format!(
            "The redirect port '{port}' is not valid: use a port from 1 to 65535 or #{{port}}."
        )));
    }
    let host = get("Host", "#{host}");
    if host.is_empty() || host.len() > 128 {
        return Err(validation(
            "The redirect host must be 1 to 128 characters long.",
        ));
    }
    let path = get("Path", "/#{path}");
    if !path.starts_with('/') || path.len() > 128 {
        return Err(validation(format!(
            "The redirect path '{path}' is not valid: it must begin with '/' and be at most 128 characters long."
        )));
    }
    let query = get("Query", "#{query}");
    if query.len() > 128 {
        return Err(validation(
            "The redirect query can be at most 128 characters long.",
        ));
    }
    let to_itself = protocol == "#{protocol}"
        && port == "#{port}"
        && host == "#{host}"
        && path == "/#{path}"
        && query == "#{query}";
    if to_itself {
        return Err(invalid_action(
            "This redirect would send requests back to where they came from: change at least one of the protocol, port, host, path or query.",
        ));
    }
    Ok(ActionKind::Redirect {
        protocol,
        port,
        host,
        path,
        query,
        status_code: status.clone(),
    })
}

/// `<name>` with `actions` as ELB describes them.
pub(super) fn write_actions(xml: &mut Xml, name: &str, actions: &[Action]) {
    xml.list(name, actions, |xml, action| match &action.kind {
        ActionKind::Forward {
            target_groups,
            stickiness,
        } => {
            xml.field("Type", "forward");
            if let [only] = target_groups.as_slice() {
                xml.field("TargetGroupArn", &only.target_group_arn);
            }
            xml.field("Order", &action.order.to_string());
            xml.nest("ForwardConfig", |xml| {
                xml.list("TargetGroups", target_groups, |xml, group| {
                    xml.field("TargetGroupArn", &group.target_group_arn)
                        .field("Weight", &group.weight.to_string());
                });
                xml.nest("TargetGroupStickinessConfig", |xml| {
                    xml.field("Enabled", if stickiness.enabled { "true" } else { "false" });
                    if let Some(d) = stickiness.duration_seconds {
                        xml.field("DurationSeconds", &d.to_string());
                    }
                });
            });
        }
        ActionKind::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => {
            xml.field("Type", "fixed-response")
                .field("Order", &action.order.to_string())
                .nest("FixedResponseConfig", |xml| {
                    xml.optional("MessageBody", message_body.as_deref())
                        .field("StatusCode", status_code)
                        .optional("ContentType", content_type.as_deref());
                });
        }
        ActionKind::Redirect {
            protocol,
            port,
            host,
            path,
            query,
            status_code,
        } => {
            xml.field("Type", "redirect")
                .field("Order", &action.order.to_string())
                .nest("RedirectConfig", |xml| {
                    xml.field("Protocol", protocol)
                        .field("Port", port)
                        .field("Host", host)
                        .field("Path", path)
                        .field("Query", query)
                        .field("StatusCode", status_code);
                });
        }
    });
}

/// Checks one condition value of `field`: at most 128 characters of those ELB allows.
fn check_value(field: &str, value: &str) -> Result<(), ApiError> {
    let allowed = |c: char| match field {
        "host-header" => c.is_ascii_alphanumeric() || "-.*?".contains(c),
        _ => c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(c),
    };
    if value.is_empty() || value.len() > 128 || !value.chars().all(allowed) {
        let chars = if field == "host-header" {
            "A-Z, a-z, 0-9, - . * ?"
        } else {
            "A-Z, a-z, 0-9, _ - . $ / ~ \" ' @ : + & * ?"
        };
        return Err(validation(format!(
            "The {field} condition value '{value}' is not valid: it must be 1 to 128 characters of {chars}."
        )));
    }
    Ok(())
}

/// The conditions `items` of a rule (a request's `Conditions`): path-pattern and host-header,
/// each at most once, with at most five values in all.
pub(super) fn parse_conditions(items: &[Fields]) -> Result<Vec<Condition>, ApiError> {
    if items.is_empty() {
        return Err(missing("conditions"));
    }
    let mut conditions: Vec<Condition> = Vec::new();
    for (i, fields) in items.iter().enumerate() {
        let field = fields
            .get("Field")
            .ok_or_else(|| missing(&format!("conditions.member.{}.field", i + 1)))?;
        let config_name = match field.as_str() {
            "path-pattern" => "PathPatternConfig",
            "host-header" => "HostHeaderConfig",
            "http-header" | "http-request-method" | "query-string" | "source-ip" => {
                return Err(validation(format!(
                    "Berth does not support {field} conditions: use path-pattern or host-header."
                )))
            }
            other => {
                return Err(validation(format!(
                    "The condition field '{other}' is not valid: use path-pattern or host-header."
                )))
            }
        };
        let foreign = [
            "PathPatternConfig",
            "HostHeaderConfig",
            "HttpHeaderConfig",
            "QueryStringConfig",
            "HttpRequestMethodConfig",
            "SourceIpConfig",
        ]
        .into_iter()
        .find(|name| *name != config_name && has_sub(fields, name));
        if let Some(name) = foreign {
            return Err(validation(format!(
                "A {field} condition cannot have a {name}."
            )));
        }
        let config = sub(fields, config_name);
        if has_sub(fields, "RegexValues") || has_sub(&config, "RegexValues") {
            return Err(validation(
                "Berth does not support regular expression conditions: give Values.",
            ));
        }
        let plain = sub_strings(fields, "Values");
        let configured = sub_strings(&config, "Values");
        let values = match (plain.is_empty(), configured.is_empty()) {
            (false, true) => plain,
            (true, false) => configured,
            (false, false) => {
                return Err(validation(format!(
                    "A {field} condition takes Values or {config_name}, not both."
                )))
            }
            (true, true) => {
                return Err(validation(format!(
                "A {field} condition needs at least one value (in Values or {config_name}.Values)."
            )))
            }
        };
        for value in &values {
            check_value(field, value)?;
        }
        if conditions.iter().any(|c| &c.field == field) {
            return Err(validation(format!(
                "A rule can have one {field} condition only: give it several values instead."
            )));
        }
        conditions.push(Condition {
            field: field.clone(),
            values,
        });
    }
    let total: usize = conditions.iter().map(|c| c.values.len()).sum();
    if total > MAX_CONDITION_VALUES {
        return Err(validation(format!(
            "A rule can have at most {MAX_CONDITION_VALUES} condition values in all; this one has {total}."
        )));
    }
    Ok(conditions)
}

/// `<Conditions>` as ELB describes them: `Values` and the field's own config.
pub(super) fn write_conditions(xml: &mut Xml, conditions: &[Condition]) {
    xml.list("Conditions", conditions, |xml, condition| {
        let config = if condition.field == "host-header" {
            "HostHeaderConfig"
        } else {
            "PathPatternConfig"
        };
        let values = |xml: &mut Xml| {
            xml.list("Values", &condition.values, |xml, v| {
                xml.text(v);
            });
        };
        xml.field("Field", &condition.field);
        values(xml);
        xml.nest(config, values);
    });
}
