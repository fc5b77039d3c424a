//! Load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and their
//! attributes (DescribeLoadBalancerAttributes, ModifyLoadBalancerAttributes).
//!
//! Berth has no VPC: each subnet given (in `Subnets` or `SubnetMappings`) is a zone of its own,
//! `{region}a`, `{region}b`, ... in the order given, and a load balancer given no subnet is in
//! `{region}a` on the synthetic subnet [`SYNTHETIC_SUBNET`]. Security groups are echoed.

use super::model::{write, Config, LoadBalancer, Zone};
use super::tags::tags_of;
use super::{
    arn_parts, arn_prefix, attribute_changes, authorize, invalid_configuration, missing, page,
    random_digits, random_hex, strings, validation, write_attributes,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{timestamp, QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use std::collections::BTreeMap;

/// The VPC every load balancer is in: Berth has none, so one fixed id stands for it.
pub const SYNTHETIC_VPC: &str = "vpc-00000000000000000";
/// The subnet of a load balancer created without subnets.
pub const SYNTHETIC_SUBNET: &str = "subnet-00000000000000000";
/// Route 53 hosted zone of application load balancers in us-east-1.
const APPLICATION_ZONE_ID: &str = "Z35SXDOTRQ7X7K";
/// Route 53 hosted zone of network load balancers in us-east-1.
const NETWORK_ZONE_ID: &str = "Z26RNL4JYFTOTI";

/// `LoadBalancerNotFound` for `arn`.
pub(super) fn not_found(arn: &str) -> ApiError {
    ApiError::new(
        "LoadBalancerNotFound",
        format!("Load balancer '{arn}' not found"),
    )
}

/// Load balancer `arn` of `config`, or `LoadBalancerNotFound` (`ValidationError` for what is
/// not a load balancer ARN at all).
pub(super) fn existing<'a>(
    ctx: &Ctx,
    config: &'a Config,
    arn: &str,
) -> Result<&'a LoadBalancer, ApiError> {
    arn_parts(ctx, arn, "loadbalancer", 3, "load balancer")?;
    config.load_balancer(arn).ok_or_else(|| not_found(arn))
}

/// ELB's rule for load balancer names: at most 32 alphanumerics and hyphens, not starting or
/// ending with a hyphen, not starting with `internal-`.
fn check_name(name: &str) -> Result<(), ApiError> {
    super::check_name(name, "load balancer")?;
    if name.to_ascii_lowercase().starts_with("internal-") {
        return Err(validation(format!(
            "The load balancer name '{name}' is not valid: it must not begin with 'internal-'."
        )));
    }
    Ok(())
}

