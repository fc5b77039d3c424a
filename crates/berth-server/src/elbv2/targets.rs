//! The targets of a target group: RegisterTargets, DeregisterTargets, DescribeTargetHealth.
//! Registrations live in the target group's record. A deregistered target drains: it stays,
//! `draining`, until the group's deregistration delay has passed, then it is gone (hidden at
//! once, deleted from the store by [`super::model::sweep_drained`]).

use super::model::{write, Config, Target, TargetGroup};
use super::{authorize, missing, port, validation};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::Txn;

/// The most targets a group may have.
const MAX_TARGETS: usize = 1000;

/// A target as a request names it: its id and, if given, its port and zone.
struct Named {
    id: String,
    port: Option<u16>,
    availability_zone: Option<String>,
}

fn invalid_target(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidTarget", message)
}

/// The request's `Targets`, or none.
fn named_targets(request: &QueryRequest) -> Result<Vec<Named>, ApiError> {
    request
        .structures("Targets")
        .iter()
        .enumerate()
        .map(|(i, fields)| {
            let at = format!("targets.member.{}", i + 1);
            Ok(Named {
                id: fields
                    .get("Id")
                    .cloned()
                    .ok_or_else(|| missing(&format!("{at}.id")))?,
                port: port(
                    fields.get("Port").map(String::as_str),
                    &format!("{at}.port"),
                )?,
                availability_zone: fields.get("AvailabilityZone").cloned(),
            })
        })
        .collect()
}

/// Checks that `id` can be a target of `group`: an IPv4 address for ip targets, an instance
/// id (`i-...`, or Berth's `mi-...`) for instance targets.
fn check_id(group: &TargetGroup, id: &str) -> Result<(), ApiError> {
    if group.target_type == "ip" {
        if id.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(invalid_target(format!(
                "The target '{id}' is not valid: targets of target group '{}' are IPv4 addresses.",
                group.name
            )));
        }
        return Ok(());
    }
    let suffix = id.strip_prefix("i-").or_else(|| id.strip_prefix("mi-"));
    if !suffix.is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(invalid_target(format!(
            "The following targets are not valid instances: '{id}'. Targets of target group '{}' are instance ids.",
            group.name
        )));
    }
    Ok(())
}

fn target_group_arn(request: &QueryRequest) -> Result<&str, ApiError> {
    request
        .get("TargetGroupArn")
        .ok_or_else(|| missing("targetGroupArn"))
}

