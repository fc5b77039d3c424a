//! Elastic Load Balancing v2, served on the ECS endpoint over the query protocol (XML
//! answers) so `aws elbv2` and boto3's `elbv2` client work unchanged. One file per resource:
//! [`load_balancers`], [`target_groups`], [`listeners`], [`rules`], [`targets`] (registration
//! and health), [`tags`]; [`actions`] reads and writes the actions and conditions listeners and
//! rules share; [`model`] is what the store keeps. [`proxy`] is the data plane that serves the
//! listeners; [`health`] is where its health checks leave what DescribeTargetHealth reports.
//!
//! Berth has no VPC: subnets and security groups are accepted and echoed, each subnet given is
//! a zone of its own (`{region}a`, `{region}b`, ...), and a load balancer given none is in
//! `{region}a` on a synthetic subnet. Berth serves HTTP and TCP: HTTPS, TLS, UDP and the other
//! protocols are refused with a message saying so rather than stored and never served.

pub mod actions;
pub mod dataplane;
pub mod health;
pub mod listeners;
pub mod load_balancers;
pub mod model;
pub mod proxy;
pub mod rules;
pub mod service_targets;
pub mod tags;
pub mod target_groups;
pub mod targets;
#[cfg(test)]
mod tests;

pub use model::{draining_expired, sweep_drained};

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use std::collections::BTreeMap;

/// XML namespace of ELBv2 answers.
pub const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// Actions of the API that Berth does not implement (certificates, trust stores, capacity
/// reservations, ...): refused by name rather than as unknown.
const UNSUPPORTED: &[&str] = &[
    "AddListenerCertificates",
    "AddTrustStoreRevocations",
    "CreateTrustStore",
    "DeleteSharedTrustStoreAssociation",
    "DeleteTrustStore",
    "DescribeAccountLimits",
    "DescribeCapacityReservation",
    "DescribeListenerAttributes",
    "DescribeListenerCertificates",
    "DescribeSSLPolicies",
    "DescribeTrustStoreAssociations",
    "DescribeTrustStoreRevocations",
    "DescribeTrustStores",
    "GetResourcePolicy",
    "GetTrustStoreCaCertificatesBundle",
    "GetTrustStoreRevocationContent",
    "ModifyCapacityReservation",
    "ModifyIpPools",
    "ModifyListenerAttributes",
    "ModifyTrustStore",
    "RemoveListenerCertificates",
    "RemoveTrustStoreRevocations",
    "SetIpAddressType",
    "SetSecurityGroups",
    "SetSubnets",
];

/// Runs ELBv2 action `request.action`; the XML of its result, if it has one. Each handler
/// authorises `elasticloadbalancing:<Action>` on the ARNs it acts on.
pub async fn dispatch(ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    let r = &request;
    let c = &ctx;
    match request.action.as_str() {
        "CreateLoadBalancer" => load_balancers::create(c, r).await,
        "DescribeLoadBalancers" => load_balancers::describe(c, r),
        "DeleteLoadBalancer" => load_balancers::delete(c, r).await,
        "DescribeLoadBalancerAttributes" => load_balancers::describe_attributes(c, r),
        "ModifyLoadBalancerAttributes" => load_balancers::modify_attributes(c, r).await,
        "CreateTargetGroup" => target_groups::create(c, r).await,
        "DescribeTargetGroups" => target_groups::describe(c, r),
        "ModifyTargetGroup" => target_groups::modify(c, r).await,
        "DeleteTargetGroup" => target_groups::delete(c, r).await,
        "DescribeTargetGroupAttributes" => target_groups::describe_attributes(c, r),
        "ModifyTargetGroupAttributes" => target_groups::modify_attributes(c, r).await,
        "CreateListener" => listeners::create(c, r).await,
        "DescribeListeners" => listeners::describe(c, r),
        "ModifyListener" => listeners::modify(c, r).await,
        "DeleteListener" => listeners::delete(c, r).await,
        "CreateRule" => rules::create(c, r).await,
        "DescribeRules" => rules::describe(c, r),
        "ModifyRule" => rules::modify(c, r).await,
        "SetRulePriorities" => rules::set_priorities(c, r).await,
        "DeleteRule" => rules::delete(c, r).await,
        "RegisterTargets" => targets::register(c, r).await,
        "DeregisterTargets" => targets::deregister(c, r).await,
        "DescribeTargetHealth" => targets::describe_health(c, r),
        "AddTags" => tags::add(c, r).await,
        "RemoveTags" => tags::remove(c, r).await,
        "DescribeTags" => tags::describe(c, r),
        other if UNSUPPORTED.contains(&other) => Err(ApiError::new(
            "OperationNotPermitted",
            format!("Berth does not support {other}: it serves HTTP and TCP listeners without certificates, trust stores or VPC settings."),
        )),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

/// Checks `elasticloadbalancing:<action>` on each of `resources` (`*` when none) for the
/// caller, or `AccessDenied`.
fn authorize(ctx: &Ctx, action: &str, resources: &[&str]) -> Result<(), ApiError> {
    let action = format!("elasticloadbalancing:{action}");
    let all = ["*"];
    let resources = if resources.is_empty() {
        &all[..]
    } else {
        resources
    };
    for resource in resources {
        crate::authz::authorize_as(ctx, &action, resource, &Vec::new(), "AccessDenied")?;
    }
    Ok(())
}

/// ELB's `ValidationError`.
fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

/// ELB's `InvalidConfigurationRequest`.
fn invalid_configuration(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidConfigurationRequest", message)
}

/// A `ValidationError` for a required parameter that is missing.
fn missing(name: &str) -> ApiError {
    validation(format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"))
}

/// The `Attributes` list of a load balancer's or target group's attributes answer.
fn write_attributes(xml: &mut Xml, attributes: &BTreeMap<String, String>) {
    let pairs: Vec<(&String, &String)> = attributes.iter().collect();
    xml.list("Attributes", &pairs, |xml, (key, value)| {
        xml.field("Key", key).field("Value", value);
    });
}

/// The `(key, value)` pairs of a Modify...Attributes request; none is a ValidationError.
fn attribute_changes(request: &QueryRequest) -> Result<Vec<(String, String)>, ApiError> {
    let changes: Vec<(String, String)> = request
        .structures("Attributes")
        .into_iter()
        .map(|a| {
            (
                a.get("Key").cloned().unwrap_or_default(),
                a.get("Value").cloned().unwrap_or_default(),
            )
        })
        .collect();
    if changes.is_empty() {
        return Err(missing("attributes"));
    }
    Ok(changes)
}

/// The fields of one structure of a query request (`Field`, `Sub.Field`,
/// `List.member.N.Field`), as [`QueryRequest::structures`] gives them.
type Fields = BTreeMap<String, String>;

/// The fields of sub-structure `name` of `fields`.
fn sub(fields: &Fields, name: &str) -> Fields {
    let prefix = format!("{name}.");
    fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// Whether sub-structure `name` of `fields` was given at all.
fn has_sub(fields: &Fields, name: &str) -> bool {
    let prefix = format!("{name}.");
    fields.keys().any(|k| k.starts_with(&prefix))
}

/// The structures of list `name` of `fields` (`name.member.N.Field`), in N order.
fn sub_members(fields: &Fields, name: &str) -> Vec<Fields> {
    crate::protocol::query::members(fields, name)
}

/// ELB's rule for the names of load balancers and target groups (`what`): at most 32
/// alphanumerics and hyphens, not starting or ending with a hyphen.
fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "The {what} name '{name}' is not valid: it must be 1 to 32 alphanumeric characters or hyphens and must not begin or end with a hyphen."
        )))
    }
}