/// The attributes a new load balancer of type `kind` has, with ELB's defaults.
fn default_attributes(kind: &str) -> BTreeMap<String, String> {
    let common = [
        ("deletion_protection.enabled", "false"),
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("zonal_shift.config.enabled", "false"),
    ];
    let application = [
        ("load_balancing.cross_zone.enabled", "true"),
        ("idle_timeout.timeout_seconds", "60"),
        ("client_keep_alive.seconds", "3600"),
        ("routing.http2.enabled", "true"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http.preserve_host_header.enabled", "false"),
        ("routing.http.xff_client_port.enabled", "false"),
        ("routing.http.xff_header_processing.mode", "append"),
        ("routing.http.desync_mitigation_mode", "defensive"),
        ("waf.fail_open.enabled", "false"),
    ];
    let network = [
        ("load_balancing.cross_zone.enabled", "false"),
        ("dns_record.client_routing_policy", "any_availability_zone"),
    ];
    let specific: &[(&str, &str)] = if kind == "network" {
        &network
    } else {
        &application
    };
    common
        .iter()
        .chain(specific)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks `value` for attribute `key` of a load balancer of type `kind`.
fn check_attribute(kind: &str, key: &str, value: &str) -> Result<(), ApiError> {
    let bad = |what: &str| {
        validation(format!(
            "The value '{value}' of load balancer attribute '{key}' is not valid: {what}."
        ))
    };
    let in_range = |lo: i64, hi: i64| {
        value
            .parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .map(|_| ())
            .ok_or_else(|| bad(&format!("it must be an integer from {lo} to {hi}")))
    };
    if !default_attributes(kind).contains_key(key) {
        return Err(validation(format!(
            "'{key}' is not an attribute of {kind} load balancers that Berth supports."
        )));
    }
    match key {
        "idle_timeout.timeout_seconds" => in_range(1, 4000),
        "client_keep_alive.seconds" => in_range(60, 604_800),
        "routing.http.xff_header_processing.mode" => match value {
            "append" => Ok(()),
            "preserve" | "remove" => Err(invalid_configuration(
                "Berth's load balancers append to X-Forwarded-For: 'append' is the only \
                 routing.http.xff_header_processing.mode they support yet.",
            )),
            _ => Err(bad("use append, preserve or remove")),
        },
        "routing.http.desync_mitigation_mode" => ["monitor", "defensive", "strictest"]
            .contains(&value)
            .then_some(())
            .ok_or_else(|| bad("use monitor, defensive or strictest")),
        "dns_record.client_routing_policy" => [
            "availability_zone_affinity",
            "partial_availability_zone_affinity",
            "any_availability_zone",
        ]
        .contains(&value)
        .then_some(())
        .ok_or_else(|| {
            bad("use availability_zone_affinity, partial_availability_zone_affinity or any_availability_zone")
        }),
        "load_balancing.cross_zone.enabled" if kind == "application" && value != "true" => {
            Err(invalid_configuration(
                "Cross-zone load balancing is always on for application load balancers.",
            ))
        }
        "access_logs.s3.bucket" | "access_logs.s3.prefix" => Ok(()),
        // Accepted only where Berth does what they say, so nothing is set and silently ignored.
        "access_logs.s3.enabled" | "connection_logs.s3.enabled" | "routing.http.xff_client_port.enabled"
            if value == "true" =>
        {
            Err(invalid_configuration(format!(
                "Berth does not support '{key}' = true yet: its load balancers write no logs to S3 \
                 and add no client port to X-Forwarded-For."
            )))
        }

        _ if key.ends_with(".enabled") => ["true", "false"]
            .contains(&value)
            .then_some(())
            .ok_or_else(|| bad("use true or false")),
        _ => Ok(()),
    }
}

/// What of a load balancer its creation settles; CreateLoadBalancer with the same name and
/// these answers the existing one, as ELB's idempotent create does.
fn same_settings(a: &LoadBalancer, b: &LoadBalancer) -> bool {
    a.kind == b.kind
        && a.scheme == b.scheme
        && a.ip_address_type == b.ip_address_type
        && a.zones == b.zones
        && a.security_groups == b.security_groups
}

pub(super) fn write_load_balancer(xml: &mut Xml, lb: &LoadBalancer) {
    xml.field("LoadBalancerArn", &lb.arn)
        .field("DNSName", &lb.dns_name)
        .field("CanonicalHostedZoneId", &lb.canonical_hosted_zone_id)
        .field("CreatedTime", &timestamp(lb.created))
        .field("LoadBalancerName", &lb.name)
        .field("Scheme", &lb.scheme)
        .field("VpcId", &lb.vpc_id)
        .nest("State", |xml| {
            xml.field("Code", "active");
        })
        .field("Type", &lb.kind)
        .list("AvailabilityZones", &lb.zones, |xml, zone| {
            xml.field("ZoneName", &zone.zone_name)
                .field("SubnetId", &zone.subnet_id);
        });
    if !lb.security_groups.is_empty() {
        xml.list("SecurityGroups", &lb.security_groups, |xml, group| {
            xml.text(group);
        });
    }
    xml.field("IpAddressType", &lb.ip_address_type);
}

/// CreateLoadBalancer: an application (default) or network load balancer, active at once.
pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.get("Name").ok_or_else(|| missing("name"))?;
    check_name(name)?;
    let kind = request.get("Type").unwrap_or("application");
    let (type_segment, zone_id) =
        match kind {
            "application" => ("app", APPLICATION_ZONE_ID),
            "network" => ("net", NETWORK_ZONE_ID),
            "gateway" => return Err(validation(
                "Berth does not support gateway load balancers: use Type application or network.",
            )),
            other => {
                return Err(validation(format!(
                    "The load balancer type '{other}' is not valid: use application or network."
                )))
            }
        };
    let scheme = request.get("Scheme").unwrap_or("internet-facing");
    if !["internet-facing", "internal"].contains(&scheme) {
        return Err(validation(format!(
            "The scheme '{scheme}' is not valid: use internet-facing or internal."
        )));
    }
    let ip_address_type = request.get("IpAddressType").unwrap_or("ipv4");
    if ip_address_type != "ipv4" {
        return Err(validation(format!(
            "Berth's load balancers serve IPv4 only: IpAddressType '{ip_address_type}' is not supported, use ipv4."
        )));
    }
    let mut subnets = strings(request, "Subnets");
    let mappings = request.structures("SubnetMappings");
    if !subnets.is_empty() && !mappings.is_empty() {
        return Err(validation(
            "Give either Subnets or SubnetMappings, not both.",
        ));
    }
    for (i, mapping) in mappings.iter().enumerate() {
        let subnet = mapping
            .get("SubnetId")
            .ok_or_else(|| missing(&format!("subnetMappings.member.{}.subnetId", i + 1)))?;
        subnets.push(subnet.clone());
    }
    if subnets
        .iter()
        .enumerate()
        .any(|(i, s)| subnets[..i].contains(s))
    {
        return Err(validation("A subnet is given more than once."));
    }
    let zones: Vec<Zone> = if subnets.is_empty() {
        vec![Zone {
            zone_name: format!("{}a", ctx.arns.region),
            subnet_id: SYNTHETIC_SUBNET.to_string(),
        }]
    } else {
        if subnets.len() > 26 {
            return Err(validation("A load balancer can be in at most 26 subnets."));
        }
        subnets
            .into_iter()
            .zip(b'a'..=b'z')
            .map(|(subnet_id, letter)| Zone {
                zone_name: format!("{}{}", ctx.arns.region, char::from(letter)),
                subnet_id,
            })
            .collect()
    };
    let tags = tags_of(request)?;
    let arn = format!(
        "{}loadbalancer/{type_segment}/{name}/{}",
        arn_prefix(ctx),
        random_hex(16)?
    );
    authorize(ctx, "CreateLoadBalancer", &[&arn])?;
    let lb = LoadBalancer {
        arn,
        name: name.to_string(),
        kind: kind.to_string(),
        scheme: scheme.to_string(),
        ip_address_type: ip_address_type.to_string(),
        dns_name: format!(
            "{name}-{}.{}.elb.localhost",
            random_digits(10)?,
            ctx.arns.region
        ),
        canonical_hosted_zone_id: zone_id.to_string(),
        vpc_id: SYNTHETIC_VPC.to_string(),
        zones,
        security_groups: strings(request, "SecurityGroups"),
        created: ctx.now().floor(),
        attributes: default_attributes(kind),
        tags,
    };
    let made = write(ctx, |config| {
        let key = lb.key();
        match config.load_balancers.iter().find(|old| old.name == lb.name) {
            Some(old) if same_settings(old, &lb) => Ok((Txn::new(), old.clone())),
            Some(_) => Err(ApiError::new(
                "DuplicateLoadBalancerName",
                format!("A load balancer with the name '{name}' already exists."),
            )),
            None => Ok((
                Txn::new()
                    .when(Compare::absent(&key))
                    .put(&key, encode(&lb)),
                lb.clone(),
            )),
        }
    })
    .await?;
    let mut xml = Xml::new();
    xml.list("LoadBalancers", &[made], write_load_balancer);
    Ok(Some(xml))
}

/// DescribeLoadBalancers: those named by `LoadBalancerArns` or `Names` (each must exist), or
/// all, a page at a time.
pub(super) fn describe(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arns = strings(request, "LoadBalancerArns");
    let names = strings(request, "Names");
    if !arns.is_empty() && !names.is_empty() {
        return Err(validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    authorize(
        ctx,
        "DescribeLoadBalancers",
        &arns.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let config = Config::read(ctx)?;
    let found: Vec<LoadBalancer> = if !arns.is_empty() {
        arns.iter()
            .map(|arn| existing(ctx, &config, arn).cloned())
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|name| {
                config
                    .load_balancers
                    .iter()
                    .find(|lb| &lb.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::new(
                            "LoadBalancerNotFound",
                            format!("Load balancers '[{name}]' not found"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?
    } else {
        config.load_balancers.clone()
    };
    let (found, marker) = page(request, found, |lb| lb.name.clone())?;
    let mut xml = Xml::new();
    xml.list("LoadBalancers", &found, write_load_balancer);
    xml.optional("NextMarker", marker.as_deref());
    Ok(Some(xml))
}

/// DeleteLoadBalancer: the load balancer, its listeners and their rules. A load balancer that
/// does not exist is no error (as on AWS); one with deletion protection on is not deleted.
pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = request
        .get("LoadBalancerArn")
        .ok_or_else(|| missing("loadBalancerArn"))?;
    arn_parts(ctx, arn, "loadbalancer", 3, "load balancer")?;
    authorize(ctx, "DeleteLoadBalancer", &[arn])?;
    write(ctx, |config| {
        let Some(lb) = config.load_balancer(arn) else {
            return Ok((Txn::new(), ()));
        };
        if lb.deletion_protected() {
            return Err(ApiError::new(
                "OperationNotPermitted",
                format!("Load balancer '{arn}' cannot be deleted because deletion protection is enabled"),
            ));
        }
        let mut txn = Txn::new().delete(lb.key());
        for listener in config.listeners_of(arn) {
            txn = txn.delete(listener.key());
        }
        Ok((txn, ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// DescribeLoadBalancerAttributes: every attribute with its value.
pub(super) fn describe_attributes(
    ctx: &Ctx,
    request: &QueryRequest,
) -> Result<Option<Xml>, ApiError> {
    let arn = request
        .get("LoadBalancerArn")
        .ok_or_else(|| missing("loadBalancerArn"))?;
    authorize(ctx, "DescribeLoadBalancerAttributes", &[arn])?;
    let config = Config::read(ctx)?;
    let lb = existing(ctx, &config, arn)?;
    let mut xml = Xml::new();
    write_attributes(&mut xml, &lb.attributes);
    Ok(Some(xml))
}

/// ModifyLoadBalancerAttributes: sets the attributes given (all checked before any is); the
/// answer has them all.
pub(super) async fn modify_attributes(
    ctx: &Ctx,
    request: &QueryRequest,
) -> Result<Option<Xml>, ApiError> {
    let arn = request
        .get("LoadBalancerArn")
        .ok_or_else(|| missing("loadBalancerArn"))?;
    let changes = attribute_changes(request)?;
    authorize(ctx, "ModifyLoadBalancerAttributes", &[arn])?;
    let lb = write(ctx, |config| {
        let mut lb = existing(ctx, config, arn)?.clone();
        for (key, value) in &changes {
            check_attribute(&lb.kind, key, value)?;
            lb.attributes.insert(key.clone(), value.clone());
        }
        Ok((Txn::new().put(lb.key(), encode(&lb)), lb))
    })
    .await?;
    let mut xml = Xml::new();
    write_attributes(&mut xml, &lb.attributes);
    Ok(Some(xml))
}