/// RegisterTargets: adds the targets (port: the group's unless given). A target registered
/// already stays as it is; one draining is registered again.
pub(super) async fn register(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    let named = named_targets(request)?;
    if named.is_empty() {
        return Err(missing("targets"));
    }
    authorize(ctx, "RegisterTargets", &[arn])?;
    let now = ctx.now();
    write(ctx, |config| {
        let mut group = super::target_groups::existing(ctx, config, arn)?.clone();
        let delay = group.deregistration_delay();
        // Registrations whose drain is over are gone, even if not swept yet.
        group
            .targets
            .retain(|t| !super::model::draining_expired(t, delay, now));
        for target in &named {
            check_id(&group, &target.id)?;
            if target.availability_zone.is_some() && group.target_type == "instance" {
                return Err(validation(
                    "An availability zone cannot be given for instance targets.",
                ));
            }
            let port = target.port.unwrap_or(group.port);
            match group
                .targets
                .iter_mut()
                .find(|t| t.id == target.id && t.port == port)
            {
                // Registered again while draining, it is the caller's now, not a task's.
                Some(existing) => {
                    if existing.draining_since.take().is_some() {
                        existing.owner = None;
                    }
                }
                None => group.targets.push(Target {
                    id: target.id.clone(),
                    port,
                    availability_zone: target.availability_zone.clone(),
                    draining_since: None,
                    owner: None,
                }),
            }
        }
        if group.targets.len() > MAX_TARGETS {
            return Err(ApiError::new(
                "TooManyTargets",
                format!("A target group can have at most {MAX_TARGETS} targets."),
            ));
        }
        Ok((Txn::new().put(group.key(), encode(&group)), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// DeregisterTargets: the targets start draining now; they are gone once the group's
/// deregistration delay has passed. Each must be registered.
pub(super) async fn deregister(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    let named = named_targets(request)?;
    if named.is_empty() {
        return Err(missing("targets"));
    }
    authorize(ctx, "DeregisterTargets", &[arn])?;
    let now = ctx.now();
    write(ctx, |config| {
        let mut group = super::target_groups::existing(ctx, config, arn)?.clone();
        let delay = group.deregistration_delay();
        for target in &named {
            let port = target.port.unwrap_or(group.port);
            let registered = group.targets.iter_mut().find(|t| {
                t.id == target.id
                    && t.port == port
                    && !super::model::draining_expired(t, delay, now)
            });
            match registered {
                Some(t) => {
                    t.draining_since.get_or_insert(now);
                }
                None => {
                    return Err(invalid_target(format!(
                        "The target '{}' on port {port} is not registered in target group '{}'.",
                        target.id, group.name
                    )))
                }
            }
        }
        Ok((Txn::new().put(group.key(), encode(&group)), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// One line of DescribeTargetHealth.
struct Health {
    id: String,
    port: u16,
    availability_zone: Option<String>,
    health_check_port: String,
    state: String,
    reason: Option<String>,
    description: Option<String>,
}

/// The health of `target` of `group`: draining, unused when no listener or rule forwards to
/// the group, else what the data plane's checks found (initial before the first).
fn health_of(ctx: &Ctx, group: &TargetGroup, in_use: bool, target: &Target) -> Health {
    let (state, reason, description) = if target.draining_since.is_some() {
        (
            "draining".to_string(),
            Some("Target.DeregistrationInProgress".to_string()),
            Some("Target deregistration is in progress".to_string()),
        )
    } else if !in_use {
        (
            "unused".to_string(),
            Some("Target.NotInUse".to_string()),
            Some(
                "Target group is not configured to receive traffic from the load balancer"
                    .to_string(),
            ),
        )
    } else {
        let key = (group.arn.clone(), target.id.clone(), target.port);
        match ctx.elb_health.get(&key) {
            Some(found) => (
                found.state.to_string(),
                found.reason.map(str::to_string),
                found.description,
            ),
            None => (
                "initial".to_string(),
                Some("Elb.RegistrationInProgress".to_string()),
                Some("Target registration is in progress".to_string()),
            ),
        }
    };
    Health {
        id: target.id.clone(),
        port: target.port,
        availability_zone: target.availability_zone.clone(),
        health_check_port: group.health_check.port_for(target.port).to_string(),
        state,
        reason,
        description,
    }
}

fn write_health(xml: &mut Xml, health: &Health) {
    xml.nest("Target", |xml| {
        xml.field("Id", &health.id)
            .field("Port", &health.port.to_string())
            .optional("AvailabilityZone", health.availability_zone.as_deref());
    })
    .field("HealthCheckPort", &health.health_check_port)
    .nest("TargetHealth", |xml| {
        xml.field("State", &health.state)
            .optional("Reason", health.reason.as_deref())
            .optional("Description", health.description.as_deref());
    });
}

/// DescribeTargetHealth: the health of the group's targets, or of those named (a target
/// named but not registered is `unused`, `Target.NotRegistered`).
pub(super) fn describe_health(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = target_group_arn(request)?;
    let named = named_targets(request)?;
    authorize(ctx, "DescribeTargetHealth", &[arn])?;
    let config = Config::read(ctx)?;
    let group = super::target_groups::existing(ctx, &config, arn)?;
    let in_use = !config.load_balancers_using(arn).is_empty();
    let live: Vec<&Target> = group.live_targets(ctx.now()).collect();
    let found: Vec<Health> = if named.is_empty() {
        live.iter()
            .map(|t| health_of(ctx, group, in_use, t))
            .collect()
    } else {
        let mut found = Vec::new();
        for wanted in &named {
            let matching: Vec<&&Target> = live
                .iter()
                .filter(|t| t.id == wanted.id && wanted.port.is_none_or(|p| p == t.port))
                .collect();
            if matching.is_empty() {
                let port = wanted.port.unwrap_or(group.port);
                found.push(Health {
                    id: wanted.id.clone(),
                    port,
                    availability_zone: wanted.availability_zone.clone(),
                    health_check_port: group.health_check.port_for(port).to_string(),
                    state: "unused".to_string(),
                    reason: Some("Target.NotRegistered".to_string()),
                    description: Some("Target is not registered to the target group".to_string()),
                });
            }
            found.extend(
                matching
                    .into_iter()
                    .map(|t| health_of(ctx, group, in_use, t)),
            );
        }
        found
    };
    let mut xml = Xml::new();
    xml.list("TargetHealthDescriptions", &found, write_health);
    Ok(Some(xml))
}