/// The strings of list `name` of `fields` (`name.member.N`), in N order.
fn sub_strings(fields: &Fields, name: &str) -> Vec<String> {
    let prefix = format!("{name}.member.");
    let mut items: BTreeMap<u32, String> = BTreeMap::new();
    for (key, value) in fields {
        if let Some(index) = key.strip_prefix(&prefix).and_then(|i| i.parse().ok()) {
            items.insert(index, value.clone());
        }
    }
    items.into_values().collect()
}

/// The strings of the request's list `name` (`name.member.N`), in N order.
fn strings(request: &QueryRequest, name: &str) -> Vec<String> {
    (1..)
        .map_while(|i| request.get(&format!("{name}.member.{i}")))
        .map(str::to_string)
        .collect()
}

/// A boolean parameter (`true` or `false`).
fn boolean(value: Option<&str>, name: &str) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(validation(format!(
            "The value '{v}' of {name} is not a boolean: use true or false."
        ))),
    }
}

/// An integer parameter that must lie in `range`.
fn integer_in(
    value: Option<&str>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ApiError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match text.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(validation(format!(
            "1 validation error detected: Value '{text}' at '{name}' failed to satisfy constraint: Member must have value between {} and {}",
            range.start(),
            range.end()
        ))),
    }
}

/// A port parameter (1 to 65535).
fn port(value: Option<&str>, name: &str) -> Result<Option<u16>, ApiError> {
    Ok(integer_in(value, name, 1..=65535)?.map(|p| p as u16))
}

/// One page of `items` (sorted by `key`) after `Marker`, at most `PageSize` (1–400, default
/// 400): the page, and the marker of the next one.
fn page<T>(
    request: &QueryRequest,
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = integer_in(request.get("PageSize"), "pageSize", 1..=400)?.unwrap_or(400) as usize;
    items.sort_by_key(&key);
    let after = request.get("Marker");
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| after.is_none_or(|m| key(item).as_str() > m))
        .collect();
    if rest.len() > size {
        rest.truncate(size);
        let marker = rest.last().map(&key);
        Ok((rest, marker))
    } else {
        Ok((rest, None))
    }
}

/// `n` random lowercase hexadecimal digits.
fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::server(format!("making an ELB id: {e}")))?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(n);
    Ok(hex)
}

/// `n` random decimal digits.
fn random_digits(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::server(format!("making an ELB id: {e}")))?;
    Ok(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

/// `arn:aws:elasticloadbalancing:{region}:{account}:` of this server.
fn arn_prefix(ctx: &Ctx) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        ctx.arns.region, ctx.arns.account_id
    )
}

/// The resource part of an ELBv2 ARN of kind `kind` (`loadbalancer`, `targetgroup`,
/// `listener`, `listener-rule`) split at `/`, if `arn` is one with `parts` parts after the
/// kind; a `ValidationError` naming what was expected otherwise.
fn arn_parts<'a>(
    ctx: &Ctx,
    arn: &'a str,
    kind: &str,
    parts: usize,
    what: &str,
) -> Result<Vec<&'a str>, ApiError> {
    let prefix = format!("{}{kind}/", arn_prefix(ctx));
    let found: Option<Vec<&str>> = arn
        .strip_prefix(&prefix)
        .map(|rest| rest.split('/').collect())
        .filter(|p: &Vec<&str>| p.len() == parts && p.iter().all(|s| !s.is_empty()));
    found.ok_or_else(|| validation(format!("'{arn}' is not a valid {what} ARN")))
}
